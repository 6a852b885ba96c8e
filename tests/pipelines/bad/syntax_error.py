"""Bad input: a syntax error (an `if` without its colon)."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
USE_GPU = False

if USE_GPU
    compute = "gpu-cluster"
else:
    compute = "cpu-cluster"

step = PythonScriptStep(name="step", script_name="step.py", source_directory="src")
pipeline = Pipeline(workspace=ws, steps=[step])
