"""The S3 -> Azure pipeline on the local runner against real servers (moto, Azurite)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import fsspec
import pytest

from mlpipe.runtime import store
from tests.objectstores.helpers import FaultyProxy, make_project
from tests.servers import S3_KEY_ID, S3_SECRET
from tests.targets import MLPIPE, LocalDriver, child_env

pytestmark = pytest.mark.xdist_group("objectstores")


def test_pipeline_runs_on_object_stores_and_reuses(object_stores, tmp_path):
    p = make_project(tmp_path)
    first = LocalDriver().run(p.pipeline, tmp_path / "out")
    assert first.ok, first.log
    runs = p.step_records()
    assert len(runs) == 1
    (run_folder, recs) = next(iter(runs.items()))
    assert {s: r["status"] for s, r in recs.items()} == {"prep": "completed", "train": "completed"}
    prepared = recs["prep"]["outputs"]["prepared"]
    assert prepared["url"] == f"{p.az}/prepared/{run_folder}_prep"  # {run-id}: the step run
    files = p.listing(prepared["url"])
    assert ".mlpipe-output.json" in files and "parts/sub_c.txt" in files
    assert p.read(prepared["url"] + "/parts/a.txt") == b"ALPHA\n"
    model = json.loads(p.read(recs["train"]["outputs"]["model"]["url"] + "/model.json"))
    assert model["rows"] == 3 and model["parts"] == ["a.txt", "b.txt", "sub_c.txt"]
    # Nothing fell back to local disk: no datastore folder beside the pipeline.
    assert not (p.pipeline.parent / ".mlpipe").exists()

    # Identical bytes uploaded again (new Last-Modified / Azure ETag): still fully reused, and
    # without downloading the inputs (a proxy in front of S3 refuses every read of their bytes).
    p.put_inputs()
    proxy = FaultyProxy.before("s3", -1, status=403, match=("/raw/", "/table/"), methods=("GET",))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
            second = LocalDriver().run(p.pipeline, tmp_path / "out")
        assert proxy.failed == 0
        # ... which it would have caught:
        through_proxy = fsspec.filesystem("s3", skip_instance_cache=True, endpoint_url=proxy.url)
        with pytest.raises(PermissionError):
            through_proxy.cat_file(f"{p.s3[5:]}/raw/a.txt")
        assert proxy.failed == 1
    finally:
        proxy.close()
    assert second.ok, second.log
    statuses = {
        run: {s: r["status"] for s, r in recs.items()} for run, recs in p.step_records().items()
    }
    assert sorted(statuses.values(), key=str) == sorted(
        [{"prep": "completed", "train": "completed"}, {"prep": "reused", "train": "reused"}],
        key=str,
    )

    # One changed input file in S3: both steps run again.
    p.put_inputs(raw={"b.txt": "BETA changed\n"})
    third = LocalDriver().run(p.pipeline, tmp_path / "out")
    assert third.ok, third.log
    assert sum(1 for r in p.step_records().values() if r["prep"]["status"] == "completed") == 2

    # No credential in any record, log or cache entry.
    secrets = [S3_KEY_ID, S3_SECRET, object_stores["AZURE_STORAGE_CONNECTION_STRING"]]
    secrets.append(secrets[2].split("AccountKey=")[1].split(";")[0])
    for path, data in p.state_files().items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:6]}… in {path}"


def _fresh_machine_env(tmp_path: Path, name: str) -> dict:
    """Environment of a process 'on its own machine': own HOME, TMPDIR and mlpipe cache."""
    root = tmp_path / f"machine-{name}"
    for sub in ("home", "tmp", "cache"):
        (root / sub).mkdir(parents=True)
    return child_env(
        HOME=str(root / "home"), TMPDIR=str(root / "tmp"), MLPIPE_CACHE_DIR=str(root / "cache")
    )


def test_two_runs_at_once_both_succeed_and_keep_everything(object_stores, tmp_path):
    p = make_project(tmp_path, "a")
    other = tmp_path / "b"
    shutil.copytree(p.pipeline.parent, other)  # same stores, separate folder
    procs = [
        subprocess.Popen(
            [MLPIPE, "run", str(folder / "pipeline.py"), "--regenerate-outputs"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_fresh_machine_env(tmp_path, folder.name),
        )
        for folder in (p.pipeline.parent, other)
    ]
    logs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], logs
    runs = p.step_records()
    assert len(runs) == 2
    for run_folder, recs in runs.items():
        assert {r["status"] for r in recs.values()} == {"completed"}
        for rec in recs.values():
            for out in rec["outputs"].values():
                assert store.output_complete(out["url"]), out
        assert recs["prep"]["outputs"]["prepared"]["path"] == f"prepared/{run_folder}_prep"
    # Each run registered its output as its own version of the dataset: two machines racing for
    # the next version number get one each (write-once keys, State.add_version), none lost.
    versions = [r["outputs"]["prepared"]["registered"]["version"] for r in runs_prep(runs)]
    assert sorted(versions) == [1, 2], versions
    stored = [k for k in p.state_files() if "/.mlpipe/datasets/prepared_data/" in k]
    assert sorted(k.rsplit("/", 1)[1] for k in stored) == ["1.json", "2.json"], stored


def runs_prep(runs: dict) -> list[dict]:
    return [recs["prep"] for recs in runs.values()]
