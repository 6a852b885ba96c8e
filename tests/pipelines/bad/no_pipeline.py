"""Bad input: steps are defined but no Pipeline is ever built."""

from azureml.core import Workspace
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

prep = PythonScriptStep(name="prep", script_name="step.py", source_directory="src")
train = PythonScriptStep(name="train", script_name="step.py", source_directory="src")
train.run_after(prep)

print("defined", prep.name, "and", train.name)
