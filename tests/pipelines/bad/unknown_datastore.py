"""Bad input: a datastore name that mlpipe.yaml does not declare."""

from azureml.core import Dataset, Datastore, Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

store = Datastore(ws, "nope")

images = Dataset.File.from_files([(store, "images/")])
step = PythonScriptStep(
    name="prep",
    script_name="step.py",
    source_directory="src",
    arguments=["--input", images.as_named_input("images").as_mount()],
)
pipeline = Pipeline(workspace=ws, steps=[step])
