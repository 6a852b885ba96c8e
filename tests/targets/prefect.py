"""The Prefect driver: compile with `mlpipe compile --target prefect`, run the flow on real Prefect.

One Prefect API server per test session (per pytest process): `prefect server start` on a free port
with a temporary PREFECT_HOME and SQLite database, started lazily by the first run (in the background,
while the pipeline compiles) and stopped at exit. Starting it takes ~20-30 s on 2 cores, far too close
to the 20 s start timeout of Prefect's ephemeral server, and paying it for every flow run would cost
more than all the runs together.

A run imports the generated flow module inside `.venvs/prefect/bin/python` and calls the flow with
keyword parameters, exactly as a user would: this file doubles as that runner script
(`python tests/targets/prefect.py run FLOW_FILE ...`, standard library + Prefect only).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve()
SERVER_START_TIMEOUT = 240
# Server services the tests do not need (scheduling deployments, late runs, automations, ...).
UNUSED_SERVICES = (
    "SCHEDULER",
    "LATE_RUNS",
    "FOREMAN",
    "CANCELLATION_CLEANUP",
    "PAUSE_EXPIRATIONS",
    "TRIGGERS",
    "EVENT_LOGGER",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """A `prefect server start` of our own: temporary home, SQLite, no UI, only the services a flow
    run observed through the API needs (the task run recorder turns the clients' events into task
    run records; the repossessor frees the concurrency slots of crashed tasks)."""

    def __init__(self, python: str):
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.home: str | None = None
        self.url: str | None = None
        self.start_seconds: float | None = None
        self._started_at = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the server process (returns at once; `wait` blocks until it answers)."""
        with self._lock:
            if self.proc is not None:
                return
            self.home = tempfile.mkdtemp(prefix="mlpipe-prefect-home-")
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}/api"
            env = self.env(for_server=True)
            prefect = str(Path(self.python).parent / "prefect")
            self._log = open(os.path.join(self.home, "server.log"), "wb")  # noqa: SIM115
            self._started_at = time.monotonic()
            self.proc = subprocess.Popen(
                [
                    prefect,
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-ui",
                    "--analytics-off",
                ],
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            atexit.register(self.stop)

    def wait(self) -> str:
        self.start()
        deadline = self._started_at + SERVER_START_TIMEOUT
        while self.start_seconds is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        self.start_seconds = time.monotonic() - self._started_at
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"prefect server not ready after {SERVER_START_TIMEOUT}s:\n{self.log()}"
                )
            time.sleep(0.25)
        return self.url

    def log(self) -> str:
        try:
            return Path(self.home, "server.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def env(self, for_server: bool = False, **extra) -> dict:
        """Environment for Prefect processes: this server, a temporary home, no analytics."""
        from tests.targets import child_env

        env = child_env(**extra)
        env["PREFECT_HOME"] = os.path.join(self.home, "server" if for_server else "client")
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        env["PREFECT_UI_ENABLED"] = "false"
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
            f"sqlite+aiosqlite:///{os.path.join(self.home, 'prefect.db')}"
        )
        # If anything still falls back to an ephemeral server, give it time to start here.
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
        env.pop("PREFECT_PROFILE", None)
        if for_server:
            env.pop("PREFECT_API_URL", None)
            for service in UNUSED_SERVICES:
                env[f"PREFECT_SERVER_SERVICES_{service}_ENABLED"] = "false"
        else:
            env["PREFECT_API_URL"] = self.url
        return env

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)


def _driver_classes():
    from tests.targets import Driver, RunOutcome, python_of, run_cmd

    class PrefectDriver(Driver):
        name = "prefect"

        def __init__(self):
            self.python = python_of("prefect")
            self.server = PrefectServer(self.python)
            self.last_timing: dict = {}

        def env(self, **extra) -> dict:
            self.server.wait()
            return self.server.env(**extra)

        def flow_file(self, out: Path) -> Path:
            files = sorted(Path(out).glob("*_flow.py"))
            assert len(files) == 1, f"expected one flow file in {out}: {files}"
            return files[0]

        def run(self, pipeline, out, *, params=None, regenerate=False, profile=None):
            self.server.start()  # boots while the pipeline compiles
            self.compile(pipeline, out, profile)
            cmd = [
                self.python,
                str(HERE),
                "run",
                str(self.flow_file(out)),
                "--params-json",
                json.dumps(params or {}),
            ]
            if regenerate:
                cmd.append("--regenerate")
            env = self.env()
            t0 = time.monotonic()
            proc = run_cmd(cmd, env=env)
            self.last_timing = {
                "flow_run_seconds": time.monotonic() - t0,
                "server_start_seconds": self.server.start_seconds,
            }
            log = proc.stdout + proc.stderr
            run_id = None
            for line in proc.stdout.splitlines():
                if line.startswith("MLPIPE_FLOW_RUN "):
                    run_id = json.loads(line[len("MLPIPE_FLOW_RUN ") :])["id"]
            return RunOutcome(ok=proc.returncode == 0, log=log, run_id=run_id)

        def prefect(self, code: str, *args: str, timeout: int = 600):
            """Run Python `code` in the Prefect venv against the session's server."""
            return run_cmd([self.python, "-c", code, *args], env=self.env(), timeout=timeout)

    return PrefectDriver


# ------------------------------------------------------------------------- runner (Prefect venv)


def _deployment_parameters(flow_file: Path, flow_name: str) -> dict:
    """The parameters of the flow's deployment in prefect.yaml (what the pipeline file submitted)."""
    import yaml

    path = flow_file.parent / "prefect.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    for dep in (doc or {}).get("deployments") or []:
        if (
            dep.get("entrypoint", "").startswith(flow_file.name + ":")
            and dep.get("name") == flow_name
        ):
            return dict(dep.get("parameters") or {})
    return {}


def _runner(argv: list[str]) -> int:
    import argparse
    import importlib.util

    ap = argparse.ArgumentParser(prog="prefect runner")
    ap.add_argument("flow_file")
    ap.add_argument("--params-json", default="{}")
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args(argv)

    from prefect import Flow

    flow_file = Path(args.flow_file).resolve()
    spec = importlib.util.spec_from_file_location(flow_file.stem, flow_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flows = [v for v in vars(module).values() if isinstance(v, Flow)]
    # The pipeline flow (the kubernetes profile also defines a per-step flow).
    pipeline_flows = [f for f in flows if "step" not in f.parameters.properties]
    assert len(pipeline_flows) == 1, f"expected one pipeline flow in {flow_file}, got {flows}"
    flow = pipeline_flows[0]

    kwargs = _deployment_parameters(flow_file, flow.name)
    kwargs.update(json.loads(args.params_json))
    if args.regenerate:
        kwargs["regenerate_outputs"] = True
    t0 = time.monotonic()
    state = flow(**kwargs, return_state=True)
    elapsed = time.monotonic() - t0
    info = {
        "id": str(state.state_details.flow_run_id),
        "state": state.type.value,
        "name": state.name,
        "message": state.message,
        "seconds": round(elapsed, 2),
    }
    print("MLPIPE_FLOW_RUN " + json.dumps(info), flush=True)
    # A canceled run (run.parent.cancel() in a step) is not a failure; its state is in the line.
    return 0 if state.is_completed() or state.is_cancelled() else 1


if __name__ == "__main__":
    # This file is named prefect.py: keep its folder off sys.path so `import prefect` is Prefect.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(_runner(sys.argv[2:]))
    print(
        f"usage: {sys.argv[0]} run FLOW_FILE [--params-json JSON] [--regenerate]", file=sys.stderr
    )
    sys.exit(2)
else:
    DRIVER = _driver_classes()()
