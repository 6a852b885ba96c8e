"""More bad input, beyond tests/pipelines/bad: each case is a small pipeline written here.

Every case must give `FILE:LINE: message` (or `FILE: message` where no line applies), exit status
2, no traceback, no stdout and no file written. The catalogue's size is reported in docs.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MLPIPE = str(ROOT / ".venv" / "bin" / "mlpipe")

HEADER = """\
from azureml.core import Workspace, Experiment, Dataset, Datastore, Environment
from azureml.core.runconfig import RunConfiguration
from azureml.data import OutputFileDatasetConfig
from azureml.data.datapath import DataPath, DataPathComputeBinding
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence
from azureml.pipeline.steps import PythonScriptStep
ws = Workspace.from_config()
"""
H = HEADER.count("\n")  # the first line after the header is H + 1

# name, body (after HEADER), expected line (relative to the body, 1-based; None for no line),
# words the message must contain
CASES = [
    ("pipeline_data_bad_name", "PipelineData('has space')\n", 1, ["PipelineData name 'has space'"]),
    (
        "ofdc_bad_destination",
        "OutputFileDatasetConfig(destination=42)\n",
        1,
        ["destination must be"],
    ),
    (
        "param_twice",
        "a = PipelineParameter('n', 1)\nb = PipelineParameter('n', 2)\n"
        "s = PythonScriptStep('s.py', arguments=[a, b], source_directory='src')\nPipeline(ws, [s])\n",
        2,
        ["'n' is defined twice"],
    ),
    ("param_empty_name", "PipelineParameter('', 1)\n", 1, ["non-empty name"]),
    ("param_none_default", "PipelineParameter('x', None)\n", 1, ["not NoneType"]),
    (
        "compute_wrong_type",
        "s = PythonScriptStep('s.py', source_directory='src', compute_target=3)\n"
        "Pipeline(ws, [s])\n",
        1,
        ["compute_target must be"],
    ),
    (
        "schedule_bad_frequency",
        "ScheduleRecurrence(frequency='Fortnight', interval=1)\n",
        1,
        ["frequency must be"],
    ),
    (
        "schedule_bad_interval",
        "ScheduleRecurrence(frequency='Day', interval=0)\n",
        1,
        ["interval must be a positive integer"],
    ),
    (
        "schedule_unknown_pipeline",
        "rec = ScheduleRecurrence(frequency='Day', interval=1)\n"
        "Schedule.create(ws, name='s', pipeline_id='nope', experiment_name='e', recurrence=rec)\n",
        2,
        ["does not name a pipeline published"],
    ),
    ("sys_exit", "import sys\nsys.exit(3)\n", 2, ["sys.exit(3)"]),
    ("binding_bad_mode", "DataPathComputeBinding(mode='upload')\n", 1, ["'mount' or 'download'"]),
    (
        "env_unknown",
        "Environment.get(ws, 'my-team-env')\n",
        1,
        ["'my-team-env'", "neither registered"],
    ),
    (
        "dataset_unregistered",
        "Dataset.get_by_name(ws, 'iris')\n",
        1,
        ["dataset 'iris' is not registered"],
    ),
    (
        "dataset_read_at_capture",
        "Dataset.Tabular.from_delimited_files([(ws.get_default_datastore(), 'x.csv')])"
        ".to_pandas_dataframe()\n",
        1,
        ["does not do while capturing"],
    ),
    ("dataset_bad_path", "Dataset.File.from_files(3)\n", 1, ["dataset path must be"]),
    ("script_name_missing", "PythonScriptStep(None)\n", 1, ["needs script_name"]),
    ("bad_steps", "Pipeline(ws, steps=['not a step'])\n", 1, ["must be steps"]),
    ("empty_steps", "Pipeline(ws, steps=[])\n", 1, ["at least one step"]),
    (
        "source_dir_missing",
        "s = PythonScriptStep('s.py', source_directory='nowhere')\nPipeline(ws, [s])\n",
        1,
        ["source_directory 'nowhere'", "does not exist"],
    ),
    (
        "consumes_own_output",
        "o = OutputFileDatasetConfig(name='o')\n"
        "s = PythonScriptStep('s.py', source_directory='src', arguments=[o, o.as_input()])\nPipeline(ws, [s])\n",
        2,
        ["consumes its own output"],
    ),
    (
        "submit_non_scalar_param",
        "n = PipelineParameter('n', 1)\n"
        "p = Pipeline(ws, [PythonScriptStep('s.py', arguments=[n], source_directory='src')])\n"
        "Experiment(ws, 'e').submit(p, pipeline_parameters={'n': [1, 2]})\n",
        3,
        ["got list"],
    ),
    ("unsupported_submit", "Experiment(ws, 'e').submit(object())\n", 1, ["is not supported"]),
    ("name_error", "undefined_thing + 1\n", 1, ["NameError", "undefined_thing"]),
    ("import_error", "import module_that_does_not_exist\n", 1, ["ModuleNotFoundError"]),
    (
        "run_after_not_step",
        "s = PythonScriptStep('s.py', source_directory='src')\ns.run_after('x')\n",
        2,
        ["run_after() needs a step"],
    ),
]


def make(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / name
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "s.py").write_text("print('s')\n")
    path = folder / "pipeline.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return path


@pytest.mark.parametrize(("name", "body", "line", "words"), CASES, ids=[c[0] for c in CASES])
def test_case(tmp_path, name, body, line, words):
    path = make(tmp_path, name, body)
    before = sorted(p.name for p in path.parent.rglob("*"))
    proc = subprocess.run(
        [MLPIPE, "validate", "pipeline.py"], cwd=path.parent, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    problems = [ln for ln in proc.stderr.splitlines() if ln.startswith("pipeline.py:")]
    assert problems, proc.stderr
    prefix = f"pipeline.py:{H + line}: " if line else "pipeline.py: "
    assert problems[0].startswith(prefix), problems
    for word in words:
        assert word in problems[0], problems[0]
    assert proc.stdout == ""
    assert sorted(p.name for p in path.parent.rglob("*")) == before


def test_cli_level_errors(tmp_path):
    path = make(
        tmp_path, "ok", "Pipeline(ws, [PythonScriptStep('s.py', source_directory='src')])\n"
    )
    for args, words in [
        (
            ["compile", str(path), "--target", "nope", "-o", str(tmp_path / "o")],
            ["unknown target 'nope'", "airflow"],
        ),
        (["run", str(path), "--param", "novalue"], ["NAME=VALUE"]),
        (["run", str(path), "--param", "x=1"], ["x is not a parameter"]),
        (["ir", f"{path}:nosuch"], ["no pipeline named 'nosuch'"]),
        (["graph", str(path), "--format", "svg"], ["unknown --format"]),
    ]:
        proc = subprocess.run([MLPIPE, *args], capture_output=True, text=True)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        for word in words:
            assert word in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "o").exists()


def test_a_loop_of_steps_with_one_bad_path_gives_one_error(tmp_path):
    path = make(
        tmp_path,
        "loop",
        "steps = [PythonScriptStep('s.py', name=f's{i}', source_directory='nope')"
        " for i in range(500)]\nPipeline(ws, steps)\n",
    )
    proc = subprocess.run(
        [MLPIPE, "validate", "pipeline.py"], cwd=path.parent, capture_output=True, text=True
    )
    assert proc.returncode == 2
    problems = [ln for ln in proc.stderr.splitlines() if ln.startswith("pipeline.py:")]
    assert len(problems) == 1, problems[:3]
    assert problems[0].startswith(f"pipeline.py:{H + 1}: source_directory 'nope' of step 's0'")
