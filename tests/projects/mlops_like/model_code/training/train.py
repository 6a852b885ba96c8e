import argparse

from azureml.core import Run
from util.helper import fit_line, save_model

parser = argparse.ArgumentParser()
parser.add_argument("--model_name")
parser.add_argument("--model_dir")
args = parser.parse_args()

model = fit_line([(0, 1.0), (1, 3.0), (2, 5.0), (3, 7.0)])
save_model(args.model_dir, model)
Run.get_context().log("slope", model["slope"])
print(f"trained {args.model_name}: {model}")
