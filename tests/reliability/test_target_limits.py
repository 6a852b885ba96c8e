"""Target limits found at compile time: an error (exit 2, nothing written) for what a target
cannot carry, a warning with the number and the limit for what it would run badly."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from benchmarks.run import pipeline_dir

ROOT = Path(__file__).resolve().parents[2]
MLPIPE = str(ROOT / ".venv" / "bin" / "mlpipe")
# The pods' missing-runtime warning (no image registry here) is not about sizes.
RUNTIME = "may lack mlpipe's step runtime"

PIPELINE = """\
from azureml.core import Experiment, Workspace
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
p = PipelineParameter("p", default_value={default})
s = PythonScriptStep("s.py", arguments=[p], source_directory="src")
pipeline = Pipeline(ws, [s])
Experiment(ws, "limits").submit(pipeline, pipeline_parameters={{"p": {override}}})
"""
PARAM_LINE, SUBMIT_LINE = 6, 9


def compile_kfp(tmp_path: Path, default, override) -> subprocess.CompletedProcess:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "s.py").write_text("print('s')\n")
    (tmp_path / "pipeline.py").write_text(
        textwrap.dedent(PIPELINE.format(default=repr(default), override=repr(override)))
    )
    return subprocess.run(
        [MLPIPE, "compile", "pipeline.py", "--target", "kfp", "-o", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


def refused(proc: subprocess.CompletedProcess, tmp_path: Path) -> list[str]:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("pipeline.py:")]


@pytest.mark.parametrize(
    ("default", "override", "line", "words"),
    [
        ("x" * 10_001, "short", PARAM_LINE, ["10001 characters", "limit of 10000"]),
        ("short", "y" * 12_345, SUBMIT_LINE, ["12345 characters", "limit of 10000"]),
        (10**30, 1, PARAM_LINE, ["doubles", "±2**53", str(10**30)]),
        (1, -(2**53) - 1, SUBMIT_LINE, ["doubles", str(-(2**53) - 1)]),
    ],
    ids=["long-default", "long-override", "huge-int-default", "huge-int-override"],
)
def test_kfp_refuses_parameter_values_it_cannot_carry(tmp_path, default, override, line, words):
    problems = refused(compile_kfp(tmp_path, default, override), tmp_path)
    assert problems and problems[0].startswith(f"pipeline.py:{line}: parameter 'p'"), problems
    for word in words:
        assert word in problems[0], problems[0]


def test_kfp_takes_values_at_the_limits(tmp_path):
    proc = compile_kfp(tmp_path, "x" * 10_000, 2**53)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "limits.yaml").is_file()


@pytest.fixture(scope="module")
def large_pipeline(tmp_path_factory) -> Path:
    """Just over the Airflow parse-cost threshold (5000 tasks)."""
    return pipeline_dir(tmp_path_factory.mktemp("large"), 5001, "chain")


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("airflow", ["DAG 'pipeline' has 5001 tasks", "10 s", "dagbag_import_timeout of 30 s"]),
        ("kfp", ["pipeline.yaml is ", "MiB (5001 steps)", "1.5 MiB"]),
    ],
)
def test_large_pipelines_compile_with_a_warning_naming_the_size_and_the_limit(
    large_pipeline, tmp_path, target, words
):
    proc = subprocess.run(
        [MLPIPE, "compile", "pipeline.py", "--target", target, "-o", str(tmp_path / target)],
        cwd=large_pipeline,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [ln for ln in proc.stderr.splitlines() if ": warning: " in ln and RUNTIME not in ln]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("pipeline.py:"), warnings
    for word in words:
        assert word in warnings[0], warnings[0]


def test_small_pipelines_compile_without_size_warnings(tmp_path):
    work = pipeline_dir(tmp_path / "small", 50, "mixed")
    for target in ("airflow", "kfp"):
        proc = subprocess.run(
            [MLPIPE, "compile", "pipeline.py", "--target", target, "-o", str(tmp_path / target)],
            cwd=work,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        sizes = [ln for ln in proc.stderr.splitlines() if ": warning: " in ln and RUNTIME not in ln]
        assert not sizes, proc.stderr


def test_the_local_runner_takes_long_experiment_and_step_names(tmp_path):
    # v1 allows 250-character experiment names and longer step names; the run id and the step
    # records once used them whole as file names ("File name too long", found by the fuzz run).
    (tmp_path / "src").mkdir()
    counter = tmp_path / "ran.txt"
    (tmp_path / "src" / "s.py").write_text(f"open({str(counter)!r}, 'a').write('x')\n")
    step = "step " * 60
    (tmp_path / "pipeline.py").write_text(
        "from azureml.core import Experiment, Workspace\n"
        "from azureml.pipeline.core import Pipeline\n"
        "from azureml.pipeline.steps import PythonScriptStep\n"
        "ws = Workspace.from_config()\n"
        f"s = PythonScriptStep('s.py', name={step!r}, source_directory='src')\n"
        f"Experiment(ws, {'e' * 250!r}).submit(Pipeline(ws, [s]))\n"
    )
    for _ in range(2):  # the second run reuses the first one's result
        proc = subprocess.run(
            [MLPIPE, "run", "pipeline.py"], cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert counter.read_text() == "x"
