"""Writes the test notebooks of this folder from the cell sources below.

    .venv/bin/python tests/notebooks/make_notebooks.py

The tests read the .ipynb files; edit the cells here and rerun this script to change them.

intro/  one notebook per usage pattern of the Azure ML v1 "intro-to-pipelines" samples that build
        pipelines from PythonScriptStep / CommandStep (getting started, drafts, publish + REST,
        schedules, versioned endpoints, DataPath and dataset parameters, CommandStep, CommandStep
        with R, data dependencies), written for mlpipe with its own step scripts and data.
unsupported/  one notebook per v1 step type mlpipe does not support, each preceded by the set-up
        such notebooks do (attaching a compute, registering datastores) that could fail first.

Cell numbers matter to the tests (problems read `NOTEBOOK.ipynb:cell N:line M`, N counting every
cell from 1): markdown cells are part of the count.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(path: Path, cells: list[tuple[str, str]]) -> None:
    out = []
    for kind, text in cells:
        text = text.strip("\n")
        lines = text.split("\n")
        source = [ln + "\n" for ln in lines[:-1]] + [lines[-1]]
        if kind == "md":
            out.append({"cell_type": "markdown", "metadata": {}, "source": source})
        else:
            out.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
            )
    doc = {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def md(text):
    return ("md", text)


def code(text):
    return ("code", text)


COMPUTE = """
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.compute_target import ComputeTargetException

cluster_name = "cpu-nodes"
try:
    cluster = AmlCompute(ws, cluster_name)
    print("using the existing cluster", cluster_name)
except ComputeTargetException:
    print("provisioning", cluster_name)
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2",
                                                   min_nodes=0,
                                                   max_nodes=2)
    cluster = ComputeTarget.create(ws, cluster_name, config)
    cluster.wait_for_completion(show_output=True, timeout_in_minutes=10)
"""

WORKSPACE = """
from azureml.core import Workspace

ws = Workspace.from_config()
print("workspace:", ws.name, ws.resource_group, ws.location, ws.subscription_id)
"""

INTRO = {
    # -------------------------------------------------------------------- getting started
    "getting_started": [
        md("# Two pipelines from the same three steps"),
        code("""
import os
import tempfile

import requests
import azureml.core
from azureml.core import Datastore, Experiment, Workspace
from azureml.widgets import RunDetails

print("SDK", azureml.core.VERSION)
"""),
        code("""
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep
"""),
        code("""
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\\n")
default_store = ws.get_default_datastore()
blob_store = Datastore(ws, "workspaceblobstore")
print("stores:", default_store.name, blob_store.name)
"""),
        md("Fetch a sample file and put it in the blob store (needs the network)."),
        code("""
reply = requests.get("https://example.org/samples/measurements.csv")
local_copy = os.path.join(tempfile.mkdtemp(), "measurements.csv")
with open(local_copy, "w") as f:
    f.write(reply.text)
blob_store.upload_files([local_copy], target_path="measurements", overwrite=True)
"""),
        code("""
for target_name in ws.compute_targets:
    print("compute:", target_name)
"""),
        code(COMPUTE),
        code("print(cluster.get_status().serialize())"),
        code("""
prepare = PythonScriptStep(name="prepare", script_name="prepare.py",
                           compute_target=cluster, source_directory="./prepare",
                           allow_reuse=True)
"""),
        code("""
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import DEFAULT_CPU_IMAGE, RunConfiguration

score = PythonScriptStep(name="score", script_name="score.py",
                         compute_target=cluster, source_directory="./score")

report_config = RunConfiguration()
report_config.environment.docker.enabled = True
report_config.environment.docker.base_image = DEFAULT_CPU_IMAGE
report_config.environment.python.user_managed_dependencies = False
report_config.environment.python.conda_dependencies = CondaDependencies.create(
    conda_packages=["numpy"])
report = PythonScriptStep(name="report", script_name="report.py",
                          compute_target=cluster, source_directory="./report",
                          runconfig=report_config)
all_steps = [prepare, score, report]
"""),
        code("""
side_by_side = Pipeline(workspace=ws, steps=all_steps)
side_by_side.validate()
"""),
        code("""
run_a = Experiment(ws, "nb-side-by-side").submit(side_by_side, regenerate_outputs=True)
RunDetails(run_a).show()
"""),
        code("""
for child in run_a.get_children():
    state = child.get_status()
    print(child.name, state)
    if state == "Failed":
        print(child.get_job_log())
"""),
        md("The same steps, now one after the other: the last step pulls in the others."),
        code("""
score.run_after(prepare)
report.run_after(score)
one_by_one = Pipeline(workspace=ws, steps=[report])
one_by_one.validate()
"""),
        code("""
run_b = Experiment(ws, "nb-one-by-one").submit(one_by_one)
RunDetails(run_b).show()
"""),
    ],
    # ----------------------------------------------------------------------- drafts
    "pipeline_drafts": [
        md("# Pipeline drafts"),
        code("""
import azureml.core
from azureml.core import Workspace
from azureml.widgets import RunDetails

ws = Workspace.from_config()
print(azureml.core.VERSION, ws.name)
"""),
        code(COMPUTE),
        code("""
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

first_step = PythonScriptStep(name="fit_v1", script_name="fit.py",
                              compute_target=cluster_name, source_directory="fit")
draft_pipeline = Pipeline(workspace=ws, steps=[first_step])
"""),
        code("""
from azureml.pipeline.core import PipelineDraft

draft = PipelineDraft.create(ws, name="fit-draft", description="first version",
                             experiment_name="nb-drafts", pipeline=draft_pipeline,
                             continue_on_step_failure=True,
                             tags={"team": "nb"}, properties={"stage": "dev"})
draft_id = draft.id
"""),
        code("""
for d in PipelineDraft.list(ws, tags={"team": "nb"}):
    print(d)
draft = PipelineDraft.get(ws, id=draft_id)
"""),
        code("""
second_step = PythonScriptStep(name="fit_v2", script_name="fit.py",
                               compute_target=cluster_name, source_directory="fit")
better_pipeline = Pipeline(workspace=ws, steps=[second_step])
draft.update(name="fit-draft-v2", description="second version", pipeline=better_pipeline)
"""),
        code("""
draft_run = draft.submit_run()
draft_run
"""),
        code("""
from_draft = draft.publish()
from_draft
"""),
    ],
    # ------------------------------------------------------------- publish + REST endpoint
    "publish_rest": [
        md("# Publish, then call the REST endpoint"),
        code("""
import azureml.core
from azureml.core import Dataset, Datastore, Experiment, Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.core.graph import PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
store = Datastore(ws, "workspaceblobstore")
"""),
        code(COMPUTE),
        code("""
source_url = "https://example.org/samples/readings.csv"
raw = Dataset.File.from_files(source_url).as_named_input("raw_readings")
"""),
        code("""
cleaned = OutputFileDatasetConfig(name="cleaned")
clean = PythonScriptStep(script_name="clean.py",
                         arguments=["--raw", raw.as_mount(), "--out", cleaned],
                         compute_target=cluster, source_directory="clean")
"""),
        code("""
features = OutputFileDatasetConfig(name="features")
featurize = PythonScriptStep(script_name="featurize.py",
                             arguments=["--cleaned", cleaned.as_input(), "--out", features],
                             compute_target=cluster, source_directory="featurize")
"""),
        code("""
threshold = PipelineParameter(name="threshold", default_value=5)
summary = OutputFileDatasetConfig(name="summary").register_on_complete("reading_summary")
summarize = PythonScriptStep(script_name="summarize.py",
                             arguments=["--cleaned", cleaned.as_input(),
                                        "--features", features.as_input(),
                                        "--out", summary, "--threshold", threshold],
                             compute_target=cluster, source_directory="summarize")
readings = Pipeline(workspace=ws, steps=[summarize])
"""),
        code("""
published = readings.publish(name="readings-service", description="summarise readings",
                             continue_on_step_failure=True)
published
"""),
        code("""
readings_run = Experiment(ws, "nb-readings").submit(readings)
republished = readings_run.publish_pipeline(name="readings-service-2",
                                            description="from a run", version="1.1")
"""),
        code("""
from azureml.pipeline.core import PublishedPipeline

fetched = PublishedPipeline.get(ws, published.id)
"""),
        code("""
from azureml.core.authentication import InteractiveLoginAuthentication
import requests

header = InteractiveLoginAuthentication().get_authentication_header()
reply = requests.post(fetched.endpoint, headers=header,
                      json={"ExperimentName": "nb-readings-rest",
                            "ParameterAssignments": {"threshold": 9}})
"""),
        code("""
reply.raise_for_status()
print("run", reply.json().get("Id"))
"""),
    ],
    # ------------------------------------------------------------- schedules
    "schedule_published": [
        md("# Schedules for a published pipeline and for an endpoint"),
        code(WORKSPACE),
        code(COMPUTE),
        code("""
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

refresh = PythonScriptStep(name="refresh", script_name="fit.py",
                           compute_target=cluster_name, source_directory="fit")
nightly = Pipeline(workspace=ws, steps=[refresh])
"""),
        code("""
from datetime import datetime

stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
published = nightly.publish(name=f"refresh-{stamp}", description="refresh " + stamp)
"""),
        code("""
from azureml.pipeline.core import PipelineEndpoint

endpoint = PipelineEndpoint.publish(workspace=ws, name="refresh-endpoint",
                                    pipeline=nightly, description="scheduled refresh")
"""),
        code("""
from azureml.pipeline.core import PublishedPipeline

for item in PublishedPipeline.list(ws):
    print("published:", item.id)
    last_id = item.id
"""),
        code("""
from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence, TimeZone

weekly = ScheduleRecurrence(frequency="Week", interval=1, week_days=["Monday", "Thursday"],
                            time_of_day="06:15", time_zone=TimeZone.UTC)
timed = Schedule.create(workspace=ws, name="refresh-weekly", pipeline_id=last_id,
                        experiment_name="nb-refresh", recurrence=weekly,
                        wait_for_provisioning=True, description="twice a week")
"""),
        code("""
for s in Schedule.list(ws, pipeline_id=last_id):
    if s.recurrence is not None:
        timed_id = s.id
print(len(Schedule.list(ws, active_only=True)), "active")
"""),
        code("""
again = Schedule.get(ws, timed_id)
again.disable(wait_for_provisioning=True)
print(Schedule.get(ws, timed_id).status)
again.enable(wait_for_provisioning=True)
again.update(name="refresh-every-3h", description="more often", status="Active",
             recurrence=ScheduleRecurrence(frequency="Hour", interval=3))
"""),
        code("""
from azureml.core.datastore import Datastore

landing = Datastore(workspace=ws, name="workspaceblobstore")
on_change = Schedule.create(workspace=ws, name="refresh-on-upload", pipeline_id=last_id,
                            experiment_name="nb-refresh", datastore=landing,
                            path_on_datastore="landing", polling_interval=10)
on_change.disable()
"""),
        code("""
by_endpoint = PipelineEndpoint.get(workspace=ws, name="refresh-endpoint")
daily = ScheduleRecurrence(frequency="Day", interval=1, hours=[2], minutes=[45])
endpoint_schedule = Schedule.create_for_pipeline_endpoint(
    workspace=ws, name="refresh-endpoint-daily", pipeline_endpoint_id=by_endpoint.id,
    experiment_name="nb-refresh", recurrence=daily)
print(len(Schedule.get_schedules_for_pipeline_endpoint_id(ws, by_endpoint.id)))
"""),
    ],
    # ------------------------------------------------------------- versioned endpoints
    "versioned_endpoints": [
        md("# A pipeline endpoint with two versions"),
        code(WORKSPACE),
        code(
            COMPUTE
            + """
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

fit = PythonScriptStep(name="fit", script_name="fit.py", compute_target=cluster_name,
                       source_directory="fit")
fit_pipeline = Pipeline(workspace=ws, steps=[fit])
"""
        ),
        code("""
import time

version_two = fit_pipeline.publish(name=f"fit-{int(time.time())}", description="v2")
"""),
        code("""
from azureml.pipeline.core import PipelineEndpoint

ep = PipelineEndpoint.publish(workspace=ws, name="fit-endpoint", pipeline=fit_pipeline,
                              description="fit, versioned")
same = PipelineEndpoint.get(workspace=ws, name="fit-endpoint")
by_id = PipelineEndpoint.get(workspace=ws, id=same.id)
print(PipelineEndpoint.list(workspace=ws, active_only=True))
"""),
        code("""
print(same.get_default_version())
same.set_default_version("0")
print(same.get_pipeline("0"), same.get_pipeline())
same.add(version_two)
same.set_default(version_two)
for v in same.list_versions():
    print(v.version, v.pipeline.id)
print(same.list_pipelines(active_only=True))
same.set_name(name="fit-endpoint-renamed")
"""),
        code("""
renamed = PipelineEndpoint.get(workspace=ws, name="fit-endpoint-renamed")
by_name_url = renamed.endpoint.split("Id", 1)[0] + "Name?name=" + renamed.name
print(by_name_url + "&pipelineVersion=0")
"""),
        code("""
from azureml.core.authentication import InteractiveLoginAuthentication
import requests

reply = requests.post(by_name_url,
                      headers=InteractiveLoginAuthentication().get_authentication_header(),
                      json={"ExperimentName": "nb-fit-rest"})
"""),
        code("""
print(renamed.submit("nb-fit-endpoint", pipeline_version="0"))
print(renamed.submit("nb-fit-endpoint"))
"""),
        code("""
from azureml.core import Experiment

Experiment(ws, name="nb-fit-experiment").submit(renamed, tags={"via": "endpoint"},
                                                pipeline_version="1")
"""),
    ],
    # ------------------------------------------------------------- DataPath parameters
    "datapath_parameter": [
        md("# A DataPath as a pipeline parameter"),
        code("""
import azureml.core
from azureml.core import Experiment, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.data.datapath import DataPath, DataPathComputeBinding
from azureml.pipeline.core import Pipeline, PipelineParameter, PipelineRun
from azureml.pipeline.steps import PythonScriptStep
from azureml.widgets import RunDetails
"""),
        code("""
ws = Workspace.from_config()
experiment = Experiment(ws, "nb-datapath")
"""),
        code("""
cluster_name = "cpu-nodes"
targets = ws.compute_targets
if cluster_name in targets and targets[cluster_name].type == "AmlCompute":
    cluster = targets[cluster_name]
else:
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=3)
    cluster = ComputeTarget.create(ws, cluster_name, config)
    cluster.wait_for_completion(show_output=True)
"""),
        code("""
%%writefile count_lines.py
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--label")
parser.add_argument("--data")
args = parser.parse_args()
total = 0
for root, _, files in os.walk(args.data):
    for name in files:
        with open(os.path.join(root, name)) as f:
            total += sum(1 for _ in f)
print(args.label, total)
"""),
        code("""
store = ws.get_default_datastore()
folder = DataPath(datastore=store, path_on_datastore="inbox/week1")
folder_param = PipelineParameter(name="inbox", default_value=folder)
folder_input = (folder_param, DataPathComputeBinding(mode="mount"))
label_param = PipelineParameter(name="label", default_value="week1")
"""),
        code("""
count = PythonScriptStep(name="count", script_name="count_lines.py",
                         arguments=["--label", label_param, "--data", folder_input],
                         inputs=[folder_input], compute_target=cluster, source_directory=".")
counting = Pipeline(workspace=ws, steps=[count])
"""),
        code("""
first_run = experiment.submit(counting)
RunDetails(first_run).show()
first_run.wait_for_completion()
"""),
        code("""
second_run = experiment.submit(
    counting,
    pipeline_parameters={"inbox": DataPath(datastore=store, path_on_datastore="inbox/week2"),
                         "label": "week2"})
second_run.wait_for_completion()
"""),
        code("""
published = counting.publish(name="count-lines", description="count lines",
                             continue_on_step_failure=True)
"""),
        code("""
from azureml.core.authentication import InteractiveLoginAuthentication
import requests

reply = requests.post(published.endpoint,
                      headers=InteractiveLoginAuthentication().get_authentication_header(),
                      json={"ExperimentName": "nb-datapath-rest",
                            "DataPathAssignments": {"inbox": {"DataStoreName": store.name,
                                                              "RelativePath": "inbox/week3"}}})
"""),
        code("""
run_id = reply.json().get("Id")
"""),
        code("""
rest_run = PipelineRun(ws.experiments["nb-datapath-rest"], run_id)
rest_run.wait_for_completion()
"""),
        code("""
from azureml.pipeline.core import Schedule

watch = Schedule.create(workspace=ws, name="count-new-files", pipeline_id=published.id,
                        experiment_name="nb-datapath-watch", datastore=store,
                        path_on_datastore="inbox", data_path_parameter_name="inbox",
                        description="count each new drop")
watch.disable()
"""),
    ],
    # ------------------------------------------------------------- dataset parameters
    "dataset_parameter": [
        md("# Datasets as pipeline parameters"),
        code("""
from azureml.core import Dataset, Experiment, RunConfiguration, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.environment import CondaDependencies
from azureml.data.dataset_consumption_config import DatasetConsumptionConfig
from azureml.pipeline.core import Pipeline, PipelineParameter, PipelineRun
from azureml.pipeline.steps import PythonScriptStep
from azureml.widgets import RunDetails

ws = Workspace.from_config()
experiment = Experiment(ws, "nb-datasets")
"""),
        code(COMPUTE),
        code("""
small_files = Dataset.File.from_files("https://example.org/samples/small.csv")
files_param = PipelineParameter(name="files", default_value=small_files)
files_input = DatasetConsumptionConfig("files", files_param).as_mount()

small_table = Dataset.Tabular.from_delimited_files("https://example.org/samples/small.csv")
table_param = PipelineParameter(name="table", default_value=small_table)
table_input = DatasetConsumptionConfig("table", table_param)
"""),
        code("""
%%writefile describe.py
from azureml.core import Run

context = Run.get_context()
print(open(context.input_datasets["files"]).read()[:200])
print(context.input_datasets["table"].to_pandas_dataframe().describe())
"""),
        code("""
packages = CondaDependencies()
packages.add_pip_package("pandas")
describe_config = RunConfiguration(conda_dependencies=packages)

describe = PythonScriptStep(name="describe", script_name="describe.py",
                            arguments=["--files", files_input, "--table", table_input],
                            inputs=[files_input, table_input], compute_target=cluster,
                            source_directory=".", runconfig=describe_config)
describing = Pipeline(workspace=ws, steps=[describe])
"""),
        code("""
default_run = experiment.submit(describing)
RunDetails(default_run).show()
"""),
        code("""
big_files = Dataset.File.from_files("https://example.org/samples/big.csv")
big_table = Dataset.Tabular.from_delimited_files("https://example.org/samples/big.csv")
big_run = experiment.submit(describing, pipeline_parameters={"files": big_files,
                                                             "table": big_table})
"""),
        code("""
published = describing.publish(name="describe-data", description="describe a dataset",
                               continue_on_step_failure=True)
published.submit(ws, experiment_name="nb-datasets-published",
                 pipeline_parameters={"files": big_files, "table": big_table})
"""),
    ],
    # ------------------------------------------------------------- CommandStep
    "commandstep": [
        md("# A distributed command"),
        code(WORKSPACE),
        code("""
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.compute_target import ComputeTargetException

try:
    gpus = ComputeTarget(workspace=ws, name="gpu-nodes")
except ComputeTargetException:
    gpus = ComputeTarget.create(
        ws, "gpu-nodes",
        AmlCompute.provisioning_configuration(vm_size="Standard_NC6s_v3", max_nodes=2))
    gpus.wait_for_completion(show_output=True)
print(gpus.get_status().serialize())
"""),
        code("""
from azureml.core import Environment, ScriptRunConfig
from azureml.core.runconfig import MpiConfiguration

torch_env = Environment.get(ws, name="AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu")
job = ScriptRunConfig(source_directory="command_train",
                      command=["python train.py --epochs 3 --tag 'first try'"],
                      compute_target=gpus, environment=torch_env,
                      distributed_job_config=MpiConfiguration(process_count_per_node=1,
                                                              node_count=2))
"""),
        code("""
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import CommandStep
from azureml.core import Experiment

train = CommandStep(name="train-distributed", runconfig=job)
trained = Pipeline(workspace=ws, steps=[train])
Experiment(ws, "nb-command").submit(trained)
"""),
    ],
    # ------------------------------------------------------------- CommandStep with R
    "commandstep_r": [
        md("# An R script in a CommandStep"),
        code(WORKSPACE),
        code("""
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.compute_target import ComputeTargetException

try:
    cpus = ComputeTarget(workspace=ws, name="cpu-nodes")
except ComputeTargetException:
    cpus = ComputeTarget.create(
        ws, "cpu-nodes",
        AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=2))
print(cpus.get_status().serialize())
"""),
        code("""
import os
from azureml.core import Dataset, Environment, ScriptRunConfig

r_folder = "r_model"
r_env = Environment.from_dockerfile(name="r-env", dockerfile=os.path.join(r_folder, "Dockerfile"))
store = ws.get_default_datastore()
store.upload_files(files=[os.path.join(r_folder, "trees.csv")], target_path="trees",
                   overwrite=True)
trees = Dataset.File.from_files(store.path("trees"))
"""),
        code("""
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import CommandStep
from azureml.core import Experiment

fit_r = ScriptRunConfig(source_directory=r_folder,
                        command=["Rscript fit.R --data", trees.as_mount(),
                                 "--out outputs"],
                        compute_target=cpus, environment=r_env)
r_pipeline = Pipeline(workspace=ws, steps=[CommandStep(name="fit-r", runconfig=fit_r)])
Experiment(ws, "nb-r").submit(r_pipeline)
"""),
    ],
    # ------------------------------------------------------------- data dependencies
    "data_dependency": [
        md("# Steps connected by their data"),
        code("""
import azureml.core
from azureml.core import Datastore, Experiment, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.data.data_reference import DataReference
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import PythonScriptStep
from azureml.widgets import RunDetails

ws = Workspace.from_config()
store = Datastore(ws, "workspaceblobstore")
"""),
        code(COMPUTE),
        code("""
sales = DataReference(datastore=store, data_reference_name="sales",
                      path_on_datastore="shop/sales.csv")
totals = PipelineData("totals", datastore=store, is_directory=True)
"""),
        code("""
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import DEFAULT_CPU_IMAGE, RunConfiguration

config = RunConfiguration()
config.environment.docker.base_image = DEFAULT_CPU_IMAGE
config.environment.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["pandas"])
total = PythonScriptStep(script_name="total.py",
                         arguments=["--sales", sales, "--out", totals],
                         inputs=[sales], outputs=[totals], compute_target=cluster,
                         source_directory="shop_total", runconfig=config)
"""),
        code("""
ranked = PipelineData("ranked", datastore=store, is_directory=True)
rank = PythonScriptStep(script_name="rank.py", arguments=["--totals", totals, "--out", ranked],
                        inputs=[totals], outputs=[ranked], compute_target=cluster,
                        source_directory="shop_rank")
"""),
        code("""
from azureml.data.datapath import DataPath, DataPathComputeBinding
from azureml.pipeline.core import PipelineParameter

prices = PipelineParameter(name="prices",
                           default_value=DataPath(datastore=store,
                                                  path_on_datastore="shop/prices.csv"))
prices_input = (prices, DataPathComputeBinding(mode="download"))
joined = PipelineData("joined", datastore=store, is_directory=True)
join = PythonScriptStep(script_name="join.py",
                        arguments=["--prices", prices_input, "--ranked", ranked, "--out", joined],
                        inputs=[prices_input, ranked], outputs=[joined],
                        compute_target=cluster, source_directory="shop_join")
"""),
        code("""
shop = Pipeline(workspace=ws, steps=[join])
shop_run = Experiment(ws, "nb-shop").submit(shop)
RunDetails(shop_run).show()
shop_run.wait_for_completion(show_output=True)
"""),
        code("""
for step_run in shop_run.get_steps():
    for name, output in step_run.get_outputs().items():
        ref = output.get_port_data_reference()
        print(step_run.name, name, ref.datastore_name, ref.path_on_datastore)
"""),
        code("""
found = shop_run.find_step_run("total.py")
if found:
    found[0].get_output_data("totals").download("./downloaded")
"""),
    ],
    # ------------------------------------------------ a web dataset, looked at first
    "web_dataset_files": [
        md("# Look at a web dataset's files, then count their rows in a pipeline"),
        code("""
from azureml.core import Dataset, Experiment, Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
"""),
        code(COMPUTE),
        code("""
iris_web = Dataset.File.from_files(path=[
    "https://example.org/samples/iris/train.csv",
    "https://example.org/samples/iris/test.csv",
])
for file_path in iris_web.to_path():
    print("in the dataset:", file_path)
"""),
        code("""
iris_input = iris_web.as_named_input("iris").as_download()
count = PythonScriptStep(name="count rows", script_name="count_rows.py",
                         arguments=["--data", iris_input], compute_target=cluster,
                         source_directory="iris_rows")
Experiment(ws, "nb-web-files").submit(Pipeline(workspace=ws, steps=[count]))
"""),
    ],
}


def unsupported_notebook(title: str, setup: str, step: str) -> list:
    return [
        md(f"# {title}"),
        code(WORKSPACE),
        code(setup),
        code(step),
        code("""
from azureml.core import Experiment
from azureml.pipeline.core import Pipeline

Experiment(ws, "nb-unsupported").submit(Pipeline(workspace=ws, steps=[step]))
"""),
    ]


# name -> (step type, set-up cell, cell building the step: its first line builds it)
UNSUPPORTED = {
    "parallel_run_step": (
        "ParallelRunStep",
        """
from azureml.core import Dataset, Environment
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

images = Dataset.File.from_files("https://example.org/images/").as_named_input("images")
scored = OutputFileDatasetConfig(name="scored")
settings = ParallelRunConfig(source_directory="fit", entry_script="fit.py",
                             mini_batch_size="4", error_threshold=1,
                             output_action="append_row", node_count=2,
                             environment=Environment("scoring"), compute_target="cpu-nodes")
""",
        'step = ParallelRunStep(name="score-images", parallel_run_config=settings,\n'
        "                       inputs=[images], output=scored)",
    ),
    "automl_step": (
        "AutoMLStep",
        """
from azureml.core import Dataset
from azureml.pipeline.core import PipelineData, TrainingOutput
from azureml.pipeline.steps import AutoMLStep
from azureml.train.automl import AutoMLConfig

table = Dataset.Tabular.from_delimited_files("https://example.org/samples/table.csv")
metrics = PipelineData("metrics", pipeline_output_name="metrics_out",
                       training_output=TrainingOutput(type="Metrics"))
automl_config = AutoMLConfig(task="classification", training_data=table,
                             label_column_name="label", compute_target="cpu-nodes")
""",
        'step = AutoMLStep(name="automl", automl_config=automl_config, outputs=[metrics])',
    ),
    "hyperdrive_step": (
        "HyperDriveStep",
        """
from azureml.core import ScriptRunConfig
from azureml.pipeline.steps import HyperDriveStep
from azureml.train.hyperdrive import (BanditPolicy, HyperDriveConfig, PrimaryMetricGoal,
                                      RandomParameterSampling, choice, loguniform)

sampling = RandomParameterSampling({"--lr": loguniform(-6, -1), "--batch": choice(16, 32)})
trial = ScriptRunConfig(source_directory="fit", script="fit.py", compute_target="cpu-nodes")
tuning = HyperDriveConfig(run_config=trial, hyperparameter_sampling=sampling,
                          policy=BanditPolicy(evaluation_interval=2, slack_factor=0.1),
                          primary_metric_name="accuracy",
                          primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                          max_total_runs=8)
""",
        'step = HyperDriveStep(name="tune", hyperdrive_config=tuning)',
    ),
    "databricks_step": (
        "DatabricksStep",
        """
from azureml.core.compute import ComputeTarget, DatabricksCompute
from azureml.exceptions import ComputeTargetException
from azureml.pipeline.steps import DatabricksStep

try:
    databricks = DatabricksCompute(workspace=ws, name="dbx")
except ComputeTargetException:
    attach = DatabricksCompute.attach_configuration(resource_group=ws.resource_group,
                                                    workspace_name="dbx-ws",
                                                    access_token="not-a-real-token")
    databricks = ComputeTarget.attach(ws, "dbx", attach)
""",
        'step = DatabricksStep(name="spark-job", notebook_path="/Shared/job",\n'
        '                      run_name="job", compute_target=databricks, num_workers=1)',
    ),
    "data_transfer_step": (
        "DataTransferStep",
        """
from azureml.core import Datastore
from azureml.core.compute import DataFactoryCompute
from azureml.data.data_reference import DataReference
from azureml.exceptions import UserErrorException
from azureml.pipeline.steps import DataTransferStep

try:
    lake = Datastore.get(ws, "lake")
except UserErrorException:
    lake = Datastore.register_azure_data_lake_gen2(workspace=ws, datastore_name="lake",
                                                   filesystem="raw", account_name="nblake",
                                                   tenant_id="t", client_id="c",
                                                   client_secret="not-a-real-secret")
source = DataReference(datastore=lake, data_reference_name="from_lake",
                       path_on_datastore="drops")
factory = DataFactoryCompute(ws, "adf")
""",
        'step = DataTransferStep(name="copy", source_data_reference=source,\n'
        "                        destination_data_reference=source, compute_target=factory)",
    ),
    "adla_step": (
        "AdlaStep",
        """
from azureml.core.compute import AdlaCompute, ComputeTarget
from azureml.pipeline.steps import AdlaStep

adla = ComputeTarget.attach(ws, "adla", AdlaCompute.attach_configuration(
    resource_group=ws.resource_group, account_name="nbadla"))
""",
        'step = AdlaStep(name="usql", script_name="job.usql", source_directory="fit",\n'
        "                compute_target=adla)",
    ),
    "kusto_step": (
        "KustoStep",
        """
from azureml.core.compute import ComputeTarget, KustoCompute
from azureml.pipeline.core import PipelineData
from azureml.pipeline.steps.kusto_step import KustoStep

kusto = ComputeTarget.attach(ws, "kusto", KustoCompute.attach_configuration(
    resource_group=ws.resource_group, workspace_name=ws.name, resource_id="r",
    tenant_id="t", kusto_connection_string="c", application_id="a",
    application_key="not-a-real-key"))
result = PipelineData("result")
""",
        'step = KustoStep(name="query", compute_target="kusto", database_name="db",\n'
        '                 query_directory="fit", output=result)',
    ),
    "azure_batch_step": (
        "AzureBatchStep",
        """
from azureml.core.compute import BatchCompute, ComputeTarget
from azureml.pipeline.steps import AzureBatchStep

batch = ComputeTarget.attach(ws, "batch", BatchCompute.attach_configuration(
    resource_group=ws.resource_group, account_name="nbbatch"))
""",
        'step = AzureBatchStep(name="exe", create_pool=True, pool_id="pool",\n'
        '                      executable="tool.exe", compute_target=batch,\n'
        '                      source_directory="fit")',
    ),
    "module_step": (
        "ModuleStep",
        """
from azureml.pipeline.core.graph import InputPortDef, OutputPortDef
from azureml.pipeline.core.module import Module
from azureml.pipeline.steps import ModuleStep

module = Module.create(ws, name="fit-module", description="fit as a module")
""",
        'step = ModuleStep(module=module, version="1", compute_target="cpu-nodes")',
    ),
    "notebook_runner_step": (
        "NotebookRunnerStep",
        """
from azureml.contrib.notebook import AzureMLNotebookHandler, NotebookRunConfig
from azureml.contrib.notebook import NotebookRunnerStep

runner = NotebookRunConfig(source_directory="fit", notebook="fit.ipynb",
                           handler=AzureMLNotebookHandler(), parameters={"n": 1})
""",
        'step = NotebookRunnerStep(name="run-notebook", notebook_run_config=runner,\n'
        '                          compute_target="cpu-nodes")',
    ),
    "synapse_spark_step": (
        "SynapseSparkStep",
        """
from azureml.core.compute import SynapseCompute
from azureml.pipeline.steps import SynapseSparkStep

pool = SynapseCompute(ws, "spark-pool")
""",
        'step = SynapseSparkStep(name="spark", file="fit.py", source_directory="fit",\n'
        '                        compute_target=pool, driver_memory="7g")',
    ),
    "estimator_step": (
        "EstimatorStep",
        """
from azureml.pipeline.steps import EstimatorStep
from azureml.train.estimator import Estimator

estimator = Estimator(source_directory="fit", entry_script="fit.py",
                      compute_target="cpu-nodes", pip_packages=["numpy"])
""",
        'step = EstimatorStep(name="fit-estimator", estimator=estimator,\n'
        '                     estimator_entry_script_arguments=[], compute_target="cpu-nodes")',
    ),
    "mpi_step": (
        "MpiStep",
        """
from azureml.pipeline.steps import MpiStep
""",
        'step = MpiStep(name="mpi", source_directory="fit", script_name="fit.py",\n'
        '               node_count=2, process_count_per_node=2, compute_target="cpu-nodes")',
    ),
    "automl_pipeline_builder": (
        "AutoMLPipelineBuilder",
        """
from azureml.contrib.automl.pipeline.steps import AutoMLPipelineBuilder

settings = {"task": "forecasting", "label_column_name": "sales"}
""",
        "step = AutoMLPipelineBuilder.get_many_models_train_steps(\n"
        '    experiment=None, automl_settings=settings, compute="cpu-nodes")[0]',
    ),
}


def main() -> None:
    for name, cells in INTRO.items():
        write(HERE / "intro" / f"{name}.ipynb", cells)
    for name, (kind, setup, step) in UNSUPPORTED.items():
        write(HERE / "unsupported" / f"{name}.ipynb", unsupported_notebook(kind, setup, step))


if __name__ == "__main__":
    main()
