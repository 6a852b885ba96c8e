"""Reads from an S3 datastore, writes to the Azure Blob default datastore (which holds the state).

mlpipe.yaml (written by the test) maps `s3data` to `s3://<bucket>` and `workspaceblobstore` to
`az://<container>`. Inputs in S3: `raw/` (a folder: a FileDataset, downloaded) and `table/*.csv` (a
tabular dataset read direct). prep writes an OutputFileDatasetConfig with a `{run-id}` destination
(registered on completion) and a PipelineData; train reads both (as_mount / PipelineData) and writes
a default-destination output. Every script records where it ran (HOME, TMPDIR, cwd, paths) in its
outputs: that is how the tests see that the steps shared no local folder.
"""

from azureml.core import Dataset, Datastore, Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
blob = ws.get_default_datastore()
s3 = Datastore(ws, "s3data")

raw = Dataset.File.from_files([(s3, "raw/")])
table = Dataset.Tabular.from_delimited_files(path=[(s3, "table/*.csv")])

prepared = OutputFileDatasetConfig(
    name="prepared", destination=(blob, "prepared/{run-id}")
).register_on_complete(name="prepared_data")
stats = PipelineData("stats", datastore=blob)
model = OutputFileDatasetConfig(name="model")

prep = PythonScriptStep(
    name="prep",
    script_name="prep.py",
    source_directory="prep_src",
    arguments=[
        "--raw",
        raw.as_named_input("raw").as_download(),
        "--out",
        prepared,
        "--stats",
        stats,
    ],
    inputs=[table.as_named_input("table")],
    outputs=[stats],
)
train = PythonScriptStep(
    name="train",
    script_name="train.py",
    source_directory="train_src",
    arguments=["--data", prepared.as_input(name="data"), "--stats", stats, "--model", model],
    inputs=[stats],
)
pipeline = Pipeline(workspace=ws, steps=[prep, train])
