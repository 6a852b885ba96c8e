"""The reuse scenario, end to end through the local runner; execution is detected by the scripts' own
side effects (they append their name to SIDE_LOG), never by mlpipe's report."""

from __future__ import annotations

import json

from helpers import (
    RECORD,
    executed,
    from_dataset,
    from_step,
    inp,
    out,
    output,
    par,
    pipeline,
    reset,
    step,
    write_source,
)

from mlpipe.ir import Parameter

PREP = (
    RECORD
    + """
_record("prep")
src, dst = sys.argv[1], sys.argv[2]
text = "".join(open(os.path.join(src, f)).read() for f in sorted(os.listdir(src)))
open(os.path.join(dst, "prepared.txt"), "w").write(text.upper())
"""
)
TRAIN = (
    RECORD
    + """
_record("train")
src, dst, lr = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(os.path.join(src, "prepared.txt")).read()
open(os.path.join(dst, "model.txt"), "w").write(f"model({data}, lr={lr}, v=1)")
"""
)
REPORT = (
    RECORD
    + """
_record("report")
src, dst = sys.argv[1], sys.argv[2]
open(os.path.join(dst, "report.md"), "w").write("# " + open(os.path.join(src, "model.txt")).read())
"""
)
STAMP = (
    RECORD
    + """
_record("stamp")
open(os.path.join(sys.argv[1], "stamp.txt"), "w").write("constant")
"""
)
USE_STAMP = (
    RECORD
    + """
_record("use_stamp")
open(os.path.join(sys.argv[2], "copy.txt"), "w").write(open(os.path.join(sys.argv[1], "stamp.txt")).read())
"""
)
SIDE = (
    RECORD
    + """
_record("side")
open(os.path.join(sys.argv[2], "n.txt"), "w").write(str(len(open(os.path.join(sys.argv[1], "lookup.csv")).read())))
"""
)


SOURCES = {
    "prep": {"main.py": PREP},
    "train": {"main.py": TRAIN, "helper.txt": "v1"},
    "report": {"main.py": REPORT},
    "stamp": {"main.py": STAMP},
    "use_stamp": {"main.py": USE_STAMP},
    "side": {"main.py": SIDE},
}


def build(w):
    srcs = {name: w.base / f"{name}_src" for name in SOURCES}
    return pipeline(
        "reuse",
        w.ds,
        [
            step(
                "prep",
                srcs["prep"],
                arguments=[inp("raw"), out("prepared")],
                inputs=[from_dataset("raw", "raw/")],
                outputs=[output("prepared")],
                base_dir=w.base,
            ),
            step(
                "train",
                srcs["train"],
                arguments=[inp("data"), out("model"), par("lr")],
                inputs=[from_step("data", "prep", "prepared")],
                outputs=[output("model")],
                base_dir=w.base,
            ),
            step(
                "report",
                srcs["report"],
                arguments=[inp("model"), out("report")],
                inputs=[from_step("model", "train", "model", mode="download")],
                outputs=[output("report", destination="reports/{run-id}/{output-name}")],
                base_dir=w.base,
            ),
            step(
                "stamp",
                srcs["stamp"],
                arguments=[out("stamp")],
                outputs=[output("stamp")],
                allow_reuse=False,
                base_dir=w.base,
            ),
            step(
                "use_stamp",
                srcs["use_stamp"],
                arguments=[inp("stamp"), out("copy")],
                inputs=[from_step("stamp", "stamp", "stamp")],
                outputs=[output("copy")],
                base_dir=w.base,
            ),
            step(
                "side",
                srcs["side"],
                arguments=[inp("lookup"), out("n")],
                inputs=[from_dataset("lookup", "lookup/lookup.csv", mode="mount")],
                outputs=[output("n")],
                base_dir=w.base,
            ),
        ],
        parameters=[Parameter(name="lr", type="float", default=0.5)],
    )


def seed_data(w):
    for name, files in SOURCES.items():
        write_source(w.base / f"{name}_src", files)
    (w.ds / "raw").mkdir()
    (w.ds / "raw" / "a.txt").write_text("alpha ")
    (w.ds / "raw" / "b.txt").write_text("beta")
    (w.ds / "lookup").mkdir()
    (w.ds / "lookup" / "lookup.csv").write_text("k,v\n1,2\n")


ALL = ["prep", "train", "report", "stamp", "use_stamp", "side"]


def test_reuse_scenario(world):
    w = world
    seed_data(w)

    # 1. first run executes everything
    res = w.run(build(w))
    assert res.ok, w.output()
    assert sorted(executed(w.side)) == sorted(ALL)
    report_dir = w.ds / "reports" / f"{res.run_id}_report" / "report"
    assert (report_dir / "report.md").read_text() == "# model(ALPHA BETA, lr=0.5, v=1)"
    first_run = res.run_id

    # 2. unchanged rerun: only the allow_reuse=False step executes; its identical output lets
    #    its consumer be reused
    reset(w.side)
    res = w.run(build(w))
    assert res.ok, w.output()
    assert executed(w.side) == ["stamp"]
    assert res.statuses["train"] == "reused"
    assert res.steps["report"].result.reused_from == first_run
    assert res.statuses["use_stamp"] == "reused"

    # 3. editing a file in one step's source directory reruns that step and its downstream only
    reset(w.side)
    (w.base / "train_src" / "main.py").write_text(TRAIN.replace("v=1", "v=2"))
    res = w.run(build(w))
    assert res.ok, w.output()
    assert sorted(executed(w.side)) == ["report", "stamp", "train"]
    report_dir = w.ds / "reports" / f"{res.run_id}_report" / "report"
    assert (report_dir / "report.md").read_text() == "# model(ALPHA BETA, lr=0.5, v=2)"

    # a non-script file in the source directory counts too (the whole folder is the snapshot) —
    # but the output is byte-identical, so the downstream is reused
    reset(w.side)
    (w.base / "train_src" / "helper.txt").write_text("v2")
    res = w.run(build(w))
    assert sorted(executed(w.side)) == ["stamp", "train"]

    # 4. changing an input dataset file reruns its consumers (and what their new output feeds)
    reset(w.side)
    (w.ds / "raw" / "b.txt").write_text("gamma")
    res = w.run(build(w))
    assert res.ok, w.output()
    assert sorted(executed(w.side)) == ["prep", "report", "stamp", "train"]
    reset(w.side)
    (w.ds / "lookup" / "lookup.csv").write_text("k,v\n1,2\n3,4\n")
    res = w.run(build(w))
    assert sorted(executed(w.side)) == ["side", "stamp"]

    # a parameter override is part of the fingerprint of the steps that use it
    reset(w.side)
    res = w.run(build(w), params={"lr": "0.25"})
    assert sorted(executed(w.side)) == ["report", "stamp", "train"]
    model = json.loads(
        (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "train.json").read_text()
    )["outputs"]["model"]
    assert "lr=0.25" in open(model["url"] + "/model.txt").read()

    # 5. regenerate_outputs reruns everything
    reset(w.side)
    res = w.run(build(w), regenerate_outputs=True)
    assert res.ok
    assert sorted(executed(w.side)) == sorted(ALL)


def test_submission_parameters_and_regenerate(world):
    from mlpipe.ir import Submission

    w = world
    seed_data(w)
    ir = build(w)
    ir.submissions = [Submission(experiment="exp", pipeline_parameters={"lr": 0.125})]
    res = w.run(ir)
    assert res.run_id.startswith("exp_")
    model = json.loads(
        (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "train.json").read_text()
    )["outputs"]["model"]
    assert "lr=0.125" in open(model["url"] + "/model.txt").read()
    # --param beats the submission
    res = w.run(ir, params={"lr": "2"})
    model = json.loads(
        (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "train.json").read_text()
    )["outputs"]["model"]
    assert "lr=2.0" in open(model["url"] + "/model.txt").read()
    # the submission's regenerate_outputs=True reruns everything
    ir.submissions = [
        Submission(experiment="exp", pipeline_parameters={"lr": 2}, regenerate_outputs=True)
    ]
    reset(w.side)
    res = w.run(ir)
    assert sorted(executed(w.side)) == sorted(ALL)


def test_deleted_outputs_are_not_reused(world):
    import shutil

    w = world
    seed_data(w)
    res = w.run(build(w))
    rec = json.loads((w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "prep.json").read_text())
    shutil.rmtree(rec["outputs"]["prepared"]["url"])
    reset(w.side)
    res = w.run(build(w))
    assert res.ok
    # prep reran (its output was gone) with identical bytes, so train / report stay reused
    assert sorted(executed(w.side)) == ["prep", "stamp"]
