import argparse
import os

from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--model_name")
args = parser.parse_args()

print(f"evaluating {args.model_name} (kind {os.environ.get('MODEL_KIND')})")
Run.get_context().log("evaluated", 1)
