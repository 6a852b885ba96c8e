"""The v1 workspace behind step scripts: a capture-time upload + registration, models, datasets.

Before building the pipeline, this file (like MLOpsPython's build script) uploads rows.csv to the
default datastore and registers it as the tabular dataset "regtest_rows". `mlpipe run` and
`mlpipe compile` apply both (idempotently); the steps then find the dataset by name:

  train_a, train_b  (in parallel, curated scikit-learn environment: pandas, no pydantic / PyYAML)
                    Dataset.get_by_name(ws, "regtest_rows").to_pandas_dataframe(), then
                    Model.register(ws, ..., "regtest_model", tags=...) at the same time: the two
                    registrations get versions 1 and 2 in some order.
  check             (after both) Model.list with tags / latest, Model(ws, name, version),
                    get_model_path, Datastore.get + upload_files of a summary, and registers that
                    summary as the file dataset "regtest_summary" from inside the step.

Every step appends its name to data/executions.log.
"""

import os

from azureml.core import Dataset, Environment, Workspace
from azureml.core.runconfig import RunConfiguration
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))

datastore.upload_files(
    files=["rows.csv"], target_path="training-data/", overwrite=True, show_progress=False
)
rows = Dataset.Tabular.from_delimited_files(path=(datastore, "training-data/rows.csv"))
rows = rows.register(
    workspace=ws,
    name="regtest_rows",
    description="training rows",
    tags={"format": "CSV"},
    create_new_version=True,
)

with_pandas = RunConfiguration()
with_pandas.environment = Environment.get(ws, "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu")


def train(name, scale):
    return PythonScriptStep(
        name=name,
        script_name="train.py",
        source_directory="src",
        arguments=["--dataset", "regtest_rows", "--scale", scale, "--log", EXEC_LOG],
        runconfig=with_pandas,
        allow_reuse=False,
    )


train_a = train("train_a", 1)
train_b = train("train_b", 2)
check = PythonScriptStep(
    name="check",
    script_name="check.py",
    source_directory="src",
    arguments=["--log", EXEC_LOG],
    allow_reuse=False,
)
check.run_after(train_a)
check.run_after(train_b)

pipeline = Pipeline(workspace=ws, steps=[train_a, train_b, check])
