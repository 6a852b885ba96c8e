"""Bad input: a compute target given by a name that mlpipe.yaml does not declare."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

prep = PythonScriptStep(name="prep", script_name="step.py", source_directory="src")
train = PythonScriptStep(
    name="train", script_name="step.py", compute_target="no-such-cluster", source_directory="src"
)

pipeline = Pipeline(workspace=ws, steps=[prep, train])
