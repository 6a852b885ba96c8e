"""Bad input: a string PipelineParameter whose default holds a newline."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

banner = PipelineParameter(name="banner", default_value="line one\nline two")

step = PythonScriptStep(
    name="train", script_name="step.py", source_directory="src", arguments=["--banner", banner]
)
pipeline = Pipeline(workspace=ws, steps=[step])
