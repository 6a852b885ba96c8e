"""Bad pipeline files: `file:line: message`, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MLPIPE = str(ROOT / ".venv" / "bin" / "mlpipe")
BAD = ROOT / "tests" / "pipelines" / "bad"

# file, expected line (None: no line), words the message must contain
CASES = [
    ("syntax_error.py", 10, ["syntax error", "expected ':'"]),
    ("user_exception.py", 10, ["ValueError", "invalid literal for int()"]),
    ("cycle.py", 9, ["cycle", "a -> b -> a"]),
    ("duplicate_names.py", 10, ["duplicate step name 'train'", "duplicate_names.py:9"]),
    ("missing_script.py", 10, ["no_such_script.py", "source_directory 'src'"]),
    ("dangling_data.py", 12, ["'consumer' consumes 'orphan'", "no step produces it"]),
    ("bad_param_list.py", 9, ["'layers'", "not list"]),
    ("bad_param_dict.py", 9, ["'config'", "not dict"]),
    ("bad_param_newline.py", 9, ["'banner'", "newline"]),
    ("unknown_datastore.py", 9, ["unknown datastore 'nope'", "mlpipe.yaml under datastores:"]),
    (
        "unknown_compute.py",
        10,
        ["unknown compute 'no-such-cluster'", "mlpipe.yaml under computes:"],
    ),
    ("unknown_vm_size.py", 14, ["STANDARD_TOASTER_V9", "vm_sizes: in mlpipe.yaml"]),
    ("no_pipeline.py", None, ["builds no Pipeline"]),
    ("unsupported_parallel_run_step.py", 28, ["not supported yet"]),
    ("unsupported_hyperdrive_step.py", 20, ["HyperDriveStep is not supported yet"]),
]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("bad") / "bad"
    shutil.copytree(BAD, target)
    return target


@pytest.mark.parametrize("command", ["validate", "ir"])
@pytest.mark.parametrize(("name", "line", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_reported_at_its_line(bad_dir, command, name, line, words):
    out = bad_dir / f"out-{command}-{name}.json"
    args = [MLPIPE, command, name] + (["-o", str(out)] if command == "ir" else [])
    before = sorted(p.name for p in bad_dir.rglob("*"))
    proc = subprocess.run(args, cwd=bad_dir, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    problems = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{name}:")]
    assert problems, proc.stderr
    first = problems[0]
    prefix = f"{name}:{line}: " if line else f"{name}: "
    assert first.startswith(prefix), first
    for word in words:
        assert word in first, first
    assert proc.stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in bad_dir.rglob("*")) == before


def test_missing_file_and_folder(tmp_path):
    proc = subprocess.run([MLPIPE, "ir", str(tmp_path / "nope.py")], capture_output=True, text=True)
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([MLPIPE, "validate", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "is a folder" in proc.stderr


def test_unreadable_mlpipe_yaml_points_at_its_line(tmp_path):
    (tmp_path / "mlpipe.yaml").write_text("workspace: w\ndatastores:\n  a: [unclosed\n")
    (tmp_path / "pipeline.py").write_text(
        "from azureml.core import Workspace\nws = Workspace.from_config()\nws.get_default_datastore()\n"
    )
    proc = subprocess.run(
        [MLPIPE, "validate", "pipeline.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "mlpipe.yaml:" in proc.stderr and "not valid YAML" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_credentials_in_mlpipe_yaml_are_refused(tmp_path):
    (tmp_path / "mlpipe.yaml").write_text(
        "datastores:\n  lake: {url: 's3://bucket/x', key: 'SECRET'}\n"
    )
    (tmp_path / "pipeline.py").write_text(
        "from azureml.core import Workspace\nws = Workspace.from_config()\nws.get_default_datastore()\n"
    )
    proc = subprocess.run(
        [MLPIPE, "validate", "pipeline.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "mlpipe.yaml:2: datastore 'lake'" in proc.stderr and "credentials" in proc.stderr


def test_unknown_parameter_override_in_submit(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("")
    (tmp_path / "pipeline.py").write_text(
        "from azureml.core import Workspace, Experiment\n"
        "from azureml.pipeline.core import Pipeline, PipelineParameter\n"
        "from azureml.pipeline.steps import PythonScriptStep\n"
        "ws = Workspace.from_config()\n"
        "n = PipelineParameter('n', 1)\n"
        "p = Pipeline(ws, [PythonScriptStep('s.py', arguments=[n], source_directory='src')])\n"
        "Experiment(ws, 'e').submit(p, pipeline_parameters={'n': 'many', 'm': 2})\n"
    )
    proc = subprocess.run(
        [MLPIPE, "validate", "pipeline.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "pipeline.py:7: pipeline_parameters: parameter 'n' is an int, got 'many'" in proc.stderr
    assert (
        "pipeline.py:7: pipeline_parameters: 'm' is not a parameter of this pipeline" in proc.stderr
    )
