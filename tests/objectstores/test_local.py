"""The S3 -> Azure pipeline on the local runner against real servers (moto, Azurite)."""

from __future__ import annotations

import json

import pytest

from tests.objectstores.helpers import make_project
from tests.servers import S3_KEY_ID, S3_SECRET
from tests.targets import LocalDriver

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
    assert prepared["url"] == f"{p.az}/prepared/{run_folder}"
    files = p.listing(prepared["url"])
    assert ".mlpipe-output.json" in files and "parts/sub_c.txt" in files
    assert p.read(prepared["url"] + "/parts/a.txt") == b"ALPHA\n"
    model = json.loads(p.read(recs["train"]["outputs"]["model"]["url"] + "/model.json"))
    assert model["rows"] == 3 and model["parts"] == ["a.txt", "b.txt", "sub_c.txt"]
    # Nothing fell back to local disk: no datastore folder beside the pipeline.
    assert not (p.pipeline.parent / ".mlpipe").exists()

    # Identical bytes uploaded again (new Last-Modified / Azure ETag): still fully reused.
    p.put_inputs()
    second = LocalDriver().run(p.pipeline, tmp_path / "out")
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
