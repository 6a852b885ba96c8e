"""One step writing many small files to a fixed destination, one step reading them."""

from azureml.core import Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
blob = ws.get_default_datastore()
out = OutputFileDatasetConfig(name="files", destination=(blob, "many/files"))
write = PythonScriptStep(
    name="write", script_name="write.py", source_directory="src", arguments=["--out", out]
)
result = OutputFileDatasetConfig(name="count")
read = PythonScriptStep(
    name="read",
    script_name="read.py",
    source_directory="src",
    arguments=["--files", out.as_input(name="files"), "--out", result],
)
pipeline = Pipeline(workspace=ws, steps=[write, read])
