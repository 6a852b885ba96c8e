"""A recompile never removes the version a run in flight pinned (issue 14 item 8).

The output folder keeps the files of the last KEEP_VERSIONS compiles; older ones go, unless a run
that pinned them (`<default datastore>/.mlpipe/pins/`, written by the shipped runtime's first task
of the run) is still in flight: no final run record and active within MLPIPE_PIN_DAYS days.
Real parts: `mlpipe compile` and the shipped runtime run as the Airflow tasks start them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.targets import MLPIPE, child_env, run_cmd

PIPELINE = """\
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
a = PythonScriptStep(name="a", script_name="step.py", source_directory="src", allow_reuse=False)
b = PythonScriptStep(name="b", script_name="step.py", source_directory="src", allow_reuse=False)
b.run_after(a)
Pipeline(workspace=ws, steps=[a, b])
"""


def compile_version(pipeline: Path, out: Path, version: int, **env) -> subprocess.CompletedProcess:
    (pipeline.parent / "src" / "step.py").write_text(f"print('step code version {version}')\n")
    proc = run_cmd(
        [MLPIPE, "compile", str(pipeline), "-t", "airflow", "-o", str(out)],
        env=child_env(**env),
        cwd=str(pipeline.parent),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def run_step(out: Path, step: str, run_id: str) -> subprocess.CompletedProcess:
    """What the DAG's task runs: the shipped runtime named by the current DAG file."""
    dag = (out / "pipeline.py").read_text()
    (bundle,) = [
        p for p in (out / ".mlpipe").glob("pipeline.*.json") if p.name.split(".")[1] in dag
    ]
    (runtime,) = (out / ".mlpipe" / "runtime").iterdir()
    args = [
        f"--ir={bundle}",
        f"--step={step}",
        f"--run-id={run_id}",
        "--params-json={}",
        "--pin-version",
    ]
    return subprocess.run(
        [sys.executable, "-m", "mlpipe.runtime", "run-step", *args],
        env=child_env(PYTHONPATH=str(runtime), MLPIPE_RUNNER="airflow"),
        capture_output=True,
        text=True,
        cwd=out,
    )


def bundles(out: Path) -> list[str]:
    return sorted(p.name for p in (out / ".mlpipe").glob("pipeline.*.json"))


def test_a_recompile_keeps_the_version_a_run_in_flight_pinned(tmp_path):
    folder = tmp_path / "p"
    (folder / "src").mkdir(parents=True)
    (folder / "pipeline.py").write_text(PIPELINE)
    pipeline, out = folder / "pipeline.py", tmp_path / "dags"
    compile_version(pipeline, out, 1)
    (v1,) = bundles(out)
    first = run_step(out, "a", "run-1")  # the run starts with version 1 and pins it
    assert first.returncode == 0 and "step code version 1" in first.stdout, first.stderr
    state = folder / ".mlpipe" / "datastores" / "workspaceblobstore" / ".mlpipe"
    assert (state / "pins" / f"ir-{v1.split('.')[1]}" / "run-1.json").is_file()
    for version in (2, 3, 4, 5):  # more compiles than the output folder keeps
        compile_version(pipeline, out, version)
    assert len(bundles(out)) == 4 and v1 in bundles(out)  # the last three + the pinned one
    manifest = json.loads((out / ".mlpipe" / "manifest.json").read_text())
    (entry,) = manifest["sources"].values()
    assert f".mlpipe/{v1}" in entry["in_use"]
    # the run's next task, started by the newest DAG file, runs version 1's step code
    second = run_step(out, "b", "run-1")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "step code version 1" in second.stdout
    assert f"uses the version it started with, {v1}" in second.stdout
    # a run idle for longer than MLPIPE_PIN_DAYS no longer holds its version
    compile_version(pipeline, out, 6, MLPIPE_PIN_DAYS="0")
    assert len(bundles(out)) == 3 and v1 not in bundles(out)
    late = run_step(out, "b", "run-1")
    assert late.returncode == 2 and "start a new run" in late.stderr, late.stdout + late.stderr
