"""Command steps, timeouts, per-compute parallelism bounds, order edges."""

from __future__ import annotations

import json
import time

from helpers import RECORD, executed, lit, output, pipeline, step, write_source

from mlpipe.ir import Compute, LiteralArg, OutputArg

TIMED = (
    RECORD
    + """
import time
t0 = time.time()
time.sleep(0.4)
with open(os.environ["SIDE_LOG"] + ".times", "a") as fh:
    fh.write(json.dumps([sys.argv[1], t0, time.time()]) + "\\n")
_record(sys.argv[1])
"""
)


def _intervals(w):
    rows = [json.loads(line) for line in open(str(w.side) + ".times")]
    return {name: (a, b) for name, a, b in rows}


def _overlap(x, y):
    return x[0] < y[1] and y[0] < x[1]


def test_max_nodes_bounds_parallelism_per_compute(world):
    w = world
    src = write_source(w.base / "t", {"main.py": TIMED})
    steps = [
        step(f"small{i}", src, arguments=[lit(f"small{i}")], compute="small") for i in range(3)
    ]
    steps += [step("big0", src, arguments=[lit("big0")], compute="big")]
    ir = pipeline(
        "bounds",
        w.ds,
        steps,
        computes=[Compute(name="small", max_nodes=1), Compute(name="big", max_nodes=4)],
    )
    res = w.run(ir, max_parallel=4)
    assert res.ok, w.output()
    iv = _intervals(w)
    smalls = [iv[f"small{i}"] for i in range(3)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not _overlap(smalls[i], smalls[j])
    # the other compute's step ran alongside one of them
    assert any(_overlap(iv["big0"], s) for s in smalls)


def test_run_after_orders_steps(world):
    w = world
    src = write_source(w.base / "t", {"main.py": TIMED})
    ir = pipeline(
        "order",
        w.ds,
        [
            step("second", src, arguments=[lit("second")], run_after=["first"]),
            step("first", src, arguments=[lit("first")]),
        ],
    )
    res = w.run(ir)
    assert res.ok
    iv = _intervals(w)
    assert iv["first"][1] <= iv["second"][0]


def test_command_steps(world):
    w = world
    src = write_source(
        w.base / "c",
        {
            "tool.py": RECORD + "_record('tool:' + '|'.join(sys.argv[1:]))\n",
            "pkg/__init__.py": "",
            "pkg/__main__.py": RECORD + "_record('module:' + '|'.join(sys.argv[1:]))\n",
        },
    )

    def cmd(name, argv, **kw):
        s = step(name, src, script=None, **kw)
        s.kind = "command"
        s.command = argv
        return s

    ir = pipeline(
        "cmd",
        w.ds,
        [
            cmd(
                "script",
                [LiteralArg(value="python"), LiteralArg(value="tool.py"), LiteralArg(value="a b")],
            ),
            cmd(
                "module",
                [
                    LiteralArg(value="python3"),
                    LiteralArg(value="-m"),
                    LiteralArg(value="pkg"),
                    LiteralArg(value="x"),
                ],
            ),
            cmd(
                "shell_free",
                [
                    LiteralArg(value="sh"),
                    LiteralArg(value="-c"),
                    LiteralArg(value='echo "$1" >> "$SIDE_LOG"'),
                    LiteralArg(value="sh"),
                    LiteralArg(value="plain;$HOME"),
                ],
            ),
            cmd(
                "with_output",
                [
                    LiteralArg(value="python"),
                    LiteralArg(value="-c"),
                    LiteralArg(value="import sys; open(sys.argv[1] + '/f', 'w').write('ok')"),
                ],
                arguments=[OutputArg(name="o")],
                outputs=[output("o")],
            ),
        ],
    )
    res = w.run(ir)
    assert res.ok, w.output()
    got = executed(w.side)
    assert "tool:a" in got  # split() of the log: "tool:a b" is two words
    assert "module:x" in got
    assert "plain;$HOME" in got
    rec = json.loads(
        (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "with_output.json").read_text()
    )
    assert open(rec["outputs"]["o"]["url"] + "/f").read() == "ok"


def test_max_run_duration_kills_the_step(world):
    w = world
    src = write_source(
        w.base / "slow", {"main.py": "import time\nprint('start', flush=True)\ntime.sleep(30)\n"}
    )
    ir = pipeline("slow", w.ds, [step("slow", src, max_run_duration_seconds=1)])
    t0 = time.monotonic()
    res = w.run(ir)
    assert time.monotonic() - t0 < 15
    assert res.statuses == {"slow": "failed"}
    assert res.steps["slow"].result.exit_code == 124
    assert "max_run_duration_seconds" in res.steps["slow"].result.stderr_tail
