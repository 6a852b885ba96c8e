"""Run history and cancel, the same on every target (one scenario, run per target).

tests/pipelines/run_history: `train` logs on the pipeline run and leaves files, `evaluate` reads
what train logged and calls run.parent.cancel(), `register` must never run. The run must end
canceled — not failed — in the orchestrator and in mlpipe's records. With MLFLOW_TRACKING_URI set,
the pipeline run and its step runs (each step in its own process on the orchestrators) appear in a
real MLflow server.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlpipe.runtime import history
from tests.integration.test_cross_target import by_target, run
from tests.servers import mlflow_api


def single_run(pipeline: Path) -> tuple[Path, str]:
    runs = pipeline.parent / "data" / ".mlpipe" / "runs"
    run_dirs = [d for d in runs.iterdir() if d.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    return run_dirs[0], json.loads((run_dirs[0] / "steps" / "train.json").read_text())["run_id"]


@by_target
def test_parent_metrics_files_and_cancel(
    target, pipeline_copy, tmp_path, monkeypatch, mlflow_server
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    p = pipeline_copy("run_history")
    outcome, ran = run(target, p, tmp_path / "out")
    # canceled is not a failure: the orchestrator's run did not fail
    assert outcome.ok, outcome.log
    assert ran == ["train", "evaluate"]  # register never ran
    if target == "prefect":
        assert '"state": "CANCELLED"' in outcome.log, outcome.log[-3000:]

    saw = json.loads((p.parent / "data" / "evaluate_saw.json").read_text())
    assert saw["metrics"] == {"accuracy": 0.42, "loss": [0.9, 0.7]}
    assert saw["tags"] == {"stage": "trained"}
    assert saw["workspace"] == "run-history"
    assert "workspaceblobstore" in saw["datastores"]

    run_dir, run_id = single_run(p)
    assert saw["parent_id"] == run_id
    records = {f.stem: json.loads(f.read_text()) for f in (run_dir / "steps").glob("*.json")}
    assert records["train"]["status"] == "completed"
    assert records["evaluate"]["status"] == "completed"
    assert records["register"]["status"] == "canceled"
    assert "evaluate" in records["register"]["reason"]
    assert json.loads((run_dir / "cancel.json").read_text())["step"] == "evaluate"
    root = str(p.parent / "data" / ".mlpipe")
    assert history.run_status(root, run_id) == "canceled"
    if (run_dir / "run.json").exists():  # the local runner and KFP's summary task write one
        assert json.loads((run_dir / "run.json").read_text())["status"] == "canceled"

    train = records["train"]
    assert train["tags"] == {"kind": "train"}
    assert train["properties"] == {"framework": "none"}
    assert train["metrics"] == {"epochs": 3}
    assert train["files"] == ["extra/notes.txt", "logs/train.log", "outputs/model.txt"]
    files = run_dir / "files" / "train"
    assert (files / "outputs" / "model.txt").read_text() == "weights 1 2 3\n"
    assert (files / "logs" / "train.log").read_text().startswith("epoch 1")
    assert (files / "extra" / "notes.txt").read_text() == "uploaded by train\n"
    everything = history.merge_metrics(history.parent_entries(root, run_id))
    assert everything == {"accuracy": 0.42, "loss": [0.9, 0.7], "evaluated": 1}

    check_mlflow(mlflow_server, run_id)


def _tags(run: dict) -> dict:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _metrics(run: dict) -> dict:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


def check_mlflow(uri: str, run_id: str) -> None:
    exp = mlflow_api(uri, "experiments/get-by-name", {"experiment_name": "run_history"})
    query = {
        "experiment_ids": [exp["experiment"]["experiment_id"]],
        "filter": f"tags.`mlpipe.run_id` = '{run_id}'",
        "max_results": 100,
    }
    runs = mlflow_api(uri, "runs/search", query)["runs"]
    parent = [r for r in runs if _tags(r).get("mlpipe.kind") == "pipeline"]
    assert len(parent) == 1, runs
    parent = parent[0]
    assert parent["info"]["status"] == "KILLED"
    assert _metrics(parent) == {"accuracy": 0.42, "loss": 0.7, "evaluated": 1.0}
    assert _tags(parent)["stage"] == "trained"
    steps = {_tags(r).get("mlpipe.step"): r for r in runs if r is not parent}
    assert set(steps) == {"train", "evaluate"}
    for r in steps.values():
        assert _tags(r)["mlflow.parentRunId"] == parent["info"]["run_id"]
        assert r["info"]["status"] == "FINISHED"
    assert _metrics(steps["train"]) == {"epochs": 3.0}
    assert _tags(steps["train"])["kind"] == "train"
