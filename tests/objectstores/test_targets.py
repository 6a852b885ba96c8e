"""The S3 -> Azure pipeline on all four runners, every step as on its own machine.

tests/objectstores/fresh_machine/sitecustomize.py gives each step process (Airflow / Prefect
`run-step`, KFP executor) a new HOME, TMPDIR and mlpipe cache; the local runner does the same by
itself with `MLPIPE_ISOLATE_STEPS=1` (`mlpipe run --isolate-steps`), each step's folder made in the
runner's TMPDIR. The only thing steps share is the object stores. The steps report where they ran
in their outputs, and the test checks those.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.objectstores.helpers import make_project
from tests.servers import S3_KEY_ID, S3_SECRET
from tests.targets import driver

FRESH = Path(__file__).resolve().parent / "fresh_machine"


@pytest.mark.integration
@pytest.mark.parametrize(
    "target",
    [
        pytest.param(t, marks=pytest.mark.xdist_group(t))
        for t in ("local", "airflow", "prefect", "kfp")
    ],
)
def test_object_store_pipeline_with_isolated_steps(object_stores, tmp_path, monkeypatch, target):
    p = make_project(tmp_path)
    machines = tmp_path / "machines"
    machines.mkdir()
    if target == "local":
        monkeypatch.setenv("MLPIPE_ISOLATE_STEPS", "1")
        monkeypatch.setenv("MLPIPE_KEEP_WORKDIR", "1")  # the step folders stay to be counted
        monkeypatch.setenv("TMPDIR", str(machines))
    else:
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(FRESH), os.environ.get("PYTHONPATH")]))
        )
        monkeypatch.setenv("MLPIPE_TEST_FRESH_MACHINE", str(machines))
    out = tmp_path / "out"
    drv = driver(target)
    try:
        first = drv.run(p.pipeline, out)
        assert first.ok, first.log[-6000:]
        runs = p.step_records()
        assert len(runs) == 1, runs
        recs = next(iter(runs.values()))
        assert {s: r["status"] for s, r in recs.items()} == {
            "prep": "completed",
            "train": "completed",
        }

        # Where each step ran: its own HOME / TMPDIR / work folder, none shared.
        prepared = recs["prep"]["outputs"]["prepared"]["url"]
        model = json.loads(p.read(recs["train"]["outputs"]["model"]["url"] + "/model.json"))
        where = {"prep": json.loads(p.read(prepared + "/where.json")), "train": model["where"]}
        assert where["prep"]["home"] != where["train"]["home"]
        assert where["prep"]["tmp"] != where["train"]["tmp"]
        for w in where.values():
            for key in ("home", "tmp", "cwd"):
                assert w[key].startswith(str(machines)), (key, w)
            for path in w["paths"]:
                assert not path.startswith(str(p.pipeline.parent)), path
        assert model["rows"] == 3 and model["parts"] == ["a.txt", "b.txt", "sub_c.txt"]
        assert len(list(machines.iterdir())) >= 2
        # No local datastore anywhere: the compile folder and the project have none.
        assert not (p.pipeline.parent / ".mlpipe").exists()
        assert not list(out.rglob("datastores"))

        second = drv.run(p.pipeline, out)
        assert second.ok, second.log[-6000:]
        statuses = sorted(
            tuple(sorted((s, r["status"]) for s, r in recs.items()))
            for recs in p.step_records().values()
        )
        assert statuses == [
            (("prep", "completed"), ("train", "completed")),
            (("prep", "reused"), ("train", "reused")),
        ]

        # No credential in any compiled file or state record.
        conn = object_stores["AZURE_STORAGE_CONNECTION_STRING"]
        secrets = [S3_KEY_ID, S3_SECRET, conn, conn.split("AccountKey=")[1].split(";")[0]]
        files = {str(f): f.read_bytes() for f in out.rglob("*") if f.is_file()}
        files.update(p.state_files())
        for name, data in files.items():
            for secret in secrets:
                assert secret.encode() not in data, f"{secret[:6]}… in {name}"
    finally:
        # Long-lived orchestrator processes keep the variables: make the hook a no-op for them.
        shutil.rmtree(machines, ignore_errors=True)
