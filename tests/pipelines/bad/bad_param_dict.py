"""Bad input: a PipelineParameter whose default is a dict."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

config = PipelineParameter(name="config", default_value={"lr": 0.1, "epochs": 3})

step = PythonScriptStep(
    name="train", script_name="step.py", source_directory="src", arguments=["--config", config]
)
pipeline = Pipeline(workspace=ws, steps=[step])
