"""A failing step: exit code kept, stderr shown, downstream skipped, independent branches finish;
after the fix the next run executes it while its completed upstream is reused."""

from __future__ import annotations

import json

from helpers import (
    RECORD,
    executed,
    from_step,
    inp,
    lit,
    out,
    output,
    pipeline,
    reset,
    step,
    write_source,
)

OK = RECORD + '\n_record(sys.argv[1])\nopen(os.path.join(sys.argv[2], "x.txt"), "w").write("x")\n'
BROKEN = (
    RECORD
    + """
_record("b")
print("b: working on", sys.argv[1])
print("b: something is badly wrong", file=sys.stderr)
sys.exit(3)
"""
)
FIXED = (
    RECORD
    + """
_record("b")
open(os.path.join(sys.argv[2], "x.txt"), "w").write(open(os.path.join(sys.argv[1], "x.txt")).read())
"""
)


def build(w):
    def mk(name, src, up=None):
        args = [inp("up"), out("o")] if up else [lit(name), out("o")]
        return step(
            name,
            src,
            arguments=args,
            inputs=[from_step("up", up, "o")] if up else [],
            outputs=[output("o", destination=f"out/{{run-id}}/{name}")],
            base_dir=w.base,
        )

    ok = w.base / "ok_src"
    return pipeline(
        "fail",
        w.ds,
        [
            mk("a", ok),
            mk("b", w.base / "b_src", up="a"),
            mk("c", w.base / "c_src", up="b"),
            mk("d", ok),
        ],
    )


def test_failure_stops_downstream_and_fix_reruns(world):
    w = world
    write_source(w.base / "ok_src", {"main.py": OK})
    write_source(w.base / "b_src", {"main.py": BROKEN})
    write_source(w.base / "c_src", {"main.py": FIXED.replace('"b"', '"c"')})

    res = w.run(build(w))
    assert not res.ok and res.exit_code == 1
    assert res.statuses == {"a": "completed", "b": "failed", "c": "skipped", "d": "completed"}
    assert sorted(executed(w.side)) == ["a", "b", "d"]
    b = res.steps["b"].result
    assert b.exit_code == 3
    assert "b: something is badly wrong" in b.stderr_tail
    text = w.output()
    assert "[b] b: something is badly wrong" in text  # stderr shown, prefixed with the step
    assert "[b] b: working on" in text
    # the failure is recorded, with no cache entry and no published output
    rec = json.loads((w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "b.json").read_text())
    assert rec["status"] == "failed" and rec["exit_code"] == 3 and rec["outputs"] == {}
    assert not (w.ds / ".mlpipe" / "cache" / f"{rec['fingerprint']}.json").exists()
    assert sorted(p.name for p in (w.ds / "out").iterdir()) == [f"{res.run_id}_{s}" for s in "ad"]
    log = (w.ds / ".mlpipe" / "runs" / res.run_id / "logs" / "b.stderr.log").read_text()
    assert "badly wrong" in log

    # the failed step is never reused: rerunning unchanged executes it again
    reset(w.side)
    res = w.run(build(w))
    assert sorted(executed(w.side)) == ["b"]
    assert res.statuses["a"] == "reused" and res.statuses["b"] == "failed"

    # fix the script: b runs, its upstream a is reused, its downstream c runs
    reset(w.side)
    write_source(w.base / "b_src", {"main.py": FIXED})
    res = w.run(build(w))
    assert res.ok, w.output()
    assert sorted(executed(w.side)) == ["b", "c"]
    assert res.statuses == {"a": "reused", "b": "completed", "c": "completed", "d": "reused"}


def test_outputs_of_failed_step_not_published(world):
    w = world
    src = write_source(
        w.base / "s",
        {
            "main.py": RECORD
            + '\nopen(os.path.join(sys.argv[1], "partial.txt"), "w").write("half")\nsys.exit(1)\n'
        },
    )
    ir = pipeline(
        "p",
        w.ds,
        [
            step(
                "s",
                src,
                arguments=[out("o")],
                outputs=[output("o", destination="fixed/out")],
                base_dir=w.base,
            )
        ],
    )
    res = w.run(ir)
    assert res.statuses == {"s": "failed"}
    assert not (w.ds / "fixed" / "out").exists()
