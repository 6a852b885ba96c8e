"""Bad input: a PipelineParameter whose default is a list."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

layers = PipelineParameter(name="layers", default_value=[64, 32])

step = PythonScriptStep(
    name="train", script_name="step.py", source_directory="src", arguments=["--layers", layers]
)
pipeline = Pipeline(workspace=ws, steps=[step])
