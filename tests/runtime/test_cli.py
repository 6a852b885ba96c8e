"""`python -m mlpipe.runtime run-step / fingerprint`: what the backends call for each step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from helpers import RECORD, executed, from_step, inp, out, output, par, pipeline, step, write_source

from mlpipe.ir import Parameter
from mlpipe.runtime.state import safe_name
from mlpipe.snapshot import write_snapshot

A = (
    RECORD
    + '\n_record("a")\nprint("a says hi")\nopen(sys.argv[1] + "/v.txt", "w").write(sys.argv[2])\n'
)
B = (
    RECORD
    + """
_record("b")
v = open(sys.argv[1] + "/v.txt").read()
print("b read", v, file=sys.stderr)
if v == "fail":
    sys.exit(3)
open(sys.argv[2] + "/w.txt", "w").write(v * 2)
"""
)


def setup(w):
    sa = write_source(w.base / "a_src", {"main.py": A})
    sb = write_source(w.base / "b_src", {"main.py": B})
    ir = pipeline(
        "cli",
        w.ds,
        [
            step("a", sa, arguments=[out("o"), par("word")], outputs=[output("o")]),
            step(
                "b",
                sb,
                arguments=[inp("i"), out("o")],
                inputs=[from_step("i", "a", "o")],
                outputs=[output("o")],
            ),
        ],
        parameters=[Parameter(name="word", type="string", default="hello")],
    )
    bundle = w.base / "bundle"
    for src in (sa, sb):
        write_snapshot(src, bundle / "snapshots")
    (bundle / "ir.json").write_text(ir.model_dump_json())
    return bundle / "ir.json"


def cli(*args, cache):
    return subprocess.run(
        [sys.executable, "-m", "mlpipe.runtime", *args, "--cache-dir", cache],
        capture_output=True,
        text=True,
    )


def test_run_step_cli(world, tmp_path):
    w = world
    ir = setup(w)
    run = "manual__2026-01-01T00:00:00+00:00"  # an Airflow-style run id
    r = cli("run-step", "--ir", str(ir), "--step", "a", "--run-id", run, cache=w.cache)
    assert r.returncode == 0, r.stderr
    assert "a says hi" in r.stdout
    # mlpipe's progress lines are information: stdout (orchestrators log stderr as errors)
    assert "mlpipe: step 'a' running" in r.stdout and "mlpipe: step 'a' ran" in r.stdout
    assert "mlpipe: step" not in r.stderr
    result_file = tmp_path / "res.json"
    r = cli(
        "run-step",
        "--ir",
        str(ir),
        "--step",
        "b",
        "--run-id",
        run,
        "--result-file",
        str(result_file),
        cache=w.cache,
    )
    assert r.returncode == 0, r.stderr
    assert "b read hello" in r.stderr
    res = json.loads(result_file.read_text())
    assert res["status"] == "completed" and res["outputs"]["o"]["fingerprint"]
    assert open(res["outputs"]["o"]["url"] + "/w.txt").read() == "hellohello"
    assert executed(w.side) == ["a", "b"]
    # Both steps name their output "o" under the default `dataset/{run-id}/{output-name}`: as in
    # v1, {run-id} is each step's own run, so b's output never replaces a's.
    a_dir, b_dir = (w.ds / "dataset" / f"{safe_name(run)}_{s}" / "o" for s in ("a", "b"))
    assert sorted(os.listdir(a_dir)) == ["v.txt"] and sorted(os.listdir(b_dir)) == ["w.txt"]
    assert res["outputs"]["o"]["url"].rstrip("/").endswith(f"{safe_name(run)}_b/o")

    # a new run: both reused, one decision line each
    run2 = "scheduled__2026-01-02T00:00:00+00:00"
    info = cli("fingerprint", "--ir", str(ir), "--step", "a", "--run-id", run2, cache=w.cache)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["reusable"] is True
    for name in ("a", "b"):
        r = cli("run-step", "--ir", str(ir), "--step", name, "--run-id", run2, cache=w.cache)
        assert r.returncode == 0
        assert f"mlpipe: step '{name}' reused from run {run}" in r.stdout
    assert executed(w.side) == ["a", "b"]
    # regenerate_outputs runs it again
    r = cli(
        "run-step",
        "--ir",
        str(ir),
        "--step",
        "a",
        "--run-id",
        "r3",
        "--regenerate-outputs",
        "true",
        cache=w.cache,
    )
    assert r.returncode == 0 and executed(w.side) == ["a", "b", "a"]


def test_run_step_cli_failures(world):
    w = world
    ir = setup(w)
    params = json.dumps({"word": "fail"})
    r = cli(
        "run-step",
        "--ir",
        str(ir),
        "--step",
        "a",
        "--run-id",
        "f1",
        "--params-json",
        params,
        cache=w.cache,
    )
    assert r.returncode == 0
    r = cli(
        "run-step",
        "--ir",
        str(ir),
        "--step",
        "b",
        "--run-id",
        "f1",
        "--params-json",
        params,
        cache=w.cache,
    )
    assert r.returncode == 3
    assert "b read fail" in r.stderr and "exited with status 3" in r.stderr
    # downstream of a step missing in this run: a clear error, exit 1
    r = cli("run-step", "--ir", str(ir), "--step", "b", "--run-id", "nothing-ran", cache=w.cache)
    assert r.returncode == 1
    assert "no record of 'a' in run 'nothing-ran'" in r.stderr
    # bad invocations: exit 2, one message, no traceback
    bad = [
        ("--params-json", '{"word": 1, "nope": 2}'),
        ("--params-json", "[1"),
        ("--params-json", "[1]"),
    ]
    for opt, value in bad:
        r = cli(
            "run-step", "--ir", str(ir), "--step", "a", "--run-id", "x", opt, value, cache=w.cache
        )
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and "mlpipe: error:" in r.stderr
    r = cli("run-step", "--ir", str(ir), "--step", "zzz", "--run-id", "x", cache=w.cache)
    assert r.returncode == 2 and "no step named 'zzz'" in r.stderr
    r = cli(
        "run-step",
        "--ir",
        str(w.base / "missing.json"),
        "--step",
        "a",
        "--run-id",
        "x",
        cache=w.cache,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_runtime_imports_stay_light():
    code = (
        "import sys, mlpipe.runtime.__main__, mlpipe.runtime.step, mlpipe.runtime.context;"
        "bad = [m for m in ('pydantic', 'fsspec', 'jinja2', 'rich', 'typer', 'mlpipe.ir', 'yaml') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_offline_run_context():
    code = (
        "from mlpipe import Run\n"
        "r = Run.get_context()\n"
        "r.log('a', 1); r.tag('k', 'v'); r.complete()\n"
        "assert r.id.startswith('OfflineRun_') and r.input_datasets == {} and r.get_metrics() == {'a': 1}\n"
        "assert Run.get_context() is r and r.experiment.workspace.name\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin"}
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_pin_version_keeps_a_run_on_the_bundle_it_started_with(world):
    """A task parsed from a recompiled DAG / flow file (a newer bundle beside the old one) still
    runs the version its run started with; a version no longer there is a clear error."""
    w = world
    first = setup(w)
    v1 = first.with_name("cli.v1.json")
    first.rename(v1)
    doc = json.loads(v1.read_text())
    doc["steps"][1]["outputs"][0]["name"] = "renamed"  # what a recompile could change
    doc["steps"][1]["arguments"][1]["name"] = "renamed"
    v2 = v1.with_name("cli.v2.json")
    v2.write_text(json.dumps(doc))

    def run_step(ir, name, run):
        return cli(
            "run-step",
            f"--ir={ir}",
            f"--step={name}",
            f"--run-id={run}",
            "--pin-version",
            cache=w.cache,
        )

    assert run_step(v1, "a", "r1").returncode == 0
    r = run_step(v2, "b", "r1")
    assert r.returncode == 0, r.stderr
    assert "uses the version it started with, cli.v1.json" in r.stdout
    record = json.loads((w.ds / ".mlpipe" / "runs" / "r1" / "steps" / "b.json").read_text())
    assert set(record["outputs"]) == {"o"}
    # a new run takes the new version
    assert run_step(v2, "b", "r2").returncode != 0  # (no record of a in r2: b never starts)
    assert json.loads((w.ds / ".mlpipe" / "runs" / "r2" / "version.json").read_text()) == {
        "bundle": "cli.v2.json"
    }
    # the version a run started with was removed meanwhile: say so, run nothing
    v1.unlink()
    r = run_step(v2, "b", "r1")
    assert r.returncode == 2
    assert "started with pipeline version cli.v1.json, which is no longer" in r.stderr


def test_pin_version_keeps_a_run_on_the_runtime_it_started_with(world, tmp_path):
    """mlpipe upgraded between two tasks of one run (a recompile shipped a new runtime beside the
    old one): the later task runs again with the runtime the run's first task recorded."""
    from mlpipe.backends.base import runtime_files

    w = world
    ir = setup(w)
    versions = tmp_path / "out" / ".mlpipe" / "runtime"
    _, files = runtime_files()
    for name, marker in (("a" * 16, "OLD"), ("b" * 16, "NEW")):
        for rel, data in files.items():
            path = versions / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if rel == "mlpipe/runtime/__main__.py":  # says which runtime runs, then runs
                data = data.replace(
                    b"\ndef main(", f"\nprint('{marker} RUNTIME')\n\n\ndef main(".encode()
                )
            path.write_bytes(data)

    def run_step(name, run, version):
        return subprocess.run(
            [sys.executable, "-m", "mlpipe.runtime", "run-step", f"--ir={ir}", f"--step={name}"]
            + [f"--run-id={run}", "--pin-version", "--cache-dir", w.cache],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(versions / version)},
        )

    r = run_step("a", "r1", "a" * 16)
    assert r.returncode == 0 and r.stdout.startswith("OLD RUNTIME"), r.stdout + r.stderr
    version = json.loads((w.ds / ".mlpipe" / "runs" / "r1" / "version.json").read_text())
    assert version == {"bundle": "ir.json", "runtime": "a" * 16}
    r = run_step("b", "r1", "b" * 16)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"uses the runtime it started with, {'a' * 16}" in r.stdout
    assert r.stdout.splitlines()[:3:2] == ["NEW RUNTIME", "OLD RUNTIME"]
    # the run's runtime was removed meanwhile (compiled again too often): say so, run nothing
    shutil.rmtree(versions / ("a" * 16))
    r = run_step("b", "r1", "b" * 16)
    assert r.returncode == 2 and f"started with mlpipe runtime {'a' * 16}" in r.stderr
