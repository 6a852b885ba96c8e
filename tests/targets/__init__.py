"""Drivers that compile and run a pipeline on one target, so scenarios are written once.

Each driver runs the real thing: `mlpipe run` for local, `airflow dags test` for Airflow, the
generated flow in `.venvs/prefect` for Prefect, `kfp.local` in `.venvs/kfp` for KFP. What a run
did is observed through the files the step scripts write into the datastore, the same on every
target.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
VENVS = ROOT / ".venvs"
MLPIPE = str(VENV / "bin" / "mlpipe")


@dataclass(frozen=True)
class Module:
    """A pipeline built by `python -m NAME` from the project folder `root`: drivers run
    `mlpipe ... -m NAME` with `root` as the current directory."""

    root: Path
    name: str


def source_args(pipeline: Path | Module) -> tuple[list[str], str | None]:
    """The mlpipe arguments naming the pipeline, and the directory to run mlpipe in."""
    if isinstance(pipeline, Module):
        return ["-m", pipeline.name], str(pipeline.root)
    return [str(pipeline)], None


@dataclass
class RunOutcome:
    ok: bool
    log: str  # everything the orchestrator printed, step stdout/stderr included
    run_id: str | None = None


class Driver:
    name = "base"
    target: str | None = None  # the compile target, when it is not `name` (airflow2 -> airflow)

    def compile(
        self, pipeline: Path | Module, out: Path, profile: str | None = None
    ) -> subprocess.CompletedProcess:
        target = self.target or self.name
        args, cwd = source_args(pipeline)
        cmd = [MLPIPE, "compile", *args, "--target", target, "-o", str(out)]
        if profile:
            cmd += ["--profile", profile]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), cwd=cwd)
        assert proc.returncode == 0, f"compile failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def run(
        self,
        pipeline: Path | Module,
        out: Path,
        *,
        params: dict | None = None,
        regenerate: bool = False,
    ) -> RunOutcome:
        """Compile `pipeline` into `out` and run it once on the target, waiting for the end."""
        raise NotImplementedError


def child_env(**extra) -> dict:
    """Environment for subprocesses: a shared env-build cache so each Environment builds once."""
    env = dict(os.environ)
    env.setdefault(
        "MLPIPE_CACHE_DIR",
        os.environ.get("MLPIPE_TEST_CACHE_DIR", str(ROOT / ".mlpipe-test-cache")),
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def python_of(target: str) -> str:
    return str(VENVS / target / "bin" / "python")


def run_cmd(cmd: list[str], timeout: int = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


class LocalDriver(Driver):
    name = "local"

    def compile(self, pipeline, out, profile=None):  # nothing to compile
        return None

    def run(self, pipeline, out, *, params=None, regenerate=False):
        args, cwd = source_args(pipeline)
        cmd = [MLPIPE, "run", *args]
        for k, v in (params or {}).items():
            cmd += ["--param", f"{k}={v}"]
        if regenerate:
            cmd.append("--regenerate-outputs")
        proc = run_cmd(cmd, env=child_env(), cwd=cwd)
        return RunOutcome(ok=proc.returncode == 0, log=proc.stdout + proc.stderr)


def driver(name: str) -> Driver:
    if name == "local":
        return LocalDriver()
    module = __import__(f"tests.targets.{name}", fromlist=["Driver"])
    return module.DRIVER


__all__ = [
    "Driver",
    "LocalDriver",
    "Module",
    "RunOutcome",
    "child_env",
    "driver",
    "python_of",
    "run_cmd",
    "source_args",
    "sys",
]
