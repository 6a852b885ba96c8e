"""mlpipe.runtime: what runs inside one step on any target (local runner, Airflow, Prefect, KFP).

Standard library + fsspec only (fsspec only for non-local URLs); no orchestrator, no pydantic. The names
below load lazily so `from mlpipe.runtime.context import Run` in a step script stays light.

    from mlpipe.runtime import run_step, RunContext
    result = run_step(ir_dict, "train", RunContext(run_id="r1"), on_output=print_line)

CLI: `python -m mlpipe.runtime run-step --ir IR.json --step NAME --run-id ID ...` (see docs/runtime.md).
"""

from __future__ import annotations

_EXPORTS = {
    "run_step": "step",
    "compute_fingerprint": "step",
    "RunContext": "step",
    "StepResult": "step",
    "StepInvocationError": "step",
    "default_cache_dir": "fingerprint",
    "ParameterError": "params",
    "resolve_parameters": "params",
    "StepError": "state",
    "safe_name": "state",
    "Run": "context",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlpipe.runtime' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
