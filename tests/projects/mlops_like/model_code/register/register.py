import argparse

from azureml.core import Run
from util.helper import load_model

parser = argparse.ArgumentParser()
parser.add_argument("--model_name")
parser.add_argument("--model_dir")
args = parser.parse_args()

model = load_model(args.model_dir)
Run.get_context().log("registered_slope", model["slope"])
print(f"register {args.model_name}: slope {model['slope']}")
