"""What a KFP executor runs: one pipeline step (or the run summary) through the mlpipe runtime.

`mlpipe compile --target kfp` gives every step a lightweight Python component: a small module kfp's
executor (`python3 -m kfp.dsl.executor_main`) loads, holding the step's slice of the IR (and its source
snapshot when small) as base64 text, and a function that calls `run_step` below. The same module runs
in a KFP pod and under `kfp.local.SubprocessRunner`.

Runs in the step's image: the standard library and `mlpipe.runtime` only (no kfp, no pydantic).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
import zlib

TRUE_TEXT = ("1", "true", "yes")


# ------------------------------------------------------------------------------------ payloads


def encode(doc: dict) -> str:
    """JSON -> zlib -> base64: compact, deterministic, and free of anything KFP or a shell reads."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(zlib.compress(text.encode("utf-8"))).decode("ascii")


def decode(text: str) -> dict:
    return json.loads(zlib.decompress(base64.b64decode(text)).decode("utf-8"))


def _flag(value) -> bool:
    """A KFP BOOLEAN as it arrives (a bool; text when a caller passed a string)."""
    if isinstance(value, str):
        return value.strip().lower() in TRUE_TEXT
    return bool(value)


def _print_line(stream: str, line: str) -> None:
    from mlpipe.runtime.__main__ import is_status_line

    if stream == "stderr" and is_status_line(line):
        stream = "stdout"  # mlpipe's progress lines are not errors (see is_status_line)
    out = sys.stdout if stream == "stdout" else sys.stderr
    try:
        out.write(line + "\n")
    except UnicodeEncodeError:
        out.buffer.write((line + "\n").encode("utf-8", "replace"))
    out.flush()


def _runtime():
    try:
        import mlpipe.runtime as runtime

        runtime.run_step  # noqa: B018 - loads the runtime now, to fail here with a clear message
    except ImportError as exc:  # pragma: no cover - an image without mlpipe
        raise SystemExit(
            f"mlpipe: this image has no mlpipe runtime ({exc}); build the step's image with "
            "mlpipe at the compiler's version (distribution mlpipe-compiler, not 'mlpipe' from "
            "PyPI; see docs/kfp.md, 'What a pod needs')"
        ) from None
    return runtime


# ----------------------------------------------------------------------------------------- step


def run_step(
    step_payload: str, snapshot: str, run_id: str, regenerate_outputs, values: dict
) -> None:
    """Run (or reuse) the step; exit like `python -m mlpipe.runtime run-step` when it fails."""
    spec = decode(step_payload)
    ir = spec["ir"]
    name = spec["step"]
    params = {spec["inputs"][key]: value for key, value in values.items()}
    rt = _runtime()
    # In a KFP pod the command's prefix installed the environment's packages into the image's
    # Python (packages_to_install style) and exported MLPIPE_USE_CURRENT_PYTHON=1. Elsewhere (kfp.local)
    # the runtime builds the environment's venv itself, cached, exactly as the local runner does.
    use_current = os.environ.get("MLPIPE_USE_CURRENT_PYTHON", "").strip().lower() in TRUE_TEXT
    os.environ.setdefault("MLPIPE_RUNNER", "kfp")  # step records say which runner ran them
    _print_line("stderr", f"mlpipe: KFP run {run_id}: step {name!r}")
    with tempfile.TemporaryDirectory(prefix="mlpipe-kfp-") as tmp:
        snapshot_store = None
        if snapshot:
            digest = ir["steps"][0]["snapshot"]["hash"]
            with open(os.path.join(tmp, f"{digest}.tar.gz"), "wb") as fh:
                fh.write(base64.b64decode(snapshot))
            snapshot_store = tmp
        ctx = rt.RunContext(
            run_id=run_id,
            params=params,
            regenerate_outputs=_flag(regenerate_outputs),
            snapshot_store=snapshot_store,
            experiment=spec.get("experiment"),
            use_current_python=use_current,
        )
        try:
            result = rt.run_step(ir, name, ctx, on_output=_print_line)
        except (rt.ParameterError, rt.StepInvocationError) as exc:
            _print_line("stderr", f"mlpipe: error: {exc}")
            raise SystemExit(2) from None
    if not result.ok:
        raise SystemExit(result.exit_code if result.exit_code >= 1 else 1)


# -------------------------------------------------------------------------------------- summary


def summarize(run_payload: str, run_id: str, regenerate_outputs, values: dict) -> None:
    """After every step (even failed ones): record the run like the local runner does.

    Writes `<default datastore>/.mlpipe/runs/<run id>/run.json` and a `skipped` record for each step
    that never ran because an upstream step failed, and prints one line per step. It does not fail
    the task: KFP already marks the run failed through the failed step's own task.
    """
    spec = decode(run_payload)
    _runtime()
    from mlpipe.runtime import store
    from mlpipe.runtime.state import Datastores, State

    state = State(Datastores(spec["ir"]))
    from mlpipe.runtime import history

    marker = history.canceled(state.root, run_id)
    statuses: dict[str, dict] = {}
    ok = True
    for name in spec["order"]:
        record = store.read_json(state.step_record(run_id, name)) or {}
        status = record.get("status")
        reason = record.get("error") or record.get("reason")
        if status is None and marker is not None:  # run.parent.cancel(): never started
            status, reason = "canceled", history.cancel_reason(marker)
            store.write_json_atomic(
                state.step_record(run_id, name),
                {"run_id": run_id, "step": name, "status": status, "reason": reason, "outputs": {}},
            )
        elif status is None:
            bad = sorted(u for u in spec["upstream"].get(name, []) if not _done(statuses.get(u)))
            status = "skipped"
            reason = (
                f"upstream {', '.join(bad)} did not complete" if bad else "did not run in this run"
            )
            store.write_json_atomic(
                state.step_record(run_id, name),
                {
                    "run_id": run_id,
                    "step": name,
                    "pipeline": spec["ir"].get("name"),
                    "runner": os.environ.get("MLPIPE_RUNNER") or "kfp",
                    "upstream": sorted(spec["upstream"].get(name, [])),
                    "status": status,
                    "reason": reason,
                    "outputs": {},
                },
            )
        elif status == "running":  # the pod died without a word
            status, reason = "failed", "the step's pod ended without a result"
        statuses[name] = {
            "status": status,
            "duration": record.get("duration") or 0.0,
            "reason": reason,
        }
        ok = ok and _done(statuses[name])
        detail = f" ({reason})" if reason and status in ("failed", "skipped", "canceled") else ""
        _print_line("stderr", f"mlpipe: {name}: {status}{detail}")
    params = {spec["inputs"][key]: value for key, value in values.items()}
    store.write_json_atomic(
        state.run_record(run_id),
        {
            "run_id": run_id,
            "pipeline": spec["ir"].get("name"),
            "experiment": spec.get("experiment"),
            "params": params,
            "regenerate_outputs": _flag(regenerate_outputs),
            "status": "failed" if not ok else "canceled" if marker is not None else "completed",
            "canceled_by": (marker or {}).get("step"),
            "orchestrator": "kfp",
            "finished": time.time(),
            "steps": statuses,
        },
    )
    verdict = "failed" if not ok else "was canceled" if marker is not None else "succeeded"
    _print_line("stderr", f"mlpipe: KFP run {run_id} {verdict}")


def _done(entry: dict | None) -> bool:
    return bool(entry) and entry["status"] in ("completed", "reused", "canceled")
