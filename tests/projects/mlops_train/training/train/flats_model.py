"""A one-feature linear model of flat prices, in plain Python (no numeric libraries needed)."""

from __future__ import annotations


def split(rows: list[tuple[float, float]], every: int) -> tuple[list, list]:
    """Every `every`-th row goes to the test set; the rest trains."""
    test = [r for i, r in enumerate(rows) if i % every == 0]
    train = [r for i, r in enumerate(rows) if i % every != 0]
    return train, test


def fit(rows: list[tuple[float, float]], shrink: float) -> dict:
    """Least squares on (x, y), with the slope pulled towards zero by `shrink` (0..1)."""
    n = len(rows)
    mean_x = sum(x for x, _ in rows) / n
    mean_y = sum(y for _, y in rows) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in rows)
    var = sum((x - mean_x) ** 2 for x, _ in rows)
    slope = (cov / var) * (1.0 - shrink)
    return {"slope": slope, "intercept": mean_y - slope * mean_x}


def predict(model: dict, x: float) -> float:
    return model["slope"] * x + model["intercept"]


def mean_squared_error(model: dict, rows: list[tuple[float, float]]) -> float:
    return sum((predict(model, x) - y) ** 2 for x, y in rows) / len(rows)
