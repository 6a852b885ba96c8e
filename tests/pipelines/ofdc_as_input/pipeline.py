"""OutputFileDatasetConfig in its forms, produced by one step and consumed by four.

produce writes three outputs:
  table     OutputFileDatasetConfig(name="table") + register_on_complete(name="ofdc_table")
            default destination (workspaceblobstore, dataset/{run-id}/{output-name})
  mounted   destination (workspaceblobstore, "ofdc/mounted/{run-id}"), .as_mount()
  uploaded  destination (workspaceblobstore, "ofdc/uploaded"), .as_upload(overwrite=True)
            (a fixed path: every run overwrites data/ofdc/uploaded/values.txt)

consumers:
  read_default   table.as_input()                  (no name: mlpipe must name it deterministically)
  read_named     mounted.as_input(name="mounted_in")
  read_uploaded  uploaded.as_input(name="uploaded_in")
  read_tabular   table.read_delimited_files().as_input(name="table_rows"), in `inputs` only:
                 read through Run.get_context().input_datasets["table_rows"].to_pandas_dataframe()
                 (pandas comes from the curated scikit-learn environment of that step)

Expected data edges: produce -> read_default, produce -> read_named, produce -> read_uploaded,
produce -> read_tabular. Every step appends its name to data/executions.log.
"""

import os

from azureml.core import Environment, Workspace
from azureml.core.runconfig import RunConfiguration
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()

# <datastore root>/executions.log (mlpipe.yaml maps the default datastore to ./data).
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))

table = OutputFileDatasetConfig(name="table").register_on_complete(name="ofdc_table")
mounted = OutputFileDatasetConfig(
    name="mounted", destination=(datastore, "ofdc/mounted/{run-id}")
).as_mount()
uploaded = OutputFileDatasetConfig(
    name="uploaded", destination=(datastore, "ofdc/uploaded")
).as_upload(overwrite=True)

produce = PythonScriptStep(
    name="produce",
    script_name="produce.py",
    source_directory="produce_src",
    arguments=[
        "--table",
        table,
        "--mounted",
        mounted,
        "--uploaded",
        uploaded,
        "--log",
        EXEC_LOG,
    ],
)


def reader(name, consumption):
    result = OutputFileDatasetConfig(name=f"{name}_result")
    return PythonScriptStep(
        name=name,
        script_name="read_files.py",
        source_directory="consume_src",
        arguments=["--input", consumption, "--out", result, "--step", name, "--log", EXEC_LOG],
    )


read_default = reader("read_default", table.as_input())
read_named = reader("read_named", mounted.as_input(name="mounted_in"))
read_uploaded = reader("read_uploaded", uploaded.as_input(name="uploaded_in"))

tabular_config = RunConfiguration()
tabular_config.environment = Environment.get(
    workspace=ws, name="AzureML-sklearn-0.24-ubuntu18.04-py37-cpu"
)
tabular_result = OutputFileDatasetConfig(name="read_tabular_result")
read_tabular = PythonScriptStep(
    name="read_tabular",
    script_name="read_table.py",
    source_directory="tabular_src",
    arguments=["--out", tabular_result, "--log", EXEC_LOG],
    inputs=[table.read_delimited_files().as_input(name="table_rows")],
    runconfig=tabular_config,
)

pipeline = Pipeline(
    workspace=ws, steps=[produce, read_default, read_named, read_uploaded, read_tabular]
)
