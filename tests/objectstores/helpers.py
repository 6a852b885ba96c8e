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
