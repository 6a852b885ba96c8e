"""Real servers the tests talk to, started once per test session (per xdist worker).

`mlflow_server`: `mlflow server` from `.venv` (installed by requirements/dev.txt) on 127.0.0.1 and
a free port, runs and models in a SQLite database file, artifacts served by the server itself, all
in a temporary folder removed at the end. The fixture returns the tracking URI
(`http://127.0.0.1:<port>`); check what landed there through MLflow's REST API (`mlflow_api`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MLFLOW = ROOT / ".venv" / "bin" / "mlflow"
# Importing the server takes 20-30 s alone; on a busy 2-core machine several minutes.
START_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _template_db() -> Path:
    """Where a freshly migrated database of this MLflow version is kept between sessions."""
    cache = os.environ.get("MLPIPE_TEST_CACHE_DIR") or str(ROOT / ".mlpipe-test-cache")
    version = next(ROOT.glob(".venv/lib/python*/site-packages/mlflow-*.dist-info"), None)
    name = version.name.split("-")[1] if version else "unknown"
    return Path(cache) / f"mlflow-db-{name}" / "mlflow.db"


def _keep_template(db: Path, template: Path) -> None:
    """Copy the server's just-migrated database (sqlite's backup API: a consistent copy)."""
    if template.is_file():
        return
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_suffix(f".{os.getpid()}.tmp")
    src, dst = sqlite3.connect(db), sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.replace(tmp, template)


class MlflowServer:
    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mlpipe-mlflow-"))
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        db = self.home / "mlflow.db"
        template = _template_db()
        if template.is_file():  # migrating a new database costs ~10-30 s on a busy machine
            shutil.copyfile(template, db)
        env = dict(os.environ, MLFLOW_HOME=str(self.home))
        env.pop("MLFLOW_TRACKING_URI", None)
        # No background job runner (a dozen extra processes that import MLflow): tests need none.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        self._log = open(self.home / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(MLFLOW),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{db}",
                "--artifacts-destination",
                str(self.home / "artifacts"),
                "--workers",
                "1",
            ],
            cwd=self.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        _keep_template(db, template)
                        return self.uri
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server not ready after {START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.25)

    def log(self) -> str:
        try:
            return (self.home / "server.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

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
                proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


# Read endpoints MLflow serves only as GET (runs/search is a POST).
_GETS = ("/get", "get-by-name", "registered-models/search", "model-versions/search", "get-history")


def mlflow_api(uri: str, endpoint: str, body: dict | None = None, method: str | None = None):
    """Call MLflow's REST API (`endpoint` like "runs/search"); GET with `body` as the query."""
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}"
    method = method or ("GET" if body is None or endpoint.endswith(_GETS) else "POST")
    data = None
    if method == "GET" and body:
        url += "?" + urllib.parse.urlencode(body)
    elif body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"MLflow {endpoint}: HTTP {exc.code}: {exc.read()[:500]!r}") from None


@pytest.fixture(scope="session")
def mlflow_server():
    """The tracking URI of a real MLflow server (SQLite backend) for this test session."""
    server = MlflowServer()
    try:
        yield server.start()
    finally:
        server.stop()


__all__ = ["MlflowServer", "free_port", "mlflow_api", "mlflow_server"]
