"""Shared by the steps: note that a step ran (data/executions.log)."""

import os


def record(data: str, step: str) -> None:
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "executions.log"), "a", encoding="utf-8") as fh:
        fh.write(step + "\n")
