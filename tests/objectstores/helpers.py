"""A project whose datastores live on the test servers: S3 (moto) for inputs, Azure (Azurite)
as the default datastore holding outputs and state."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec

from tests.servers import make_bucket, make_container

HERE = Path(__file__).resolve().parent
RAW = {"a.txt": "alpha\n", "b.txt": "beta\n", "sub/c.txt": "gamma\n"}
TABLE = {"t1.csv": "x,y\n1,2\n3,4\n", "t2.csv": "x,y\n5,6\n"}


@dataclass
class Project:
    pipeline: Path
    az: str  # az://<container>  (workspaceblobstore, the default datastore)
    s3: str  # s3://<bucket>     (s3data)

    def fs(self, url: str):
        return fsspec.filesystem(url.split("://")[0], skip_instance_cache=True)

    def put_inputs(self, raw: dict | None = None, table: dict | None = None) -> None:
        fs = self.fs(self.s3)
        for rel, text in (raw or RAW).items():
            fs.pipe_file(f"{self.s3[5:]}/raw/{rel}", text.encode())
        for rel, text in (table or TABLE).items():
            fs.pipe_file(f"{self.s3[5:]}/table/{rel}", text.encode())

    def state_files(self) -> dict[str, bytes]:
        fs = self.fs(self.az)
        root = f"{self.az[5:]}/.mlpipe"
        return {p: fs.cat_file(p) for p in fs.find(root) if not p.endswith(".tar.gz")}

    def step_records(self) -> dict[str, dict[str, dict]]:
        """{run id folder: {step: record}}"""
        out: dict[str, dict[str, dict]] = {}
        for path, data in self.state_files().items():
            parts = path.split("/")
            if "runs" in parts and parts[-2] == "steps":
                run = parts[parts.index("runs") + 1]
                rec = json.loads(data)
                out.setdefault(run, {})[rec["step"]] = rec
        return out

    def read(self, url: str) -> bytes:
        return self.fs(url).cat_file(url.split("://", 1)[1])

    def listing(self, url: str) -> list[str]:
        fs = self.fs(url)
        root = url.split("://", 1)[1].rstrip("/")
        return sorted(p[len(root) + 1 :] for p in fs.find(root))


def make_project(tmp_path: Path, dest: str = "p") -> Project:
    """Copy the pipeline, create a fresh container + bucket, upload the inputs."""
    target = tmp_path / dest
    shutil.copytree(HERE / "pipeline", target, ignore=shutil.ignore_patterns("__pycache__"))
    tag = uuid.uuid4().hex[:10]
    az = make_container(f"mlpipe-{tag}")
    s3 = make_bucket(f"mlpipe-{tag}")
    (target / "mlpipe.yaml").write_text(
        f"workspace: objectstores\ndatastores:\n  workspaceblobstore: {az}\n  s3data: {s3}\n",
        encoding="utf-8",
    )
    project = Project(target / "pipeline.py", az, s3)
    project.put_inputs()
    return project


def make_many_project(tmp_path: Path, kind: str = "az") -> Project:
    """The write-many-files pipeline, its default datastore (outputs and state) on `kind`."""
    target = tmp_path / "many"
    shutil.copytree(HERE / "many", target, ignore=shutil.ignore_patterns("__pycache__"))
    tag = uuid.uuid4().hex[:10]
    root = make_container(f"mlpipe-{tag}") if kind == "az" else make_bucket(f"mlpipe-{tag}")
    (target / "mlpipe.yaml").write_text(
        f"workspace: many\ndatastores:\n  workspaceblobstore: {root}\n", encoding="utf-8"
    )
    return Project(target / "pipeline.py", root, "")


# What a store answers when it fails a request, by status: S3 / Azure error documents.
ERRORS = {
    503: b"<Error><Code>ServiceUnavailable</Code><Message>Please retry</Message></Error>",
    429: b"<Error><Code>TooManyRequests</Code><Message>Throttled, retry</Message></Error>",
    403: b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
}


class FaultyProxy:
    """A real HTTP proxy in front of a server (moto, Azurite) that fails requests: of the requests
    whose method is in `methods` (all when None) and whose path contains `match` (one of them,
    when a tuple), the first
    `after` pass, then `failures` (all while negative) are answered with `status`."""

    def __init__(
        self,
        upstream: str,
        failures: int,
        *,
        status: int = 503,
        match: str | tuple[str, ...] = "",
        after: int = 0,
        methods: tuple[str, ...] | None = None,
    ):
        import http.client
        import http.server
        import threading
        import urllib.parse

        self.failures, self.after, self.status = failures, after, status
        self.failed = 0
        self.passed = 0
        matches = (match,) if isinstance(match, str) else match
        self.lock = threading.Lock()
        target = urllib.parse.urlsplit(upstream)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hit = any(m in self.path for m in matches) and (
                    methods is None or self.command in methods
                )
                if hit and proxy._fail_this():
                    payload = ERRORS.get(proxy.status, b"<Error><Code>Failed</Code></Error>")
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = target.netloc
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                drop = ("transfer-encoding", "connection", "content-length")
                for k, v in resp.getheaders():  # HEAD: the object's length, kept as sent
                    if k.lower() not in drop or (self.command == "HEAD" and k.lower() == drop[2]):
                        self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client dropping a connection after an injected failure is expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _fail_this(self) -> bool:
        with self.lock:
            if self.passed < self.after:
                self.passed += 1
                return False
            if self.failures < 0 or self.failed < self.failures:
                self.failed += 1
                return True
            return False

    @classmethod
    def before(cls, kind: str, failures: int, **kw) -> FaultyProxy:
        """A proxy in front of the test server of `kind` (az: Azurite, s3: moto)."""
        if kind == "s3":
            return cls(os.environ["AWS_ENDPOINT_URL_S3"], failures, **kw)
        conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        endpoint = conn.split("BlobEndpoint=")[1].split(";")[0]
        return cls(endpoint.rstrip("/").rsplit("/", 1)[0], failures, **kw)

    def env(self, kind: str) -> dict:
        """The SDK-standard variables that send `kind`'s traffic through this proxy."""
        if kind == "s3":
            return {"AWS_ENDPOINT_URL_S3": self.url}
        conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        endpoint = conn.split("BlobEndpoint=")[1].split(";")[0]
        account = endpoint.rstrip("/").rsplit("/", 1)[1]
        return {"AZURE_STORAGE_CONNECTION_STRING": conn.replace(endpoint, f"{self.url}/{account}")}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
