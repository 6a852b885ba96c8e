"""List the models the two training steps registered; upload and register a summary."""

import argparse
import json
import os

from azureml.core import Dataset, Datastore, Model, Run, Workspace

parser = argparse.ArgumentParser()
parser.add_argument("--log")
args = parser.parse_args()

run = Run.get_context()
ws = Workspace.from_config()
models = Model.list(ws, name="regtest_model", tags=[["stage", "trained"]])
latest = Model.list(ws, name="regtest_model", latest=True)
scaled_by_2 = Model.list(ws, tags=[["scale", "2"], "total"])
first = Model(ws, name="regtest_model", version=1)
first.add_tags({"checked": "yes"})
path = Model.get_model_path("regtest_model", version=first.version, _workspace=ws)
with open(path) as fh:
    first_content = json.load(fh)
rows = Dataset.get_by_name(ws, "regtest_rows")
summary = {
    "versions": sorted(m.version for m in models),
    "latest": [m.id for m in latest],
    "scaled_by_2_total": [m.tags["total"] for m in scaled_by_2],
    "first_total": first_content["total"],
    "first_tags": Model(ws, name="regtest_model", version=1).tags,
    "dataset": rows.id,
    "dataset_files": rows.to_path(),
    "datasets": sorted(ws.datasets),
    # run.experiment.workspace is the same workspace as Workspace.from_config() (v1 scripts use it)
    "run_workspace": {
        "name": run.experiment.workspace.name,
        "datasets": sorted(run.experiment.workspace.datasets),
        "models": sorted(run.experiment.workspace.models),
        "default": run.experiment.workspace.get_default_datastore().name,
    },
}
os.makedirs("summary", exist_ok=True)
with open("summary/summary.json", "w") as fh:
    json.dump(summary, fh, sort_keys=True)
datastore = Datastore.get(ws, "workspaceblobstore")
datastore.upload_files(["summary/summary.json"], target_path="check", overwrite=True)
Dataset.File.from_files(path=(datastore, "check/summary.json")).register(
    ws, "regtest_summary", create_new_version=True
)
print(json.dumps(summary, sort_keys=True))
with open(args.log, "a") as fh:
    fh.write(f"{run.name}\n")
