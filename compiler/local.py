"""The embedded local runner: `mlpipe run FILE` executes a captured pipeline on this machine.

Steps run through the same runtime every backend uses (`mlpipe.runtime.run_step`), in dependency
order on a thread pool: independent steps in parallel, at most `max_nodes` at once per compute target
and at most the machine's bound overall. A failed step skips its downstream; independent branches finish.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from .errors import MlpipeError
from .ir import PipelineIR
from .runtime import history, store
from .runtime.params import ParameterError, resolve_parameters
from .runtime.state import Datastores, State, safe_name
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
    isolate_steps: bool | None = None,
) -> PipelineRunResult:
    """Run the pipeline on this machine. Raises mlpipe.runtime.ParameterError for a bad --param.

    `isolate_steps` (default: `$MLPIPE_ISOLATE_STEPS=1`) runs every step as on its own machine:
    a fresh temporary folder per step with its own HOME, TMPDIR and mlpipe cache."""
    from rich.console import Console

    console = console if console is not None else Console()
    pipeline_dir = Path(pipeline_dir).resolve()
    started = time.monotonic()
    doc, ctx, state = _prepare(
        ir, pipeline_dir, params, regenerate_outputs, run_id, cache_dir, use_current_python
    )
    try:
        write_snapshots(ir, pipeline_dir, state.snapshots(), ctx.resolved_cache_dir())
    except SourceChangedError as exc:
        raise MlpipeError(str(exc)) from None

    result = PipelineRunResult(
        ctx.run_id, ir.name, params=ctx.params, regenerate_outputs=ctx.regenerate_outputs
    )
    if isolate_steps is None:
        isolate_steps = os.environ.get("MLPIPE_ISOLATE_STEPS") == "1"
    from rich.markup import escape

    console.print(
        f"mlpipe: running pipeline [bold]{escape(ir.name)}[/bold] as run [bold]{ctx.run_id}[/bold]"
        + (" (regenerate outputs)" if ctx.regenerate_outputs else "")
        + (" (steps isolated)" if isolate_steps else ""),
        highlight=False,
        soft_wrap=True,
    )
    progress = _start_progress(console, len(ir.steps))
    runner = _Scheduler(ir, doc, ctx, state, result, _Printer(console, progress), isolate_steps)
    try:
        runner.run(_parallel_bound(max_parallel))
    finally:
        if progress is not None:
            progress.stop()

    order = ir.topological_order()
    result.steps = {name: result.steps[name] for name in order if name in result.steps}
    result.duration = time.monotonic() - started
    _write_run_record(console, state, ctx, result)
    _summary(console, result)
    return result


def _prepare(
    ir: PipelineIR,
    pipeline_dir: Path,
    params: dict | None,
    regenerate_outputs: bool,
    run_id: str | None,
    cache_dir: str | None,
    use_current_python: bool,
) -> tuple[dict, RunContext, State]:
    """The IR as the runtime reads it and the run's context: parameters resolved and checked
    (bad names / values fail before anything runs), the submission's settings applied."""
    doc = _ir_dict(ir, pipeline_dir)
    submission = ir.submissions[-1] if ir.submissions else None
    overrides = dict(submission.pipeline_parameters) if submission else {}
    overrides.update(params or {})
    try:
        resolve_parameters(doc, overrides)
    except ParameterError as exc:
        raise MlpipeError(str(exc)) from None
    regenerate = bool(regenerate_outputs) or bool(submission and submission.regenerate_outputs)
    experiment = submission.experiment if submission else None
    state = State(Datastores(doc))
    ctx = RunContext(
        run_id=run_id or make_run_id(experiment or ir.name),
        params=overrides,
        regenerate_outputs=regenerate,
        snapshot_store=state.snapshots(),
        experiment=experiment,
        cache_dir=os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else None,
        use_current_python=use_current_python,
        runner="local",
    )
    return doc, ctx, state


def _parallel_bound(max_parallel: int | None) -> int:
    bound = max_parallel or int(os.environ.get("MLPIPE_MAX_PARALLEL", "0") or 0)
    return bound or max(2, os.cpu_count() or 2)


def _start_progress(console, total: int):
    """A progress bar on a terminal only (None elsewhere)."""
    if not console.is_terminal:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    )
    progress.add_task("steps", total=total)
    progress.start()
    return progress


class _Scheduler:
    """Starts steps in dependency order on a thread pool, within the per-compute `max_nodes` and
    the overall bound; skips the downstream of failed steps; stops starting after a cancel."""

    def __init__(self, ir, doc, ctx, state, result, printer, isolate: bool):
        self.ir, self.doc, self.ctx, self.state, self.result = ir, doc, ctx, state, result
        self.printer = printer
        self.progress = printer.progress
        self.isolate = isolate
        self.deps = ir.dependencies()
        self.pending = list(ir.topological_order())
        self.running: dict[Future, str] = {}
        self.in_use: dict[str, int] = {}
        self.limits: dict[str, int] = {}
        for step in ir.steps:
            if step.compute:
                try:
                    self.limits[step.compute] = max(1, ir.compute(step.compute).max_nodes)
                except KeyError:
                    pass

    def _advance(self, description: str | None = None) -> None:
        if self.progress is not None:
            task = self.progress.task_ids[0]
            if description is None:
                self.progress.advance(task)
            else:
                self.progress.update(task, description=description)

    def run(self, bound: int) -> None:
        pool = ThreadPoolExecutor(max_workers=bound, thread_name_prefix="mlpipe-step")
        previous_sigterm = _install_sigterm()
        try:
            while self.pending or self.running:
                self._start_ready(pool, bound)
                self._advance("running: " + ", ".join(sorted(self.running.values())))
                if not self.running:
                    for name in self.pending:  # only possible if dependencies are unknown steps
                        self.result.steps[name] = StepOutcome(
                            name, "skipped", reason="unmet dependency"
                        )
                    self.pending.clear()
                    break
                done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
                for fut in done:
                    name = self.running.pop(fut)
                    compute = self.ir.step(name).compute
                    if compute in self.limits:
                        self.in_use[compute] -= 1
                    self.result.steps[name] = fut.result()
                    self._advance()
                if self.result.canceled_by is None:
                    self.result.canceled_by = _cancel_pending(
                        self.state, self.ctx.run_id, self.pending, self.result
                    )
        except BaseException:  # Ctrl-C included: stop every running script, then unwind
            terminate_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _restore_sigterm(previous_sigterm)

    def _start_ready(self, pool: ThreadPoolExecutor, bound: int) -> None:
        """Skip what can no longer run; start what is ready, within the bounds."""
        steps = self.result.steps
        for name in list(self.pending):
            ups = self.deps[name]
            bad = [u for u in ups if u in steps and not _ok(steps[u])]
            if bad:
                self.pending.remove(name)
                reason = f"upstream {', '.join(sorted(bad))} did not complete"
                steps[name] = StepOutcome(name, "skipped", reason=reason)
                _record_skip(self.state, self.ctx.run_id, name, reason, sorted(ups), self.ir.name)
                self._advance()
                continue
            if not all(u in steps for u in ups):
                continue
            if len(self.running) >= bound:
                break
            compute = self.ir.step(name).compute
            if compute in self.limits and self.in_use.get(compute, 0) >= self.limits[compute]:
                continue
            self.pending.remove(name)
            if compute in self.limits:
                self.in_use[compute] = self.in_use.get(compute, 0) + 1
            self.running[pool.submit(self.execute, name)] = name

    def execute(self, name: str) -> StepOutcome:
        """Run one step (with its `retries`); each attempt on a fresh 'machine' when isolating."""
        attempts = max(0, self.ir.step(name).retries) + 1
        t0 = time.monotonic()
        res: StepResult | None = None
        for attempt in range(attempts):
            try:
                with _step_machine(self.ctx, name, self.isolate) as ctx:
                    res = run_step(
                        self.doc,
                        name,
                        ctx,
                        on_output=lambda stream, line: self.printer.line(name, stream, line),
                    )
            except Exception as exc:  # malformed IR: report as a failure of this step
                self.printer.line(name, "stderr", f"mlpipe: error: {exc}")
                return StepOutcome(name, "failed", time.monotonic() - t0, None, str(exc))
            if res.ok or attempt == attempts - 1:
                break
            self.printer.line(name, "stderr", f"mlpipe: retrying ({attempt + 1}/{attempts - 1})")
        return StepOutcome(name, res.status, time.monotonic() - t0, res, res.error)


@contextmanager
def _step_machine(ctx: RunContext, name: str, isolate: bool):
    """The step's context. Isolated: a new temporary folder (in the runner's TMPDIR) holding the
    step's HOME, TMPDIR and mlpipe cache (work folder, venvs, stat cache), as on a fresh machine;
    removed afterwards unless MLPIPE_KEEP_WORKDIR=1."""
    if not isolate:
        yield ctx
        return
    root = tempfile.mkdtemp(prefix=f"mlpipe-step-{safe_name(name)[:40]}-")
    dirs = {sub: os.path.join(root, sub) for sub in ("home", "tmp", "cache")}
    for path in dirs.values():
        os.makedirs(path)
    env = {"HOME": dirs["home"], "MLPIPE_CACHE_DIR": dirs["cache"]}
    env.update(dict.fromkeys(("TMPDIR", "TEMP", "TMP"), dirs["tmp"]))
    try:
        yield replace(ctx, cache_dir=dirs["cache"], env={**ctx.env, **env})
    finally:
        if os.environ.get("MLPIPE_KEEP_WORKDIR") != "1":
            shutil.rmtree(root, ignore_errors=True)


def _write_run_record(console, state: State, ctx: RunContext, result: PipelineRunResult) -> None:
    try:
        store.write_json_atomic(
            state.run_record(ctx.run_id),
            {
                "run_id": ctx.run_id,
                "pipeline": result.pipeline,
                "experiment": ctx.experiment,
                "params": ctx.params,
                "regenerate_outputs": ctx.regenerate_outputs,
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
