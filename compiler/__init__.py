"""mlpipe: Azure ML SDK v1 pipelines compiled to Airflow, Prefect and Kubeflow Pipelines.

Importing `mlpipe` is cheap and needs only the standard library: the authoring API and `Run` load on
first use, so step scripts can `from mlpipe import Run` on a worker that has only the runtime.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Run":
        from .runtime.context import Run

        return Run
    if name.startswith("__"):
        raise AttributeError(name)
    from . import api

    try:
        return getattr(api, name)
    except AttributeError:
        raise AttributeError(f"module 'mlpipe' has no attribute {name!r}") from None
