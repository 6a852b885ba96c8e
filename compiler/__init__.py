"""mlpipe: Azure ML SDK v1 pipelines compiled to Airflow, Prefect and Kubeflow Pipelines.

Importing `mlpipe` is cheap and needs only the standard library: the authoring API and `Run` load on
first use, so step scripts can `from mlpipe import Run` on a worker that has only the runtime.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"


def __getattr__(name: str):
    # Only the API's class/constant names (capitalised) resolve lazily; submodules are lowercase and
    # load through the normal import system.
    if not name[:1].isupper():
        raise AttributeError(f"module 'mlpipe' has no attribute {name!r}")
    if name == "Run":
        return importlib.import_module("mlpipe.runtime.context").Run
    api = importlib.import_module("mlpipe.api")
    try:
        return getattr(api, name)
    except AttributeError:
        raise AttributeError(f"module 'mlpipe' has no attribute {name!r}") from None
