"""The reuse scenario: which steps run again, and which are reused, after which change.

    prep   (reads the FileDataset data/reuse_input/ from the datastore)  -> prepped
    train  (prepped, plus train_src/settings.json; parameter epochs)     -> model
    report (model; allow_reuse=False, so it always runs)                  -> report
    other  (independent, its own source folder other_src/)                -> other

Every script appends its step name to data/executions.log, so a test sees what really ran.

Files a test edits (each edit is one scenario; restore it afterwards):
  - train_src/settings.json     a file in train's source folder: train and report run again
  - data/reuse_input/values.csv the input dataset's file: prep, train and report run again
Run-time input: the pipeline parameter `epochs` (default 41): a new value reruns train and report.
Expected executions (the lines appended to data/executions.log by each run):
  first run                       prep, train, report, other (prep before train before report)
  unchanged rerun                 report
  after editing settings.json     train, report
  after editing values.csv        prep, train, report
  with epochs=42                  train, report
  --regenerate-outputs            prep, train, report, other
"""

import os

from azureml.core import Dataset, Experiment, Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()

# <datastore root>/executions.log (mlpipe.yaml maps the default datastore to ./data).
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))

raw = Dataset.File.from_files([(datastore, "reuse_input/")])

prepped = OutputFileDatasetConfig(name="prepped")
prep = PythonScriptStep(
    name="prep",
    script_name="prep.py",
    source_directory="prep_src",
    arguments=[
        "--input",
        raw.as_named_input("raw").as_download(),
        "--out",
        prepped,
        "--log",
        EXEC_LOG,
    ],
    allow_reuse=True,
)

epochs = PipelineParameter(name="epochs", default_value=41)
model = OutputFileDatasetConfig(name="model")
train = PythonScriptStep(
    name="train",
    script_name="train.py",
    source_directory="train_src",
    arguments=[
        "--prepped",
        prepped.as_input(name="prepped"),
        "--epochs",
        epochs,
        "--out",
        model,
        "--log",
        EXEC_LOG,
    ],
)

report_out = OutputFileDatasetConfig(name="report")
report = PythonScriptStep(
    name="report",
    script_name="report.py",
    source_directory="report_src",
    arguments=["--model", model.as_input(name="model"), "--out", report_out, "--log", EXEC_LOG],
    allow_reuse=False,
)

other_out = OutputFileDatasetConfig(name="other")
other = PythonScriptStep(
    name="other",
    script_name="other.py",
    source_directory="other_src",
    arguments=["--out", other_out, "--log", EXEC_LOG],
)

pipeline = Pipeline(workspace=ws, steps=[prep, train, report, other])

run = Experiment(ws, "reuse").submit(pipeline)
run.wait_for_completion()
