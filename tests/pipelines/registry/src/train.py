"""Read the registered dataset by name and register a model from it."""

import argparse
import json
import os

from azureml.core import Dataset, Datastore, Model, Run, Workspace

parser = argparse.ArgumentParser()
parser.add_argument("--dataset")
parser.add_argument("--scale", type=int)
parser.add_argument("--log")
args = parser.parse_args()

run = Run.get_context()
ws = Workspace.from_config()  # inside a step: the pipeline's workspace, from the run context
assert Datastore.get(ws, "workspaceblobstore").name == "workspaceblobstore"
frame = Dataset.get_by_name(ws, name=args.dataset, version="latest").to_pandas_dataframe()
total = int(frame["y"].sum()) * args.scale

os.makedirs("outputs", exist_ok=True)
with open("outputs/model.json", "w") as fh:
    json.dump({"total": total, "rows": len(frame)}, fh)
model = Model.register(
    workspace=ws,
    model_path="outputs/model.json",
    model_name="regtest_model",
    tags={"total": total, "stage": "trained", "scale": args.scale},
    properties={"rows": len(frame)},
    description=f"scaled by {args.scale}",
    datasets=[("training data", Dataset.get_by_name(ws, args.dataset))],
)
print(f"registered {model.id} with total {total}")
with open(args.log, "a") as fh:
    fh.write(f"{run.name}\n")
