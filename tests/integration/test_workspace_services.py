"""The v1 workspace behind step scripts, the same on every target (issue 13 items 2-5).

One scenario (tests/pipelines/registry), run once per target through the tests/targets drivers:
the pipeline file uploads a CSV and registers it as a dataset at capture time (applied by
`mlpipe run` / `mlpipe compile`), two parallel steps read it by name with to_pandas_dataframe()
and register a model under one name, a later step lists the models by tags / latest, uploads a
summary and registers it as a dataset from inside the step. Then a plain Python script, outside
any step, reads the versions back with the mlpipe names and downloads the files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.test_cross_target import by_target, run
from tests.targets import VENV, child_env

READ_BACK = r"""
import json, sys
from mlpipe import Dataset, Datastore, Model, Run, Workspace

ws = Workspace.from_config()
models = Model.list(ws, name="regtest_model")
latest = Model(ws, name="regtest_model")
path = latest.download(target_dir=sys.argv[1], exist_ok=True)
rows = Dataset.get_by_name(ws, "regtest_rows", version="1")
files = rows.download(target_path=sys.argv[1] + "/rows", overwrite=True)
summary = Dataset.get_by_name(ws, name="regtest_summary")
print(json.dumps({
    "versions": sorted(m.version for m in models),
    "ids": sorted(m.id for m in models),
    "latest": latest.id,
    "latest_tags": latest.tags,
    "latest_file": json.load(open(path)),
    "first_tags": Model(ws, name="regtest_model", version=1).tags,
    "rows_file": open(files[0]).read(),
    "summary": summary.id,
    "datasets": sorted(ws.datasets),
    "datastores": sorted(ws.datastores),
    "offline": Run.get_context().id.startswith("OfflineRun"),
}, sort_keys=True))
"""


def read_back(pipeline: Path, tmp_path: Path) -> dict:
    proc = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", READ_BACK, str(tmp_path / "read-back")],
        cwd=pipeline.parent,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@by_target
def test_capture_time_dataset_models_and_plain_script_read_back(target, pipeline_copy, tmp_path):
    p = pipeline_copy("registry")
    outcome, ran = run(target, p, tmp_path / "out")
    assert outcome.ok, outcome.log
    assert sorted(ran[:2]) == ["train_a", "train_b"] and ran[2:] == ["check"]

    # What the check step saw: both registrations, tags / latest filters, the dataset by name.
    summary = json.loads((p.parent / "data" / "check" / "summary.json").read_text())
    assert summary["versions"] == [1, 2]
    assert summary["latest"] == ["regtest_model:2"]
    assert summary["scaled_by_2_total"] == [200]  # train_b: 100 rows total x 2
    assert summary["first_total"] in (100, 200)
    assert summary["first_tags"]["checked"] == "yes"
    assert summary["dataset"] == "regtest_rows:1"
    assert summary["dataset_files"] == ["/rows.csv"]
    assert summary["datasets"] == ["regtest_rows"]  # regtest_summary is registered after
    assert summary["run_workspace"] == {
        "name": "registry-test",
        "datasets": ["regtest_rows"],
        "models": ["regtest_model"],
        "default": "workspaceblobstore",
    }

    # A plain script outside any step sees the same workspace.
    back = read_back(p, tmp_path)
    assert back["versions"] == [1, 2]
    assert back["ids"] == ["regtest_model:1", "regtest_model:2"]
    assert back["latest"] == "regtest_model:2"
    assert back["latest_file"]["total"] == back["latest_tags"]["total"]
    assert back["first_tags"]["checked"] == "yes" and back["first_tags"]["stage"] == "trained"
    assert back["rows_file"] == (p.parent / "rows.csv").read_text()
    assert back["summary"] == "regtest_summary:1"
    assert back["datasets"] == ["regtest_rows", "regtest_summary"]
    assert back["datastores"] == ["workspaceblobstore", "workspacefilestore"]
    assert back["offline"] is True
