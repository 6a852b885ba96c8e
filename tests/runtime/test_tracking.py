"""MLflow: scripts' own MLflow calls reach the step record; with MLFLOW_TRACKING_URI every pipeline
run is an MLflow run with a nested run per step (checked on a real server through its REST API)."""

from __future__ import annotations

import json

import pytest
from helpers import RECORD, executed, lit, pipeline, step, write_source

from mlpipe.runtime import tracking
from tests.servers import mlflow_api

# One MLflow server per session: keep these tests on one xdist worker (scripts/test: loadgroup).
pytestmark = pytest.mark.xdist_group("mlflow")

SCRIPT = (
    RECORD
    + """
import mlflow
from mlpipe.runtime.context import Run
name, mode = sys.argv[1], sys.argv[2]
_record(name)
run = Run.get_context()
run.log("mlpipe_metric", 1.5)
run.log_row("row", a=1, b=2)
run.tag("who", name)
run.parent.log("parent_" + name, 7)
run.parent.tag("seen_" + name, "yes")
mlflow.log_metric("direct", 0.25)
mlflow.log_metric("direct", 0.5, step=1)
if mode == "cancel":
    run.parent.cancel()
"""
)


def _ir(world, modes):
    src = write_source(world.base / "src", {"main.py": SCRIPT})
    names = ["a", "b", "c"]
    steps = [
        step(
            n,
            src,
            arguments=[lit(n), lit(modes.get(n, "-"))],
            allow_reuse=False,
            run_after=[names[i - 1]] if i else [],
        )
        for i, n in enumerate(names)
    ]
    return pipeline("tracked", world.ds, steps)


def test_to_mlflow_turns_mlpipe_metrics_into_metrics_and_tags():
    items = [
        {"kind": "scalar", "name": "x", "value": 1, "time": 1.0},
        {"kind": "scalar", "name": "x", "value": 2, "time": 2.0},
        {"kind": "list", "name": "l", "value": [3, 4], "time": 3.0},
        {"kind": "row", "name": "r", "value": {"a": 5}, "time": 4.0},
        {"kind": "scalar", "name": "s", "value": "text", "time": 5.0},
    ]
    metrics, tags = tracking.to_mlflow(items)
    got = [(m["key"], m["value"], m["step"]) for m in metrics]
    assert got == [("x", 1.0, 0), ("x", 2.0, 1), ("l", 3.0, 0), ("l", 4.0, 1), ("r.a", 5.0, 0)]
    assert tags == {"s": "text"}


def test_scripts_mlflow_calls_reach_the_record_without_a_server(world, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = world.run(_ir(world, {}))
    assert result.ok, world.output()
    record = json.loads(
        (world.ds / ".mlpipe" / "runs" / result.run_id / "steps" / "a.json").read_text()
    )
    assert record["metrics"]["direct"] == [0.25, 0.5]
    assert record["metrics"]["mlpipe_metric"] == 1.5


def _runs(uri, experiment_id):
    found = mlflow_api(uri, "runs/search", {"experiment_ids": [experiment_id], "max_results": 100})
    return found.get("runs", [])


def test_pipeline_run_and_step_runs_in_mlflow(world, monkeypatch, mlflow_server):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    ir = _ir(world, {"b": "cancel"})
    result = world.run(ir)
    assert result.ok and result.status == "canceled", world.output()
    assert executed(world.side) == ["a", "b"]

    exp = mlflow_api(mlflow_server, "experiments/get-by-name", {"experiment_name": "tracked"})
    runs = _runs(mlflow_server, exp["experiment"]["experiment_id"])
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    by_step = {t.get("mlpipe.step"): r for r, t in zip(runs, tags, strict=True)}
    parents = [r for r, t in zip(runs, tags, strict=True) if t.get("mlpipe.kind") == "pipeline"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent["info"]["status"] == "KILLED"  # canceled, not failed
    parent_metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
    assert parent_metrics == {"parent_a": 7.0, "parent_b": 7.0}
    parent_tags = {t["key"]: t["value"] for t in parent["data"]["tags"]}
    assert parent_tags["seen_a"] == "yes" and parent_tags["mlpipe.run_id"] == result.run_id

    assert set(by_step) == {"a", "b", None}  # c never ran: no run of its own
    a = by_step["a"]
    a_tags = {t["key"]: t["value"] for t in a["data"]["tags"]}
    assert a_tags["mlflow.parentRunId"] == parent["info"]["run_id"]
    assert a_tags["who"] == "a"
    assert a["info"]["status"] == "FINISHED"
    a_metrics = {m["key"]: m["value"] for m in a["data"]["metrics"]}
    assert a_metrics == {"mlpipe_metric": 1.5, "row.a": 1.0, "row.b": 2.0, "direct": 0.5}
    history = mlflow_api(
        mlflow_server,
        "metrics/get-history",
        {"run_id": a["info"]["run_id"], "metric_key": "direct"},
    )
    assert [m["value"] for m in history["metrics"]] == [0.25, 0.5]

    record = json.loads(
        (world.ds / ".mlpipe" / "runs" / result.run_id / "steps" / "a.json").read_text()
    )
    assert record["mlflow"]["run_id"] == a["info"]["run_id"]
    assert record["metrics"]["direct"] == 0.5
    assert "127.0.0.1" not in json.dumps(record["mlflow"])  # ids only, no server address


def test_completed_and_reused_runs_end_finished_in_mlflow(world, monkeypatch, mlflow_server):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    src = write_source(world.base / "src", {"main.py": SCRIPT})
    ir = pipeline("tracked_ok", world.ds, [step("a", src, arguments=[lit("a"), lit("-")])])
    first, second = world.run(ir), world.run(ir)
    assert second.statuses == {"a": "reused"}, world.output()
    exp = mlflow_api(mlflow_server, "experiments/get-by-name", {"experiment_name": "tracked_ok"})
    runs = _runs(mlflow_server, exp["experiment"]["experiment_id"])
    for result in (first, second):
        mine = [r for r in runs if _tag(r, "mlpipe.run_id") == result.run_id]
        parent = [r for r in mine if _tag(r, "mlpipe.kind") == "pipeline"]
        assert [r["info"]["status"] for r in parent] == ["FINISHED"]
        steps = [r for r in mine if _tag(r, "mlpipe.step") == "a"]
        assert len(steps) == 1 and steps[0]["info"]["status"] == "FINISHED"
        metrics = {m["key"]: m["value"] for m in parent[0]["data"]["metrics"]}
        assert metrics == {"parent_a": 7.0}  # a reused step brings its pipeline-run metrics
    reused = [r for r in runs if _tag(r, "mlpipe.run_id") == second.run_id]
    assert any(_tag(r, "mlpipe.reused_from") == first.run_id for r in reused)


def _tag(run: dict, key: str):
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}.get(key)


def test_steps_starting_at_once_share_one_pipeline_run(tmp_path, mlflow_server):
    """Parallel first steps race to create the pipeline's MLflow run: one wins (write-once),
    the others delete theirs, and every step run hangs under the winner."""
    import threading

    root = str(tmp_path / ".mlpipe")
    mirrors = [tracking.Mirror(mlflow_server, root, "race-1", f"s{i}", "race") for i in range(4)]
    envs: list[dict] = []
    threads = [threading.Thread(target=lambda m=m: envs.append(m.start_step())) for m in mirrors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parents = {m.parent["run_id"] for m in mirrors}
    assert len(parents) == 1 and len(envs) == 4
    exp = mlflow_api(mlflow_server, "experiments/get-by-name", {"experiment_name": "race"})
    runs = _runs(mlflow_server, exp["experiment"]["experiment_id"])  # active runs only
    pipeline_runs = [r for r in runs if _tag(r, "mlpipe.kind") == "pipeline"]
    assert [r["info"]["run_id"] for r in pipeline_runs] == list(parents)
    assert {_tag(r, "mlflow.parentRunId") for r in runs if _tag(r, "mlpipe.step")} == parents
