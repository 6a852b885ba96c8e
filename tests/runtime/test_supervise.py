"""mlpipe.runtime.supervise: how the generated Airflow / Prefect tasks start, watch and stop a step."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from helpers import RECORD, from_step, inp, out, output, par, pipeline, step, write_source

from mlpipe.ir import Parameter
from mlpipe.runtime.supervise import StepProcess, run_step_args
from mlpipe.snapshot import write_snapshot

A = RECORD + '\nprint("a says hi")\nopen(sys.argv[1] + "/v.txt", "w").write(sys.argv[2])\n'
B = (
    RECORD
    + """
v = open(sys.argv[1] + "/v.txt").read()
print("b read", v, file=sys.stderr)
if v == "fail":
    sys.exit(3)
"""
)
# Starts a grandchild in its process group, says so, and waits: stop() must end both.
SLOW = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("grandchild", child.pid, flush=True)
time.sleep(60)
"""


def bundle(w):
    sa = write_source(w.base / "a_src", {"main.py": A})
    sb = write_source(w.base / "b_src", {"main.py": B})
    slow = write_source(w.base / "slow_src", {"main.py": SLOW})
    ir = pipeline(
        "supervised",
        w.ds,
        [
            step("a", sa, arguments=[out("o"), par("word")], outputs=[output("o")]),
            step("b", sb, arguments=[inp("i")], inputs=[from_step("i", "a", "o")]),
            step("slow", slow),
        ],
        parameters=[Parameter(name="word", type="string", default="hello")],
    )
    folder = w.base / "bundle"
    for src in (sa, sb, slow):
        write_snapshot(src, folder / "snapshots")
    (folder / "ir.json").write_text(ir.model_dump_json())
    return str(folder / "ir.json")


def start(w, ir, name, run_id, params=None, lines=None):
    args = run_step_args(ir, name, run_id, params or {}) + [f"--cache-dir={w.cache}"]
    collected = [] if lines is None else lines
    process = StepProcess(
        args, runner="airflow", on_line=lambda stream, line: collected.append((stream, line))
    )
    return process, collected


def test_streams_output_and_reads_the_result(world):
    ir = bundle(world)
    process, lines = start(world, ir, "a", "r1", {"word": "fail"})
    outcome = process.run()
    assert outcome.code == 0 and outcome.status == "completed", lines
    assert ("stdout", "a says hi") in lines
    # mlpipe's status lines are stdout (orchestrators show stderr as errors)
    assert any(s == "stdout" and line.startswith("mlpipe: step 'a' ran") for s, line in lines)
    assert outcome.result["step"] == "a" and len(outcome.fingerprint) == 12

    process, lines = start(world, ir, "b", "r1")
    outcome = process.run()
    assert outcome.code == 3 and outcome.status == "failed"
    assert ("stderr", "b read fail") in lines and "b read fail" in outcome.tail
    assert outcome.result["status"] == "failed"

    process, lines = start(world, ir, "a", "r2", {"word": "fail"})
    outcome = process.run()
    assert outcome.status == "reused" and outcome.result["reused_from"] == "r1"


def test_a_bad_invocation_exits_2_with_its_reason(world):
    ir = bundle(world)
    process, _ = start(world, ir, "a", "r1", {"nope": 1})
    outcome = process.run()
    assert outcome.code == 2 and outcome.status == "failed"
    assert "nope" in outcome.error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (already ended, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def test_stop_ends_the_whole_process_group(world):
    ir = bundle(world)
    seen = threading.Event()
    lines = []
    grandchild = []

    def on_line(stream, line):
        lines.append((stream, line))
        if line.startswith("grandchild "):
            grandchild.append(int(line.split()[1]))
            seen.set()

    args = run_step_args(ir, "slow", "r1", {}) + [f"--cache-dir={world.cache}"]
    process = StepProcess(args, on_line=on_line, stop_grace=10)
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(process.run()))
    runner.start()
    assert seen.wait(60), lines
    t0 = time.monotonic()
    process.stop()
    runner.join(30)
    assert outcome and outcome[0].status == "failed" and outcome[0].code != 0
    assert time.monotonic() - t0 < 20
    deadline = time.monotonic() + 10
    while _alive(grandchild[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild[0])


def test_an_interrupted_wait_stops_the_step(world):
    """A task timeout raises inside the wait (Airflow's SIGALRM): the step stops, the error goes on."""
    ir = bundle(world)
    args = run_step_args(ir, "slow", "r1", {}) + [f"--cache-dir={world.cache}"]
    grandchild = []

    def on_line(stream, line):
        if line.startswith("grandchild "):
            grandchild.append(int(line.split()[1]))

    def timed_out(signum, frame):
        raise TimeoutError("task timed out")

    process = StepProcess(args, new_session=False, on_line=on_line)
    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        with pytest.raises(TimeoutError):
            process.run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert grandchild, "the script had not started within 5 s"
    deadline = time.monotonic() + 10
    while _alive(grandchild[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild[0])
