"""Log on the pipeline run and on this step run; leave files in outputs/ and logs/."""

import argparse
import os

from azureml.core import Run
from common import record

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
record(args.data, "train")

run = Run.get_context()
assert not run.id.startswith("OfflineRun"), run.id
run.parent.log("accuracy", 0.42)
run.parent.log("loss", 0.9)
run.parent.log("loss", 0.7)
run.parent.tag("stage", "trained")
run.log("epochs", 3)
run.tag("kind", "train")
run.add_properties({"framework": "none"})

os.makedirs("outputs", exist_ok=True)
with open(os.path.join("outputs", "model.txt"), "w", encoding="utf-8") as fh:
    fh.write("weights 1 2 3\n")
os.makedirs("logs", exist_ok=True)
with open(os.path.join("logs", "train.log"), "w", encoding="utf-8") as fh:
    fh.write("epoch 1\nepoch 2\nepoch 3\n")
with open("notes.txt", "w", encoding="utf-8") as fh:
    fh.write("uploaded by train\n")
run.upload_file("extra/notes.txt", "notes.txt")
print("train: files", run.get_file_names())
