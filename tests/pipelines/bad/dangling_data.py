"""Bad input: a PipelineData consumed by a step but produced by none (resolve_closure on)."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()

orphan = PipelineData("orphan", datastore=datastore)

consumer = PythonScriptStep(
    name="consumer",
    script_name="step.py",
    source_directory="src",
    arguments=["--input", orphan],
    inputs=[orphan],
)

pipeline = Pipeline(workspace=ws, steps=[consumer], resolve_closure=True)
