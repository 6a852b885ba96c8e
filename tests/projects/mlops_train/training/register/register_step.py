"""Register step: register the trained model with the metrics of this pipeline run as tags."""

from __future__ import annotations

import argparse
import json
import os

from azureml.core import Dataset, Run
from azureml.core.model import Model


def main() -> None:
    parser = argparse.ArgumentParser("register")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_folder", required=True)
    args = parser.parse_args()

    run = Run.get_context()
    workspace = run.experiment.workspace
    with open("config.json") as f:
        config = json.load(f)

    metrics = run.parent.get_metrics()
    tags = {"experiment_name": run.experiment.name, "pipeline_run": run.parent.id}
    for name in config["registration"]["metric_tags"]:
        if name in metrics:
            tags[name] = metrics[name]
        else:
            print(f"metric {name} was not logged on the pipeline run")

    dataset_id = run.parent.get_tags()["dataset_id"]
    model = Model.register(
        workspace=workspace,
        model_path=os.path.join(args.model_folder, args.model_name),
        model_name=args.model_name,
        tags=tags,
        description="flat price model",
        datasets=[("training data", Dataset.get_by_id(workspace, dataset_id))],
    )
    print(f"registered {model.name} version {model.version} with tags {model.tags}")


if __name__ == "__main__":
    main()
