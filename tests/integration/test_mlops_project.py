"""An MLOpsPython-style project runs unmodified on every target (acceptance of issue 13).

tests/projects/mlops_train is built the way the MLOps templates build their pipelines: `python -m
ml_service.pipelines.build_train_pipeline` from the project root, settings from `.env`, helper
modules for the compute and the environment, and the training CSV uploaded and registered as a
dataset when the workspace does not have it yet. Its steps use the v1 workspace services:
`Dataset.get_by_name(...).to_pandas_dataframe()`, `run.parent.log/get_metrics/tag/get_tags`,
`Model.list(..., tags=..., latest=True)`, `run.parent.cancel()` and `Model.register`.

The scenario, three runs per target (the pipeline parameter `shrink` makes the model worse or
better): the first run registers version 1; a worse model cancels the run in its evaluation step,
which then exits non-zero as such scripts do (nothing registered, the run canceled, not failed);
a better one registers version 2. A plain script then reads both versions and downloads v2's file.
What happened is read from the state in the project's datastore and the models' own files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_cross_target import by_target
from tests.servers import mlflow_api
from tests.targets import Module, child_env, driver

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "projects" / "mlops_train"
MODULE = "ml_service.pipelines.build_train_pipeline"
MODEL = "flats_model.json"
STEPS = ("Train Model", "Evaluate Model", "Register Model")


@pytest.fixture
def project(tmp_path) -> Path:
    dest = tmp_path / "mlops_train"
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns(".mlpipe", "__pycache__"))
    return dest


def runs_dir(project: Path) -> Path:
    # No mlpipe.yaml: the project's one workspace keeps its default datastore at the root.
    return project / ".mlpipe" / "datastores" / "workspaceblobstore" / ".mlpipe" / "runs"


def run_ids(project: Path) -> set[str]:
    folder = runs_dir(project)
    return {d.name for d in folder.iterdir() if d.is_dir()} if folder.is_dir() else set()


def step_records(project: Path, run_id: str) -> dict[str, dict]:
    records = {}
    for path in (runs_dir(project) / run_id / "steps").glob("*.json"):
        data = json.loads(path.read_text())
        records[data["step"]] = data
    return records


def run_once(target: str, project: Path, out: Path, shrink: float):
    """One run of the project; returns (outcome, {step: record}) of that run."""
    before = run_ids(project)
    outcome = driver(target).run(Module(project, MODULE), out, params={"shrink": shrink})
    new = run_ids(project) - before
    assert len(new) == 1, (new, outcome.log[-3000:])
    return outcome, step_records(project, new.pop())


def statuses(records: dict[str, dict]) -> dict[str, str]:
    return {step: records[step]["status"] if step in records else "-" for step in STEPS}


def show_models(project: Path, version: int, target_dir: Path) -> dict:
    """The project's plain script, run with mlpipe's own Python from the project root."""
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "tools/show_models.py", MODEL, str(version)]
        + [str(target_dir)],
        cwd=project,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def model_file(record: dict) -> bytes:
    folder = Path(record["outputs"]["model_folder"]["url"].removeprefix("file://"))
    return (folder / MODEL).read_bytes()


@by_target
def test_mlops_project_registers_cancels_and_registers_again(target, project, tmp_path):
    out = tmp_path / "out"

    first, records = run_once(target, project, out, shrink=0.5)
    assert first.ok, first.log[-5000:]
    assert statuses(records) == dict.fromkeys(STEPS, "completed")
    assert "no model registered yet" in first.log
    assert "registered flats_model.json version 1" in first.log

    worse, records = run_once(target, project, out, shrink=0.9)
    assert "the new model is not better" in worse.log, worse.log[-5000:]
    assert statuses(records) == {
        "Train Model": "completed",
        "Evaluate Model": "canceled",
        "Register Model": "canceled",
    }, worse.log[-5000:]
    assert not any(r["status"] == "failed" for r in records.values())

    better, records = run_once(target, project, out, shrink=0.1)
    assert better.ok, better.log[-5000:]
    assert statuses(records) == dict.fromkeys(STEPS, "completed")
    assert "registered flats_model.json version 2" in better.log
    v2_bytes = model_file(records["Train Model"])

    if target == "local":
        # The same run again: training is reused (mlpipe replays what it logged on the pipeline
        # run), so the evaluation finds v2's own error: not better, canceled.
        again, records = run_once(target, project, out, shrink=0.1)
        assert "the new model is not better" in again.log, again.log[-5000:]
        assert statuses(records) == {
            "Train Model": "reused",
            "Evaluate Model": "canceled",
            "Register Model": "canceled",
        }

    report = show_models(project, 2, tmp_path / "download")
    versions = report["versions"]
    assert [v["id"] for v in versions] == [f"{MODEL}:1", f"{MODEL}:2"]
    assert [float(v["tags"]["shrink"]) for v in versions] == [0.5, 0.1]
    assert float(versions[1]["tags"]["mse"]) < float(versions[0]["tags"]["mse"])
    assert {v["tags"]["experiment_name"] for v in versions} == {
        versions[0]["tags"]["experiment_name"]
    }
    assert Path(report["downloaded"]).read_bytes() == v2_bytes


# ------------------------------------------------------------------------------------ MLflow


def mlflow_runs(uri: str) -> list[dict]:
    experiments = mlflow_api(uri, "experiments/search", {"max_results": 100})["experiments"]
    ids = [e["experiment_id"] for e in experiments]
    found = mlflow_api(uri, "runs/search", {"experiment_ids": ids, "max_results": 1000})
    return found.get("runs", [])


def tags_of(run: dict) -> dict:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def metrics_of(run: dict) -> dict:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


@pytest.mark.parametrize("target", [pytest.param("local", marks=pytest.mark.xdist_group("local"))])
def test_mlops_project_in_mlflow(target, project, tmp_path, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    outcome, records = run_once(target, project, tmp_path / "out", shrink=0.5)
    assert outcome.ok, outcome.log[-5000:]

    # The session's MLflow server is shared with other tests: look at this project's runs only
    # (its step names), and at the newest pipeline run among them.
    runs = mlflow_runs(mlflow_server)
    ours = [
        r for r in runs if r["info"]["run_name"] in STEPS and "mlflow.parentRunId" in tags_of(r)
    ]
    parents = [
        r for r in runs if r["info"]["run_id"] in {tags_of(c)["mlflow.parentRunId"] for c in ours}
    ]
    assert parents, runs
    parent = max(parents, key=lambda r: int(r["info"]["start_time"]))
    children = [c for c in ours if tags_of(c)["mlflow.parentRunId"] == parent["info"]["run_id"]]
    by_name = {r["info"]["run_name"]: r for r in children}
    assert set(by_name) == set(STEPS)
    train_metrics = metrics_of(by_name["Train Model"])
    assert train_metrics["mse"] == pytest.approx(records["Train Model"]["metrics"]["mse"])
    assert train_metrics["shrink"] == 0.5
    assert metrics_of(parent)["mse"] == pytest.approx(train_metrics["mse"])
    assert tags_of(parent)["dataset_id"]
    assert all(r["info"]["status"] == "FINISHED" for r in [parent, *children])

    versions = mlflow_api(mlflow_server, "model-versions/search", {"filter": f"name='{MODEL}'"})[
        "model_versions"
    ]
    child_ids = {c["info"]["run_id"] for c in children}
    versions = [v for v in versions if v.get("run_id") in child_ids]
    assert [v["version"] for v in versions] == ["1"]
    tags = {t["key"]: t["value"] for t in versions[0].get("tags", [])}
    assert float(tags["mse"]) == pytest.approx(train_metrics["mse"])
    assert float(tags["shrink"]) == 0.5
