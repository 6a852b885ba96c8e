"""Run one step for an orchestrator task: start the step runtime, stream its output, read its result.

The generated Airflow DAGs and Prefect flows call this from inside their task (never at parse
time), importing it from the runtime shipped beside them (`.mlpipe/runtime/<hash>/`):

    process = StepProcess(run_step_args(BUNDLE, step, run_id, params), runtime=RUNTIME,
                          runner="airflow")
    outcome = process.run()         # blocks; process.stop() from another thread stops it
    outcome.status                  # "completed", "reused", "canceled" or "failed"

The child is `python -m mlpipe.runtime run-step ...` with the shipped runtime first on PYTHONPATH,
no shell and stdin closed. Its stdout (the script's and mlpipe's status lines) and stderr are
passed on line by line, by default to this process's stdout and stderr. When the wait is
interrupted (a task timeout, the task being stopped) or `stop()` is called, the child gets SIGTERM
(its whole process group when it runs in its own session), then SIGKILL after a grace period; the
runtime itself stops the script's process group on SIGTERM and records the step as failed.

What an outcome means for the orchestrator (skip, cached, retry or not) stays in the generated code.
Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# How many of the child's last stderr lines a failure message quotes.
TAIL_LINES = 40
# Seconds between SIGTERM and SIGKILL: the runtime needs a moment to stop the script and record it.
STOP_GRACE_SECONDS = 15.0


def run_step_args(
    ir: str,
    step: str,
    run_id: str,
    params: dict,
    regenerate_outputs: bool = False,
    experiment: str | None = None,
) -> list[str]:
    """The `run-step` arguments of one step of a run (after `python -m mlpipe.runtime`).

    Every value is joined to its option with `=`, so a step name starting with "-" stays a value.
    `--pin-version`: the first step of the run records this IR bundle, later steps use that one.
    """
    args = [
        "run-step",
        f"--ir={ir}",
        f"--step={step}",
        f"--run-id={run_id}",
        f"--params-json={json.dumps(params, sort_keys=True)}",
        f"--regenerate-outputs={'true' if regenerate_outputs else 'false'}",
        "--pin-version",
    ]
    if experiment is not None:
        args.append(f"--experiment={experiment}")
    return args


@dataclass
class StepOutcome:
    """How the step's process ended: its exit status, its StepResult (as JSON) and stderr tail."""

    code: int
    result: dict = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The StepResult's status; without a result file, what the exit status says."""
        if self.code != 0:
            return "failed"
        return self.result.get("status") or "completed"

    @property
    def error(self) -> str:
        """mlpipe's message for a failure or a cancel, else the last stderr line."""
        return self.result.get("error") or (self.tail[-1] if self.tail else "no output")

    @property
    def fingerprint(self) -> str:
        return (self.result.get("fingerprint") or "")[:12]


class StepProcess:
    """One `python -m mlpipe.runtime ...` child process, started by `run()`, stopped by `stop()`."""

    def __init__(
        self,
        args: list[str],
        *,
        runtime: str | os.PathLike | None = None,
        runner: str | None = None,
        cwd: str | os.PathLike | None = None,
        on_line: Callable[[str, str], None] | None = None,
        merge_stderr: bool = False,
        new_session: bool = True,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        """`args`: the runtime's arguments (`run_step_args`); `--result-file` is added here.

        `runtime`: the shipped runtime folder, put first on the child's PYTHONPATH. `runner`: the
        MLPIPE_RUNNER of the step records unless the environment sets one. `on_line(stream, line)`
        receives each output line ("stdout" / "stderr"), from two reader threads. `merge_stderr`:
        one stream, in the child's order (all lines arrive as "stdout"). `new_session`: the child
        leads its own process group, which `stop()` signals as a whole; without it only the
        runtime is signalled (it stops the script's group itself) and the child stays in the
        orchestrator's group, so signals sent to that group still reach it.
        """
        self.args = list(args)
        self.runtime = runtime
        self.runner = runner
        self.cwd = cwd
        self.on_line = on_line or _print_line
        self.merge_stderr = merge_stderr
        self.new_session = new_session
        self.stop_grace = stop_grace
        self._child: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def environment(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        if self.runner:
            env.setdefault("MLPIPE_RUNNER", self.runner)  # step records say which runner ran them
        if self.runtime:
            path = [os.fspath(self.runtime), env.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
        return env

    def run(self) -> StepOutcome:
        """Run the step to its end and return how it ended; stops it if the wait is interrupted."""
        with tempfile.TemporaryDirectory(prefix="mlpipe-") as tmp:
            result_file = os.path.join(tmp, "result.json")
            argv = [sys.executable, "-m", "mlpipe.runtime", *self.args]
            code, tail = self._run(argv + [f"--result-file={result_file}"])
            try:
                with open(result_file, encoding="utf-8") as fh:
                    result = json.load(fh)
            except (OSError, ValueError):
                result = {}
        return StepOutcome(code, result if isinstance(result, dict) else {}, tail)

    def _run(self, argv: list[str]) -> tuple[int, list[str]]:
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        with self._lock:
            self._child = child = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if self.merge_stderr else subprocess.PIPE,
                start_new_session=self.new_session,
            )
        readers = [self._reader(child.stdout, "stdout", tail if self.merge_stderr else None)]
        if not self.merge_stderr:
            readers.append(self._reader(child.stderr, "stderr", tail))
        try:
            code = child.wait()
        except BaseException:  # a timeout or the task being stopped: stop the step too
            self.stop()
            raise
        finally:
            for reader in readers:
                reader.join(timeout=10)
            with self._lock:
                self._child = None
        return code, list(tail)

    def _reader(self, pipe, stream: str, tail: deque | None) -> threading.Thread:
        def copy() -> None:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if tail is not None:
                    tail.append(line)
                self.on_line(stream, line)
            pipe.close()

        reader = threading.Thread(target=copy, name=f"mlpipe-{stream}", daemon=True)
        reader.start()
        return reader

    def stop(self) -> None:
        """SIGTERM to the step (its process group with `new_session`), SIGKILL after the grace."""
        with self._lock:
            child = self._child
        if child is None or child.poll() is not None:
            return
        try:
            self._signal(child, signal.SIGTERM)
            child.wait(timeout=self.stop_grace)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            try:
                self._signal(child, signal.SIGKILL)
            except ProcessLookupError:
                return
            child.wait()

    def _signal(self, child: subprocess.Popen, signum: int) -> None:
        if self.new_session and hasattr(os, "killpg"):
            os.killpg(child.pid, signum)
        else:
            child.send_signal(signum)


def _print_line(stream: str, line: str) -> None:
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.write(line + "\n")
    out.flush()
