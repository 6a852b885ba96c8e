"""Iris step: read a tabular dataset through the run context and fit a classifier.

The dataset arrives as a named input ("iris_data", consumed directly, not as files): the script asks
the run context for it and turns it into a pandas DataFrame, as Azure ML v1 scripts do. pandas and
scikit-learn come from the step's environment (the curated scikit-learn environment).

Rows are split deterministically: every fifth row is held out for testing.

Output: <output>/summary.json  row count, per-species feature means, test accuracy
"""

from __future__ import annotations

import argparse
import json
import os

from azureml.core import Run
from sklearn.linear_model import LogisticRegression

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main() -> int:
    parser = argparse.ArgumentParser(description="Fit a classifier on the iris dataset.")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    run = Run.get_context()
    iris_dataset = run.input_datasets["iris_data"]
    dataframe = iris_dataset.to_pandas_dataframe()
    dataframe[FEATURES] = dataframe[FEATURES].astype(float)
    print(f"iris: {len(dataframe)} rows, columns {list(dataframe.columns)}")

    means = dataframe.groupby("species")[FEATURES].mean()
    per_species = {
        species: {f: round(float(means.loc[species, f]), 4) for f in FEATURES}
        for species in sorted(means.index)
    }

    positions = list(range(len(dataframe)))
    test_rows = [i for i in positions if i % 5 == 4]
    train_rows = [i for i in positions if i % 5 != 4]
    train = dataframe.iloc[train_rows]
    test = dataframe.iloc[test_rows]
    model = LogisticRegression(max_iter=1000)
    model.fit(train[FEATURES].to_numpy(), train["species"].to_numpy())
    predicted = model.predict(test[FEATURES].to_numpy())
    expected = list(test["species"])
    correct = sum(1 for i, label in enumerate(predicted) if label == expected[i])
    test_accuracy = round(correct / len(test_rows), 6)
    print(f"iris: logistic regression test accuracy {test_accuracy} on {len(test_rows)} rows")

    run.log("rows", len(dataframe))
    run.log("test_accuracy", test_accuracy)

    os.makedirs(args.output, exist_ok=True)
    summary = {
        "rows": len(dataframe),
        "species": per_species,
        "model": "logistic_regression",
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
        "test_accuracy": test_accuracy,
    }
    with open(os.path.join(args.output, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
