"""Run history kept with mlpipe's state: pipeline-run metrics and tags, step files, cancel.

Layout under `<state root>/runs/<run-id>/` (the state root is `<default datastore>/.mlpipe`):

    cancel.json              the cancel marker, written once by `run.parent.cancel()`
    parent/<step>.json       what step <step> logged / tagged on the pipeline run (only that step
                             writes this file, so steps on several machines never share a file)
    files/<step>/...         the step run's files: its `outputs/` and `logs/` folders and what it
                             uploaded with `upload_file` / `upload_folder`

Standard library (+ fsspec through `store` for remote datastores): step scripts import this.
"""

from __future__ import annotations

import json
import os
import socket
import time

from . import store
from .state import safe_name

CANCEL_FILE = "cancel.json"
FINAL_STATUSES = ("completed", "reused", "failed", "skipped", "canceled")


def run_dir(state_root: str, run_id: str) -> str:
    return store.join(state_root, "runs", safe_name(run_id))


# ------------------------------------------------------------------------------------ cancel


def cancel_marker(state_root: str, run_id: str) -> str:
    return store.join(run_dir(state_root, run_id), CANCEL_FILE)


def request_cancel(state_root: str, run_id: str, step: str | None, reason: str = "") -> bool:
    """Write the cancel marker; True when this call wrote it (False: already canceled)."""
    doc = {
        "run_id": run_id,
        "step": step,
        "reason": reason or (f"run.parent.cancel() in step {step!r}" if step else "canceled"),
        "time": time.time(),
        "host": socket.gethostname(),
    }
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return store.write_once(cancel_marker(state_root, run_id), data)


def canceled(state_root: str, run_id: str) -> dict | None:
    """The cancel marker's content when the run was canceled (a torn marker still counts)."""
    data = store.read_bytes(cancel_marker(state_root, run_id))  # one request: checked per step
    if data is None:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        doc = None
    return doc if isinstance(doc, dict) else {"run_id": run_id, "step": None, "reason": "canceled"}


def cancel_reason(marker: dict) -> str:
    step = marker.get("step")
    return f"run canceled by step {step!r}" if step else "run canceled"


def run_status(state_root: str, run_id: str) -> str:
    """A run's status from its step records and marker: failed > canceled > running > completed.

    Steps that have not started yet have no record: between steps a run reads as completed.
    """
    steps = store.join(run_dir(state_root, run_id), "steps")
    statuses = []
    for name in store.list_names(steps):
        if name.endswith(".json"):
            rec = store.read_json(store.join(steps, name)) or {}
            statuses.append(rec.get("status"))
    if "failed" in statuses:
        return "failed"
    if canceled(state_root, run_id) is not None:
        return "canceled"
    if any(s not in FINAL_STATUSES for s in statuses):
        return "running"
    return "completed"


# ------------------------------------------------------------------------- pipeline-run log


def parent_file(state_root: str, run_id: str, step: str) -> str:
    return store.join(run_dir(state_root, run_id), "parent", safe_name(step) + ".json")


def write_parent_entries(state_root: str, run_id: str, step: str, doc: dict) -> None:
    """Replace this step's own contribution to the pipeline run ({metrics: [...], tags: {...}})."""
    store.write_json_atomic(parent_file(state_root, run_id, step), dict(doc, step=step))


def parent_entries(state_root: str, run_id: str) -> list[dict]:
    """Every step's contribution to the pipeline run, read from state."""
    folder = store.join(run_dir(state_root, run_id), "parent")
    docs = []
    for name in store.list_names(folder):
        if name.endswith(".json"):
            doc = store.read_json(store.join(folder, name))
            if doc is not None:
                docs.append(doc)
    return docs


def merge_metrics(entries: list[dict]) -> dict:
    """{name: value} for a metric logged once, {name: [values in time order]} otherwise."""
    items = sorted(
        (m for e in entries for m in e.get("metrics") or []),
        key=lambda m: (m.get("time") or 0, m.get("seq") or 0),
    )
    return collapse(items)


def collapse(items: list[dict]) -> dict:
    collected: dict[str, list] = {}
    for m in items:
        collected.setdefault(m["name"], []).append(m.get("value"))
    return {k: (v[0] if len(v) == 1 else v) for k, v in collected.items()}


def merge_tags(entries: list[dict]) -> dict:
    """Tags of every step; where two steps set one tag, the later write wins."""
    stamped = []
    for e in entries:
        for key, (value, when) in (e.get("tags") or {}).items():
            stamped.append((when or 0, key, value))
    return {key: value for _, key, value in sorted(stamped, key=lambda t: t[0])}


# -------------------------------------------------------------------------------- run files


def files_dir(state_root: str, run_id: str, step: str) -> str:
    return store.join(run_dir(state_root, run_id), "files", safe_name(step))


def collect_files(cwd: str, uploads: str) -> list[tuple[str, str]]:
    """The step run's files: `outputs/` and `logs/` of its working folder and its uploads."""
    found: dict[str, str] = {}
    for folder in ("outputs", "logs"):
        root = os.path.join(cwd, folder)
        if os.path.isdir(root):
            for path in store._walk_local(root):
                if os.path.isfile(path):
                    rel = os.path.relpath(path, cwd).replace(os.sep, "/")
                    found[rel] = path
    if os.path.isdir(uploads):
        for path in store._walk_local(uploads):
            if os.path.isfile(path):
                found[os.path.relpath(path, uploads).replace(os.sep, "/")] = path
    return sorted((path, rel) for rel, path in found.items())


def keep_files(state_root: str, run_id: str, step: str, files: list[tuple[str, str]]) -> list:
    """Copy the step run's files into state; returns their names."""
    if not files:
        return []
    store.publish_tree(files, files_dir(state_root, run_id, step))
    return sorted(rel for _, rel in files)


__all__ = [
    "CANCEL_FILE",
    "cancel_marker",
    "cancel_reason",
    "canceled",
    "collect_files",
    "files_dir",
    "keep_files",
    "merge_metrics",
    "merge_tags",
    "parent_entries",
    "parent_file",
    "request_cancel",
    "run_dir",
    "run_status",
    "write_parent_entries",
]
