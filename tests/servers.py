"""Real servers the tests talk to, started once per test session (per xdist worker).

`mlflow_server`: `mlflow server` from `.venv` (installed by requirements/dev.txt) on 127.0.0.1 and
a free port, runs and models in a SQLite database file, artifacts served by the server itself, all
in a temporary folder removed at the end. The fixture returns the tracking URI
(`http://127.0.0.1:<port>`); check what landed there through MLflow's REST API (`mlflow_api`).

`azurite_server` / `s3_server`: Azurite (Microsoft's Azure Storage emulator, blob service only, in
memory, from `.venvs/node`, installed by `scripts/setup --all`) and moto's S3 server (`.venv`), each
~3 s to start; `object_stores` puts both servers' SDK-standard variables
(`AZURE_STORAGE_CONNECTION_STRING`, `AWS_*`) into os.environ for one test: nothing else points
mlpipe at them. They are cheap, so each xdist worker that needs them starts its own (object-store
tests that run an orchestrator stay in that orchestrator's xdist_group).
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
AZURITE = ROOT / ".venvs" / "node" / "node_modules" / ".bin" / "azurite-blob"
MOTO = ROOT / ".venv" / "bin" / "moto_server"
# Azurite's documented development account (public, the same in every Azurite install).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# Test credentials for moto (it accepts any): distinctive, so tests can grep artifacts for them.
S3_KEY_ID = "MLPIPETESTKEYID0001"
S3_SECRET = "mlpipe-test-secret-0f9e8d7c6b5a"


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


# ------------------------------------------------------------------------- object stores


class Server:
    """A child process serving on 127.0.0.1:port, stopped (process group) by `stop`."""

    def __init__(self, name: str, argv: list[str], port: int, probe: str, env: dict | None = None):
        self.name, self.port, self.probe = name, port, probe
        self.dir = tempfile.mkdtemp(prefix=f"mlpipe-{name}-")
        self.log_path = os.path.join(self.dir, "server.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        try:
            self._wait()
        except BaseException:  # not started, or interrupted while starting: leave nothing behind
            self.stop()
            raise

    def _wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(self.probe, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers (an error status for an anonymous request is fine)
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {self.probe} in {timeout}s")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_azurite() -> tuple[Server, dict]:
    if not AZURITE.exists():
        raise RuntimeError(f"{AZURITE} is missing: run scripts/setup --all (installs Azurite)")
    port = free_port()
    server = Server(
        "azurite",
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--disableTelemetry",  # it would otherwise try to reach an outside host
            "--skipApiVersionCheck",  # the SDK may be newer than the emulator
            "--silent",
        ],
        port,
        f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}?comp=list",
    )
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
    return server, {"AZURE_STORAGE_CONNECTION_STRING": conn}


def start_moto() -> tuple[Server, dict]:
    port = free_port()
    server = Server(
        "moto", [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], port, f"http://127.0.0.1:{port}/"
    )
    return server, s3_env(f"http://127.0.0.1:{port}")


def s3_env(endpoint: str) -> dict:
    return {
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def azurite_server():
    server, env = start_azurite()
    yield env
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    server, env = start_moto()
    yield env
    server.stop()


@pytest.fixture
def object_stores(azurite_server, s3_server, monkeypatch):
    """Both servers' variables in os.environ for this test (subprocesses inherit them)."""
    for key, value in {**azurite_server, **s3_server}.items():
        monkeypatch.setenv(key, value)
    return {**azurite_server, **s3_server}


def make_container(name: str) -> str:
    """Create an Azurite container (idempotent); returns `az://<name>`."""
    import fsspec

    fs = fsspec.filesystem("az", skip_instance_cache=True)
    if not fs.exists(name):
        fs.mkdir(name)
    return f"az://{name}"


def make_bucket(name: str) -> str:
    """Create a moto bucket (idempotent); returns `s3://<name>`."""
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    if not fs.exists(name):
        fs.mkdir(name)
    return f"s3://{name}"


__all__ = [
    "MlflowServer",
    "azurite_server",
    "free_port",
    "make_bucket",
    "make_container",
    "mlflow_api",
    "mlflow_server",
    "object_stores",
    "s3_server",
]
