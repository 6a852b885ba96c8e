"""Shared by the step scripts (imported as `util.helper` from the snapshot root)."""

import json
import os

MODEL_FILE = "model.json"


def fit_line(points):
    """Least-squares slope and intercept of [(x, y), ...]."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return {"slope": slope, "intercept": my - slope * mx}


def save_model(folder, model):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, MODEL_FILE), "w") as fh:
        json.dump(model, fh, sort_keys=True)


def load_model(folder):
    with open(os.path.join(folder, MODEL_FILE)) as fh:
        return json.load(fh)
