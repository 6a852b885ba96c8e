"""A project whose datastores live on the test servers: S3 (moto) for inputs, Azure (Azurite)
as the default datastore holding outputs and state."""

from __future__ import annotations

import json
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


def make_many_project(tmp_path: Path) -> Project:
    target = tmp_path / "many"
    shutil.copytree(HERE / "many", target, ignore=shutil.ignore_patterns("__pycache__"))
    tag = uuid.uuid4().hex[:10]
    az = make_container(f"mlpipe-{tag}")
    (target / "mlpipe.yaml").write_text(
        f"workspace: many\ndatastores:\n  workspaceblobstore: {az}\n", encoding="utf-8"
    )
    return Project(target / "pipeline.py", az, "")


class FaultyProxy:
    """An HTTP proxy in front of a server that answers 503 to the first `failures` requests
    (or to all while `failures` is negative)."""

    def __init__(self, upstream: str, failures: int):
        import http.client
        import http.server
        import threading
        import urllib.parse

        self.failures = failures
        self.failed = 0
        target = urllib.parse.urlsplit(upstream)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.failures < 0 or proxy.failed < proxy.failures:
                    proxy.failed += 1
                    payload = b"<Error><Code>ServiceUnavailable</Code><Message>Please retry</Message></Error>"
                    self.send_response(503)
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
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
