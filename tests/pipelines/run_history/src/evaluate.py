"""Read what train logged on the pipeline run; cancel the run when the accuracy is too low."""

import argparse
import json
import os

from azureml.core import Run
from common import record

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--threshold", type=float, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
record(args.data, "evaluate")

run = Run.get_context()
metrics = run.parent.get_metrics()
tags = run.parent.get_tags()
run.parent.log("evaluated", 1)
seen = {
    "metrics": metrics,
    "tags": tags,
    "parent_id": run.parent.id,
    "workspace": run.experiment.workspace.name,
    "datastores": sorted(run.experiment.workspace.datastores),
}
with open(os.path.join(args.data, "evaluate_saw.json"), "w", encoding="utf-8") as fh:
    json.dump(seen, fh, sort_keys=True)
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "verdict.txt"), "w", encoding="utf-8") as fh:
    fh.write("worse\n" if metrics["accuracy"] < args.threshold else "better\n")
if metrics["accuracy"] < args.threshold:
    print(f"evaluate: accuracy {metrics['accuracy']} < {args.threshold}: canceling the run")
    run.parent.cancel()
