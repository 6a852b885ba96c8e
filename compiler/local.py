"""The embedded local runner: `mlpipe run FILE` executes a captured pipeline on this machine.

Steps run through the same runtime every backend uses (`mlpipe.runtime.run_step`), in dependency
order on a thread pool: independent steps in parallel, at most `max_nodes` at once per compute target
and at most the machine's bound overall. A failed step skips its downstream; independent branches finish.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .errors import MlpipeError
from .ir import PipelineIR
from .runtime import history, store
from .runtime.params import ParameterError, resolve_parameters
from .runtime.state import Datastores, State
from .runtime.step import RunContext, StepResult, run_step, terminate_all
from .snapshot import write_snapshot


class SourceChangedError(RuntimeError):
    """A step's source directory no longer matches the snapshot hash captured in the IR."""


@dataclass
class StepOutcome:
    name: str
    status: str  # completed | reused | failed | skipped | canceled
    duration: float = 0.0
    result: StepResult | None = None
    reason: str | None = None

    @property
    def label(self) -> str:
        return {"completed": "ran"}.get(self.status, self.status)


@dataclass
class PipelineRunResult:
    run_id: str
    pipeline: str
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    duration: float = 0.0
    params: dict = field(default_factory=dict)
    regenerate_outputs: bool = False
    canceled_by: dict | None = None  # the cancel marker when a step called run.parent.cancel()

    @property
    def ok(self) -> bool:
        """Nothing failed: a canceled run is not a failure."""
        return all(o.status in ("completed", "reused", "canceled") for o in self.steps.values())

    @property
    def status(self) -> str:
        if not self.ok:
            return "failed"
        return "canceled" if self.canceled_by is not None else "completed"

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def statuses(self) -> dict[str, str]:
        return {name: o.status for name, o in self.steps.items()}


def make_run_id(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "run"
    return f"{base}_{stamp}_{secrets.token_hex(3)}"


def _ir_dict(ir: PipelineIR, pipeline_dir: Path) -> dict:
    doc = ir.model_dump(mode="json")
    for ds in doc.get("datastores") or []:
        url = ds["url"]
        if store.is_local(url) and not url.startswith("file://") and not os.path.isabs(url):
            ds["url"] = str((pipeline_dir / url).resolve())
    return doc


def write_snapshots(
    ir: PipelineIR, pipeline_dir: Path, snapshot_store: str, cache_dir: str
) -> None:
    """Pack every step's source directory into the store; fail if it changed since capture."""
    done: dict[str, str] = {}
    for step in ir.steps:
        src = Path(step.source_directory)
        src = src if src.is_absolute() else pipeline_dir / src
        key = str(src.resolve())
        if key not in done:
            if store.is_local(snapshot_store):
                info = write_snapshot(src, store.local_path(snapshot_store))
            else:
                staging = Path(cache_dir) / "snapshot-staging"
                info = write_snapshot(src, staging)
                remote = store.join(snapshot_store, f"{info.hash}.tar.gz")
                if not store.exists(remote):
                    store.write_bytes_atomic(remote, (staging / f"{info.hash}.tar.gz").read_bytes())
            done[key] = info.hash
        if done[key] != step.snapshot.hash:
            raise SourceChangedError(
                f"step {step.name!r}: {step.source_directory} changed since the pipeline was "
                f"captured (snapshot {done[key][:12]} != {step.snapshot.hash[:12]}); capture again"
            )


class _Printer:
    """Prints step output prefixed with the step name; thread safe."""

    def __init__(self, console, progress=None):
        self.console = console
        self.progress = progress
        self.lock = threading.Lock()

    def line(self, step: str, stream: str, text: str) -> None:
        from rich.text import Text

        out = Text(f"[{step}] ", style="bold cyan")
        style = None
        if text.startswith("mlpipe: "):
            style = "dim"
        elif stream == "stderr":
            style = "yellow"
        out.append(text, style=style)
        with self.lock:
            target = self.progress.console if self.progress is not None else self.console
            target.print(out, soft_wrap=True, highlight=False, markup=False)


def run_pipeline(
    ir: PipelineIR,
    pipeline_dir: str | os.PathLike,
    *,
    params: dict | None = None,
    regenerate_outputs: bool = False,
    console=None,
    cache_dir: str | None = None,
    max_parallel: int | None = None,
    run_id: str | None = None,
    use_current_python: bool = False,
) -> PipelineRunResult:
    """Run the pipeline on this machine. Raises mlpipe.runtime.ParameterError for a bad --param."""
    from rich.console import Console

    console = console if console is not None else Console()
    pipeline_dir = Path(pipeline_dir).resolve()
    started = time.monotonic()
    doc = _ir_dict(ir, pipeline_dir)

    submission = ir.submissions[-1] if ir.submissions else None
    overrides = dict(submission.pipeline_parameters) if submission else {}
    overrides.update(params or {})
    try:
        resolve_parameters(doc, overrides)  # bad names / values fail before anything runs
    except ParameterError as exc:
        raise MlpipeError(str(exc)) from None
    regenerate = bool(regenerate_outputs) or bool(submission and submission.regenerate_outputs)
    experiment = submission.experiment if submission else None
    run_id = run_id or make_run_id(experiment or ir.name)

    datastores = Datastores(doc)
    state = State(datastores)
    cache = os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else None
    ctx = RunContext(
        run_id=run_id,
        params=overrides,
        regenerate_outputs=regenerate,
        snapshot_store=state.snapshots(),
        experiment=experiment,
        cache_dir=cache,
        use_current_python=use_current_python,
        runner="local",
    )
    try:
        write_snapshots(ir, pipeline_dir, state.snapshots(), ctx.resolved_cache_dir())
    except SourceChangedError as exc:
        raise MlpipeError(str(exc)) from None

    result = PipelineRunResult(run_id, ir.name, params=overrides, regenerate_outputs=regenerate)
    order = ir.topological_order()
    deps = ir.dependencies()
    limits: dict[str, int] = {}
    for step in ir.steps:
        if step.compute:
            try:
                limits[step.compute] = max(1, ir.compute(step.compute).max_nodes)
            except KeyError:
                pass
    bound = max_parallel or int(os.environ.get("MLPIPE_MAX_PARALLEL", "0") or 0)
    bound = bound or max(2, os.cpu_count() or 2)

    from rich.markup import escape

    console.print(
        f"mlpipe: running pipeline [bold]{escape(ir.name)}[/bold] as run [bold]{run_id}[/bold]"
        + (" (regenerate outputs)" if regenerate else ""),
        highlight=False,
        soft_wrap=True,
    )
    progress = None
    task = None
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        task = progress.add_task("steps", total=len(order))
        progress.start()
    printer = _Printer(console, progress)

    def execute(name: str) -> StepOutcome:
        step = ir.step(name)
        t0 = time.monotonic()
        attempts = max(0, step.retries) + 1
        res: StepResult | None = None
        for attempt in range(attempts):
            try:
                res = run_step(
                    doc, name, ctx, on_output=lambda stream, line: printer.line(name, stream, line)
                )
            except Exception as exc:  # malformed IR: report as a failure of this step
                printer.line(name, "stderr", f"mlpipe: error: {exc}")
                return StepOutcome(name, "failed", time.monotonic() - t0, None, str(exc))
            if res.ok or attempt == attempts - 1:
                break
            printer.line(name, "stderr", f"mlpipe: retrying ({attempt + 1}/{attempts - 1})")
        return StepOutcome(name, res.status, time.monotonic() - t0, res, res.error)

    running: dict[Future, str] = {}
    in_use: dict[str, int] = {}
    pending = list(order)
    pool = ThreadPoolExecutor(max_workers=bound, thread_name_prefix="mlpipe-step")
    previous_sigterm = _install_sigterm()
    try:
        while pending or running:
            # Skip what can no longer run; start what is ready, within the bounds.
            for name in list(pending):
                ups = deps[name]
                bad = [u for u in ups if u in result.steps and not _ok(result.steps[u])]
                if bad:
                    pending.remove(name)
                    reason = f"upstream {', '.join(sorted(bad))} did not complete"
                    result.steps[name] = StepOutcome(name, "skipped", reason=reason)
                    _record_skip(state, run_id, name, reason, sorted(ups), ir.name)
                    if progress is not None:
                        progress.advance(task)
                    continue
                if not all(u in result.steps for u in ups):
                    continue
                if len(running) >= bound:
                    break
                compute = ir.step(name).compute
                if compute in limits and in_use.get(compute, 0) >= limits[compute]:
                    continue
                pending.remove(name)
                if compute in limits:
                    in_use[compute] = in_use.get(compute, 0) + 1
                running[pool.submit(execute, name)] = name
            if progress is not None:
                progress.update(task, description="running: " + ", ".join(sorted(running.values())))
            if not running:
                if pending:  # only possible if dependencies are unknown steps
                    for name in pending:
                        result.steps[name] = StepOutcome(name, "skipped", reason="unmet dependency")
                    pending.clear()
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                name = running.pop(fut)
                compute = ir.step(name).compute
                if compute in limits:
                    in_use[compute] -= 1
                result.steps[name] = fut.result()
                if progress is not None:
                    progress.advance(task)
            if result.canceled_by is None:
                result.canceled_by = _cancel_pending(state, run_id, pending, result)
    except BaseException:  # Ctrl-C included: stop every running script, then unwind
        terminate_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _restore_sigterm(previous_sigterm)
        if progress is not None:
            progress.stop()

    result.steps = {name: result.steps[name] for name in order if name in result.steps}
    result.duration = time.monotonic() - started
    try:
        store.write_json_atomic(
            state.run_record(run_id),
            {
                "run_id": run_id,
                "pipeline": ir.name,
                "experiment": experiment,
                "params": overrides,
                "regenerate_outputs": regenerate,
                "status": result.status,
                "canceled_by": (result.canceled_by or {}).get("step"),
                "duration": result.duration,
                "steps": {
                    n: {"status": o.status, "duration": o.duration, "reason": o.reason}
                    for n, o in result.steps.items()
                },
            },
        )
    except Exception as exc:  # pragma: no cover - the run itself is done
        console.print(f"mlpipe: could not write the run record: {exc}", markup=False)
    _summary(console, result)
    return result


def _install_sigterm():
    """SIGTERM unwinds like Ctrl-C, so the step scripts (in their own process groups) are stopped."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:
            pass


def _record_skip(
    state: State, run_id: str, name: str, reason: str, upstream: list[str], pipeline: str
) -> None:
    try:
        store.write_json_atomic(
            state.step_record(run_id, name),
            {
                "run_id": run_id,
                "step": name,
                "pipeline": pipeline,
                "runner": "local",
                "upstream": upstream,
                "status": "skipped",
                "reason": reason,
                "outputs": {},
            },
        )
    except Exception:  # pragma: no cover - informational only
        pass


def _cancel_pending(state: State, run_id: str, pending: list, result: PipelineRunResult):
    """After run.parent.cancel(): every step not started yet is canceled (none of them runs)."""
    try:
        marker = history.canceled(state.root, run_id)
    except Exception:  # an unreachable datastore: the steps report it themselves
        return None
    if marker is None:
        return None
    reason = history.cancel_reason(marker)
    for name in pending:
        result.steps[name] = StepOutcome(name, "canceled", reason=reason)
        try:
            store.write_json_atomic(
                state.step_record(run_id, name),
                {
                    "run_id": run_id,
                    "step": name,
                    "status": "canceled",
                    "reason": reason,
                    "canceled_by": marker.get("step"),
                    "outputs": {},
                },
            )
        except Exception:  # pragma: no cover - informational only
            pass
    pending.clear()
    return marker


def _ok(outcome: StepOutcome) -> bool:
    return outcome.status in ("completed", "reused")


def _summary(console, result: PipelineRunResult) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"run {result.run_id}", title_justify="left")
    table.add_column("step")
    table.add_column("result")
    table.add_column("duration", justify="right")
    table.add_column("detail", overflow="fold")
    styles = {
        "completed": "green",
        "reused": "cyan",
        "failed": "bold red",
        "skipped": "yellow",
        "canceled": "magenta",
    }
    for name, o in result.steps.items():
        detail = ""
        if o.status == "reused" and o.result is not None:
            detail = f"from {o.result.reused_from}"
        elif o.status == "failed":
            detail = o.reason or ""
        elif o.status in ("skipped", "canceled"):
            detail = o.reason or ""
        table.add_row(
            Text(name), Text(o.label, style=styles[o.status]), f"{o.duration:.1f}s", Text(detail)
        )
    console.print(table)
    verdict = {
        "completed": "[green]succeeded[/]",
        "canceled": "[magenta]was canceled[/]",
        "failed": "[bold red]failed[/]",
    }[result.status]
    if result.canceled_by is not None:
        from rich.markup import escape

        verdict += escape(f" ({history.cancel_reason(result.canceled_by)})")
    console.print(
        f"mlpipe: run {result.run_id} {verdict} in {result.duration:.1f}s",
        highlight=False,
        soft_wrap=True,
    )
