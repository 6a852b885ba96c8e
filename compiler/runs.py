"""Reading the run history a project's runs left in `<default datastore>/.mlpipe/runs/`.

Every runner (local, Airflow, Prefect, KFP) writes the same step records
(`runs/<run id>/steps/<step>.json`), so a run's summary is derived from them: its runner, start,
duration, and status — `failed` when a step failed, else `canceled` when `runs/<run id>/cancel.json`
exists, `running` while a step runs, else `succeeded`. The local runner's and KFP's `run.json`
adds what the records cannot know (parameters). Used by `mlpipe runs`, `mlpipe show` and
`mlpipe report`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .errors import MlpipeError
from .runtime import store
from .runtime.state import STATE_DIR, Datastores, State, datastore_env_var

RUNNER_LABELS = {"local": "local", "airflow": "Airflow", "prefect": "Prefect", "kfp": "KFP"}
# How a step status reads in listings: a completed step "ran".
STATUS_LABELS = {"completed": "ran"}


@dataclass
class Run:
    run_id: str
    folder: str  # runs/<sanitised run id>
    pipeline: str | None
    runner: str | None
    started: float | None
    finished: float | None
    status: str  # succeeded | failed | canceled | running
    steps: dict[str, dict] = field(default_factory=dict)  # step name -> record
    run_record: dict | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        end = self.finished if self.status != "running" or self.finished else time.time()
        return max(0.0, (end or self.started) - self.started)

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.steps.values() if r.get("status") in statuses)

    def counts(self) -> dict[str, int]:
        return {
            "ran": self.count("completed"),
            "reused": self.count("reused"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "canceled": self.count("canceled"),
            "running": self.count("running"),
        }

    def summary(self) -> dict:
        """The JSON of `mlpipe runs --json`."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "runner": self.runner,
            "started": iso(self.started),
            "duration": round(self.duration, 3) if self.duration is not None else None,
            "status": self.status,
            "steps": self.counts(),
        }


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------ where state is


def state_roots(pipelines, pipeline_dir: Path) -> dict[str, set[str]]:
    """{state root: names of the pipelines keeping their state there} for captured pipelines."""
    from .local import _ir_dict

    roots: dict[str, set[str]] = {}
    for p in pipelines:
        root = State(Datastores(_ir_dict(p, pipeline_dir))).root
        roots.setdefault(root, set()).add(p.name)
    return roots


def state_root_here(folder: Path) -> str:
    """The state root of the project in `folder` (its mlpipe.yaml, else the zero-setup default)."""
    from .workspace_config import load

    config = load(folder)
    # The same override the steps honour, so `mlpipe runs` reads where the workers wrote.
    url = os.environ.get(datastore_env_var("workspaceblobstore")) or config.datastores.get(
        "workspaceblobstore"
    )
    if url is None:  # pragma: no cover - the defaults always declare it
        raise MlpipeError(f"{folder}: no default datastore (workspaceblobstore) is declared")
    return store.join(url, STATE_DIR)


# ------------------------------------------------------------------------------------ reading


def _status(records: dict[str, dict], canceled: bool, run_record: dict | None) -> str:
    # The order of mlpipe.runtime.history.run_status (what Run.get_status reports): failed first.
    statuses = {r.get("status") for r in records.values()}
    if "failed" in statuses or (run_record or {}).get("status") == "failed":
        return "failed"
    if canceled or "canceled" in statuses:
        return "canceled"
    if "running" in statuses or not (records or run_record):
        return "running"
    return "succeeded"


def read_run(root: str, folder_name: str) -> Run | None:
    folder = store.join(root, "runs", folder_name)
    steps_dir = store.join(folder, "steps")
    records = {}
    for name in store.list_names(steps_dir):
        if name.endswith(".json"):
            rec = store.read_json(store.join(steps_dir, name))
            if rec is not None:
                records[rec.get("step") or name[:-5]] = rec
    run_record = store.read_json(store.join(folder, "run.json"))
    if not records and run_record is None:
        return None
    canceled = store.exists(store.join(folder, "cancel.json"))
    starts = [r["started"] for r in records.values() if isinstance(r.get("started"), int | float)]
    ends = [r["finished"] for r in records.values() if isinstance(r.get("finished"), int | float)]
    runners = sorted({r["runner"] for r in records.values() if r.get("runner")})
    pipelines = [r.get("pipeline") for r in records.values() if r.get("pipeline")]
    run_id = next((r["run_id"] for r in records.values() if r.get("run_id")), None)
    run_record = run_record or {}
    return Run(
        run_id=run_id or run_record.get("run_id") or folder_name,
        folder=folder,
        pipeline=run_record.get("pipeline") or (pipelines[0] if pipelines else None),
        runner=",".join(runners) or run_record.get("orchestrator"),
        started=min(starts) if starts else None,
        finished=max(ends) if ends else run_record.get("finished"),
        status=_status(records, canceled, run_record),
        steps=records,
        run_record=run_record or None,
    )


def list_runs(root: str, pipelines: set[str] | None = None) -> list[Run]:
    """The runs kept under `root`, newest first (of those pipelines, when given)."""
    runs = []
    for name in store.list_names(store.join(root, "runs")):
        run = read_run(root, name)
        if run is not None and (pipelines is None or run.pipeline in pipelines):
            runs.append(run)
    runs.sort(key=lambda r: (r.started or 0.0, r.run_id), reverse=True)
    return runs


def find_run(roots: list[str], wanted: str) -> Run:
    """A run by its id, its folder name, or an unambiguous prefix of either."""
    from .runtime.state import path_chars, safe_name

    for root in roots:
        run = read_run(root, safe_name(wanted))
        if run is not None:
            return run
    # A prefix of an id with characters a path cannot hold ("manual__2026-12-02T07:30") is a
    # prefix of its folder name once they are replaced (safe_name's hash suffix aside).
    prefixes = (wanted, path_chars(wanted))
    matches = []
    for root in roots:
        for name in store.list_names(store.join(root, "runs")):
            if name.startswith(prefixes):
                matches.append((root, name))
    if len(matches) == 1:
        run = read_run(*matches[0])
        if run is not None:
            return run
    where = ", ".join(store.join(r, "runs") for r in roots)
    if len(matches) > 1:
        names = ", ".join(sorted(n for _, n in matches)[:5])
        raise MlpipeError(f"run {wanted!r} is ambiguous ({names}...): give more of its id")
    raise MlpipeError(
        f"no run {wanted!r} in {where}; `mlpipe runs` lists the runs (give the pipeline FILE "
        "when its state is not in this folder's project)"
    )


# ------------------------------------------------------------------------------------ details


def step_order(run: Run) -> list[str]:
    """Steps upstream first (by their recorded `upstream`), then by start time and name."""
    ups = {n: [u for u in r.get("upstream") or [] if u in run.steps] for n, r in run.steps.items()}
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset = frozenset()) -> int:
        if name not in depth:
            parents = [u for u in ups[name] if u not in seen]
            depth[name] = 1 + max((level(u, seen | {name}) for u in parents), default=-1)
        return depth[name]

    return sorted(run.steps, key=lambda n: (level(n), run.steps[n].get("started") or 0.0, n))


def log_files(run: Run, step: str) -> list[str]:
    """The step's saved stdout / stderr logs (kept when the step ran)."""
    from .runtime.state import safe_name

    out = []
    for stream in ("stdout", "stderr"):
        url = store.join(run.folder, "logs", f"{safe_name(step)}.{stream}.log")
        if store.exists(url):
            out.append(url)
    return out


def step_details(run: Run) -> list[dict]:
    """One dict per step, upstream first: what `mlpipe show --json` and the report show."""
    out = []
    for name in step_order(run):
        rec = run.steps[name]
        status = rec.get("status") or "unknown"
        out.append(
            {
                "step": name,
                "status": status,
                "result": STATUS_LABELS.get(status, status),
                "reason": rec.get("reason") or rec.get("error"),
                "compared_with": rec.get("compared_with"),
                "reused_from": rec.get("reused_from"),
                "started": rec.get("started"),
                "finished": rec.get("finished"),
                "duration": rec.get("duration"),
                "metrics": rec.get("metrics") or {},
                "outputs": {
                    k: {x: v.get(x) for x in ("url", "files", "bytes")}
                    for k, v in (rec.get("outputs") or {}).items()
                },
                "logs": log_files(run, name),
                "error": rec.get("error"),
                "stderr_tail": rec.get("stderr_tail"),
                "upstream": [u for u in rec.get("upstream") or [] if u in run.steps],
                "runner": rec.get("runner"),
            }
        )
    return out


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def short_value(value) -> str:
    if isinstance(value, list):
        return f"{short_value(value[-1])} (last of {len(value)})" if value else "[]"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def runner_label(runner: str | None) -> str:
    if not runner:
        return "?"
    return ",".join(RUNNER_LABELS.get(r, r) for r in runner.split(","))


def relative(path: str) -> str:
    """A local path relative to the current folder when that is shorter."""
    if not store.is_local(path):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return path
    return rel if len(rel) < len(path) else path


# ----------------------------------------------------------------------------------- printing


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)]) + "\n"


def format_runs(runs: list[Run], roots: list[str]) -> str:
    """`mlpipe runs`: one line per run, newest first."""
    if not runs:
        where = ", ".join(relative(store.join(r, "runs")) for r in roots)
        return f"no runs in {where} (give the pipeline FILE to read its datastore's runs)\n"
    rows = []
    for r in runs:
        c = r.counts()
        started = iso(r.started)
        rows.append(
            [
                r.run_id,
                r.pipeline or "?",
                runner_label(r.runner),
                started.replace("T", " ").rstrip("Z") if started else "-",
                human_duration(r.duration),
                r.status,
                str(c["ran"]),
                str(c["reused"]),
                str(c["failed"]),
            ]
        )
    headers = [
        "RUN",
        "PIPELINE",
        "RUNNER",
        "STARTED (UTC)",
        "DURATION",
        "STATUS",
        "RAN",
        "REUSED",
        "FAILED",
    ]
    return _table(headers, rows, right={4, 6, 7, 8})


def format_run(run: Run) -> str:
    """`mlpipe show RUN`: the run, then each step with its result and why."""
    c = run.counts()
    counts = ", ".join(f"{n} {k}" for k, n in c.items() if n)
    started = iso(run.started) or "-"
    lines = [
        f"run {run.run_id}",
        f"  pipeline {run.pipeline or '?'} on {runner_label(run.runner)}: {run.status}, "
        f"started {started}, {human_duration(run.duration)} ({counts or 'no steps'})",
        f"  records {relative(run.folder)}",
    ]
    params = (run.run_record or {}).get("params")
    if params:
        lines.append(
            "  parameters " + ", ".join(f"{k}={short_value(v)}" for k, v in sorted(params.items()))
        )
    for d in step_details(run):
        lines.append("")
        lines.append(f"{d['step']}: {d['result']} in {human_duration(d['duration'])}")
        if d["reason"]:
            lines.append(f"  why: {d['reason']}")
        if d["compared_with"]:
            lines.append(f"  compared with run {d['compared_with']}")
        for k, v in sorted(d["metrics"].items()):
            lines.append(f"  metric {k} = {short_value(v)}")
        for k, o in d["outputs"].items():
            size = (
                f" ({o['files']} files, {o['bytes']} bytes)" if o.get("files") is not None else ""
            )
            lines.append(f"  output {k}: {relative(o.get('url') or '?')}{size}")
        for url in d["logs"]:
            lines.append(f"  log {relative(url)}")
        if d["status"] == "failed" and d["stderr_tail"]:
            lines.append("  stderr (last lines):")
            lines += [f"    {x}" for x in d["stderr_tail"].splitlines()[-10:]]
    return "\n".join(lines) + "\n"
