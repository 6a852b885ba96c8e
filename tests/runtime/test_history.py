"""Run history: pipeline-run metrics and tags shared by steps, step files, tags, cancel."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import RECORD, executed, lit, pipeline, step, write_source

from mlpipe.runtime import history
from mlpipe.runtime.context import PipelineRun, Run
from mlpipe.runtime.state import Datastores, State
from mlpipe.runtime.step import RunContext, run_step


def step_run(root, step_name: str, run_id: str = "r1", **extra) -> Run:
    return Run(
        {
            "id": f"{run_id}_{step_name}",
            "run_id": run_id,
            "step": step_name,
            "state_root": str(root),
            **extra,
        }
    )


# ------------------------------------------------------------------------- history module


def test_parent_metrics_and_tags_are_shared_through_state(tmp_path):
    a, b = step_run(tmp_path, "a"), step_run(tmp_path, "b")
    a.parent.log("acc", 0.5)
    a.parent.log_list("curve", [1, 2])
    a.parent.tag("stage", "one")
    b.parent.log("acc", 0.7)
    b.parent.tag("stage", "two")
    b.parent.set_tags({"owner": None})
    assert a.parent.get_metrics() == {"acc": [0.5, 0.7], "curve": [1, 2]}
    assert a.parent.get_metrics("acc") == {"acc": [0.5, 0.7]}
    assert a.parent.get_tags() == {"stage": "two", "owner": ""}
    # each step wrote only its own file
    files = sorted(p.name for p in (tmp_path / "runs" / "r1" / "parent").iterdir())
    assert files == ["a.json", "b.json"]
    assert json.loads((tmp_path / "runs" / "r1" / "parent" / "a.json").read_text())["step"] == "a"


def test_numpy_like_values_are_stored_as_plain_json(tmp_path):
    class Scalar:
        def item(self):
            return 1.5

    run = step_run(tmp_path, "a")
    run.parent.log("x", Scalar())
    run.log("y", Scalar())
    assert run.parent.get_metrics() == {"x": 1.5}
    assert run.get_metrics() == {"y": 1.5}


def test_cancel_is_written_once_and_read_by_status(tmp_path):
    root = str(tmp_path)
    assert history.run_status(root, "r1") == "completed"
    run = step_run(tmp_path, "judge")
    assert run.parent.get_status() == "Running"
    run.parent.cancel()
    assert run.parent.get_status() == "Canceled"
    assert history.request_cancel(root, "r1", "other") is False  # the first one stays
    assert history.canceled(root, "r1")["step"] == "judge"
    assert history.run_status(root, "r1") == "canceled"


def test_a_torn_cancel_marker_still_counts(tmp_path):
    root = str(tmp_path)
    assert history.canceled(root, "r2") is None
    marker = Path(history.cancel_marker(root, "r2"))
    marker.parent.mkdir(parents=True)
    marker.write_bytes(b'{"run_id": "r')  # a writer killed mid-write on a non-atomic filesystem
    assert history.canceled(root, "r2") == {"run_id": "r2", "step": None, "reason": "canceled"}


def test_run_status_failed_wins_over_canceled(tmp_path):
    root = str(tmp_path)
    steps = tmp_path / "runs" / "r1" / "steps"
    steps.mkdir(parents=True)
    (steps / "a.json").write_text(json.dumps({"status": "running"}))
    assert history.run_status(root, "r1") == "running"
    history.request_cancel(root, "r1", "a")
    (steps / "a.json").write_text(json.dumps({"status": "completed"}))
    assert history.run_status(root, "r1") == "canceled"
    (steps / "b.json").write_text(json.dumps({"status": "failed"}))
    assert history.run_status(root, "r1") == "failed"


def test_step_run_tags_properties_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = tmp_path / "meta.json"
    run = step_run(
        tmp_path, "a", meta_file=str(meta), uploads_dir=str(tmp_path / "up"), cwd=str(tmp_path)
    )
    assert not run.id.startswith("OfflineRun")
    run.tag("k", 1)
    run.set_tags({"m": "n"})
    run.add_properties({"p": "v"})
    run.add_properties({"p": "v"})  # the same value again is fine
    try:
        run.add_properties({"p": "other"})
        raise AssertionError("a property changed")
    except ValueError as exc:
        assert "immutable" in str(exc)
    assert run.get_tags() == {"k": "1", "m": "n"} == run.tags
    assert json.loads(meta.read_text()) == {"tags": {"k": "1", "m": "n"}, "properties": {"p": "v"}}
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "model.bin").write_bytes(b"m")
    (tmp_path / "note.txt").write_text("hi")
    run.upload_file("docs/note.txt", str(tmp_path / "note.txt"))
    assert run.get_file_names() == ["docs/note.txt", "outputs/model.bin"]
    run.download_file("outputs/model.bin", str(tmp_path / "copy.bin"))
    assert (tmp_path / "copy.bin").read_bytes() == b"m"


def test_offline_run_has_no_parent_and_keeps_metrics_in_memory():
    Run._current = None
    run = Run.get_context()
    try:
        assert run.id.startswith("OfflineRun_") and run.parent is None
        run.log("a", 1)
        assert run.get_metrics() == {"a": 1}
    finally:
        Run._current = None


def test_pipeline_run_without_state_keeps_its_own_log():
    parent = PipelineRun(Run({"id": "x", "run_id": "r", "step": "s"}), {"run_id": "r"})
    parent.log("a", 2)
    parent.tag("t", "v")
    assert parent.get_metrics() == {"a": 2} and parent.get_tags() == {"t": "v"}


# ------------------------------------------------------------------------ through the runtime

CANCEL = (
    RECORD
    + """
from mlpipe.runtime.context import Run
_record(sys.argv[1])
run = Run.get_context()
run.parent.log("score", 3)
run.tag("who", sys.argv[1])
os.makedirs("outputs", exist_ok=True)
open("outputs/o.txt", "w").write(sys.argv[1])
if sys.argv[2] == "cancel":
    run.parent.cancel()
if sys.argv[2] == "fail":
    raise SystemExit(3)
"""
)


def _cancel_pipeline(world, modes: dict[str, str]):
    src = write_source(world.base / "src", {"main.py": CANCEL})
    steps = [
        step("a", src, arguments=[lit("a"), lit(modes.get("a", "-"))], allow_reuse=False),
        step(
            "b",
            src,
            arguments=[lit("b"), lit(modes.get("b", "-"))],
            run_after=["a"],
            allow_reuse=False,
        ),
        step(
            "c",
            src,
            arguments=[lit("c"), lit(modes.get("c", "-"))],
            run_after=["b"],
            allow_reuse=False,
        ),
    ]
    return pipeline("cancel", world.ds, steps)


def test_local_runner_cancel_runs_nothing_more_and_is_not_a_failure(world):
    result = world.run(_cancel_pipeline(world, {"b": "cancel"}))
    assert executed(world.side) == ["a", "b"]
    assert result.ok and result.exit_code == 0 and result.status == "canceled"
    assert result.statuses == {"a": "completed", "b": "completed", "c": "canceled"}
    run_dir = world.ds / ".mlpipe" / "runs" / result.run_id
    assert json.loads((run_dir / "run.json").read_text())["status"] == "canceled"
    record = json.loads((run_dir / "steps" / "c.json").read_text())
    assert record["status"] == "canceled" and record["canceled_by"] == "b"
    assert "was canceled" in world.output()


def test_a_step_that_starts_after_cancel_records_canceled_and_runs_nothing(world):
    ir = _cancel_pipeline(world, {}).model_dump(mode="json")
    root = State(Datastores(ir)).root
    history.request_cancel(root, "r9", "elsewhere")
    result = run_step(ir, "a", RunContext(run_id="r9"))
    assert result.status == "canceled" and result.ok
    assert executed(world.side) == []
    record = json.loads((world.ds / ".mlpipe" / "runs" / "r9" / "steps" / "a.json").read_text())
    assert record["status"] == "canceled" and "elsewhere" in record["reason"]


def test_failed_step_keeps_its_files_and_tags(world):
    result = world.run(_cancel_pipeline(world, {"a": "fail"}))
    assert not result.ok and result.status == "failed"
    run_dir = world.ds / ".mlpipe" / "runs" / result.run_id
    record = json.loads((run_dir / "steps" / "a.json").read_text())
    assert record["status"] == "failed"
    assert record["tags"] == {"who": "a"} and record["files"] == ["outputs/o.txt"]
    assert (run_dir / "files" / "a" / "outputs" / "o.txt").read_text() == "a"


def test_reused_step_brings_its_pipeline_run_metrics_into_the_new_run(world):
    src = write_source(world.base / "src", {"main.py": CANCEL})
    reader = write_source(
        world.base / "reader",
        {
            "main.py": RECORD
            + """
from mlpipe.runtime.context import Run
_record("reader")
print("SAW", json.dumps(Run.get_context().parent.get_metrics()))
"""
        },
    )
    steps = [
        step("a", src, arguments=[lit("a"), lit("-")]),
        step("r", reader, run_after=["a"], allow_reuse=False),
    ]
    ir = pipeline("carry", world.ds, steps)
    first = world.run(ir)
    second = world.run(ir)
    assert second.statuses == {"a": "reused", "r": "completed"}
    assert executed(world.side) == ["a", "reader", "reader"]
    assert 'SAW {"score": 3}' in world.output()
    root = str(world.ds / ".mlpipe")
    for run in (first, second):
        assert history.merge_metrics(history.parent_entries(root, run.run_id)) == {"score": 3}
    record = json.loads(
        (world.ds / ".mlpipe" / "runs" / second.run_id / "steps" / "a.json").read_text()
    )
    assert record["tags"] == {"who": "a"}
