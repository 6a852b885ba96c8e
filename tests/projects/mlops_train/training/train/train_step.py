"""Train step: read the registered dataset, fit the model, log its error on the pipeline run."""

from __future__ import annotations

import argparse
import json
import os

from azureml.core import Dataset, Run
from flats_model import fit, mean_squared_error, split


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser("train")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--dataset_name", required=True)
    parser.add_argument("--dataset_version", default="latest")
    parser.add_argument("--shrink", type=float, default=0.0)
    parser.add_argument("--model_folder", required=True)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    run = Run.get_context()
    workspace = run.experiment.workspace
    with open("config.json") as f:
        config = json.load(f)

    # Looked up by name at run time, so a newer version registered later is picked up.
    dataset = Dataset.get_by_name(workspace, args.dataset_name, args.dataset_version)
    run.parent.tag("dataset_id", dataset.id)
    frame = dataset.to_pandas_dataframe()
    rows = list(zip(frame["size"].astype(float), frame["price"].astype(float), strict=True))
    train_rows, test_rows = split(rows, config["split"]["every"])

    model = fit(train_rows, args.shrink)
    mse = mean_squared_error(model, test_rows)
    print(f"trained on {len(train_rows)} rows with shrink={args.shrink}: mse={mse:.3f}")
    for name, value in (("shrink", args.shrink), ("mse", mse)):
        run.log(name, value)
        run.parent.log(name, value)

    os.makedirs(args.model_folder, exist_ok=True)
    os.makedirs("outputs", exist_ok=True)
    for folder in (args.model_folder, "outputs"):
        with open(os.path.join(folder, args.model_name), "w") as f:
            json.dump(model, f, indent=2, sort_keys=True)
    run.tag("run_type", "train")


if __name__ == "__main__":
    main()
