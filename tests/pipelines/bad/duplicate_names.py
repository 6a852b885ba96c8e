"""Bad input: two steps with the same name."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

first = PythonScriptStep(name="train", script_name="step.py", source_directory="src")
second = PythonScriptStep(name="train", script_name="step.py", source_directory="src")

pipeline = Pipeline(workspace=ws, steps=[first, second])
