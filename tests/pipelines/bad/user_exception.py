"""Bad input: the user's own code raises (ValueError from int())."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
settings = {"workers": "four"}

n_workers = int(settings["workers"])

steps = [
    PythonScriptStep(name=f"work_{i}", script_name="step.py", source_directory="src")
    for i in range(n_workers)
]
pipeline = Pipeline(workspace=ws, steps=steps)
