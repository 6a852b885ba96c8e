"""Capture on real projects: computes found by name, clear errors at the innermost line of the
user's project, "not supported yet", data listing and help() that warn, the capture time limit,
and `mlpipe lint` saying what it could not read."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from mlpipe.capture import capture
from mlpipe.errors import MlpipeError
from mlpipe.workspace_config import builtin_vm_sizes

ROOT = Path(__file__).resolve().parents[2]
MLPIPE = str(ROOT / ".venv" / "bin" / "mlpipe")

HEAD = """\
from azureml.core import Workspace
from azureml.core.compute import ComputeTarget
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep
ws = Workspace.from_config()
"""
STEP = 'PythonScriptStep(name="a", script_name="s.py", source_directory="src", {})\n'


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # problems then name `pipeline.py`, as the user typed it
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print('s')\n")
    (tmp_path / "mlpipe.yaml").write_text(
        "computes:\n  cpu-cluster: {vm_size: STANDARD_DS2_V2, max_nodes: 3}\n"
    )
    return tmp_path


def write(folder: Path, body: str, name="pipeline.py") -> Path:
    (folder / name).write_text(HEAD + textwrap.dedent(body))
    return Path(name)


def problems(path) -> list[str]:
    with pytest.raises(MlpipeError) as info:
        capture(str(path))
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    "how",
    [
        'compute_target="cpu-cluster"',
        'compute_target=ComputeTarget(ws, "cpu-cluster")',
        'compute_target=ws.compute_targets["cpu-cluster"]',
    ],
)
def test_declared_compute_found_by_name(folder, how):
    path = write(folder, "Pipeline(ws, [" + STEP.format(how).strip() + "])\n")
    [p] = capture(str(path)).pipelines
    [c] = p.computes
    assert (c.name, c.vm_size, c.cpu, c.memory_gib, c.max_nodes) == (
        "cpu-cluster",
        "STANDARD_DS2_V2",
        2,
        7,
        3,
    )


def test_missing_compute_target_is_a_clear_error(folder):
    path = write(folder, 'target = ws.compute_targets["gpu-cluster"]\n')
    [message] = problems(path)
    assert message.startswith("pipeline.py:6: ComputeTargetNotFound: compute target 'gpu-cluster'")
    assert "under computes:" in message and str(folder / "mlpipe.yaml") in message
    assert "declared: cpu-cluster" in message
    # v1 code that looks the name up first, or catches KeyError, still works
    path = write(
        folder,
        """
        try:
            ws.compute_targets["gpu-cluster"]
        except KeyError:
            pass
        assert "gpu-cluster" not in ws.compute_targets
        Pipeline(ws, [PythonScriptStep(name="a", script_name="s.py", source_directory="src")])
        """,
    )
    assert capture(str(path)).pipelines


def test_vm_size_catalogue_covers_the_v1_series_and_cites_its_source():
    sizes = builtin_vm_sizes()
    for name, cpu, mem, gpus in [
        ("STANDARD_DS2_V2", 2, 7, 0),
        ("STANDARD_D4S_V3", 4, 16, 0),
        ("STANDARD_D8_V4", 8, 32, 0),
        ("STANDARD_D96S_V5", 96, 384, 0),
        ("STANDARD_E16S_V3", 16, 128, 0),
        ("STANDARD_E64_V4", 64, 504, 0),
        ("STANDARD_F16S_V2", 16, 32, 0),
        ("STANDARD_NC24ADS_A100_V4", 24, 220, 1),
        ("STANDARD_NC6S_V3", 6, 112, 1),
        ("STANDARD_ND96ASR_V4", 96, 900, 8),
        ("STANDARD_NV12S_V3", 12, 112, 1),
        ("STANDARD_M128MS", 128, 3892, 0),
    ]:
        vm = sizes[name]
        assert (vm.cpu, vm.memory_gib, vm.gpus) == (cpu, mem, gpus), name
    text = (ROOT / "compiler" / "data" / "vm_sizes.yaml").read_text()
    assert "MicrosoftDocs/azure-docs" in text.split("\n\n")[0]
    assert len(yaml.safe_load(text)) > 150


def test_error_in_a_helper_module_points_at_its_line_with_the_call_chain(folder):
    (folder / "proj_helpers").mkdir()
    (folder / "proj_helpers" / "__init__.py").write_text("")
    (folder / "proj_helpers" / "compute.py").write_text(
        "def get_compute(ws, name):\n    size = int(name)\n    return size\n"
    )
    path = write(
        folder,
        """
        from proj_helpers.compute import get_compute


        def main():
            get_compute(ws, "cpu")


        main()
        """,
    )
    [message] = problems(path)
    assert message.startswith("proj_helpers/compute.py:2: your code raised ValueError")
    assert (
        "(call chain: pipeline.py:14 -> pipeline.py:11 in main() -> "
        "proj_helpers/compute.py:2 in get_compute())" in message
    )


def test_api_error_inside_main_points_inside_main(folder):
    path = write(
        folder,
        """
        def main():
            ws.compute_targets["nope"]


        if __name__ == "__main__":
            main()
        """,
    )
    [message] = problems(path)
    assert message.startswith("pipeline.py:8: ComputeTargetNotFound")
    assert "call chain: pipeline.py:12 -> pipeline.py:8 in main()" in message


def test_exit_in_an_except_names_the_error_it_hid(folder):
    path = write(
        folder,
        """
        try:
            ComputeTarget(ws, "gpu")
        except Exception as e:
            print(e)
            exit(1)
        """,
    )
    [message] = problems(path)
    assert message.startswith("pipeline.py:11: the file called sys.exit(1) while handling an error")
    assert (
        "compute target 'gpu' is not declared" in message and "(raised at pipeline.py:8)" in message
    )


def test_v1_attribute_mlpipe_lacks_is_not_supported_yet(folder):
    path = write(
        folder,
        """
        from azureml.core import Environment
        env = Environment("e")
        env.spark.precache_packages = False  # a v1 section mlpipe records and ignores
        p = Pipeline(ws, [PythonScriptStep(name="a", script_name="s.py", source_directory="src")])
        p._set_experiment_name  # what a public template touches
        assert not hasattr(p, "no_such_thing")
        env.save_to_directory("env_dir")
        """,
    )
    [message] = problems(path)
    assert message == (
        "pipeline.py:13: Environment.save_to_directory is not supported yet by mlpipe (it serves the "
        "parts of the Azure ML v1 SDK that build and run pipelines): remove this use, or do it "
        "in a step script"
    )
    path = write(folder, "Workspace.list_everything()\n")
    [message] = problems(path)
    assert message.startswith("pipeline.py:6: Workspace.list_everything is not supported yet")


def test_listing_data_and_help_warn_and_go_on(folder):
    path = write(
        folder,
        """
        from azureml.core import Dataset
        web = Dataset.File.from_files(path=["https://example.com/a.csv"])
        print(web.to_path())
        help(Dataset)
        Pipeline(ws, [PythonScriptStep(name="a", script_name="s.py", source_directory="src")])
        """,
    )
    result = capture(str(path))
    assert [s.name for s in result.pipelines[0].steps] == ["a"]
    found = {(w.line, w.message.split(":")[0]) for w in result.warnings}
    assert (
        9,
        "to_path() lists the dataset's files, which mlpipe does not read while capturing",
    ) in found
    assert (10, "help(Dataset) skipped") in found


def test_notebook_listing_a_web_dataset_before_its_pipeline(folder):
    cells = [
        HEAD,
        "from azureml.core import Dataset\n"
        "web_paths = ['https://example.com/mnist/train.gz', 'https://example.com/mnist/test.gz']\n"
        "mnist = Dataset.File.from_files(path=web_paths)\n"
        "mnist = mnist.register(ws, 'mnist', create_new_version=True)\n"
        "mnist.to_path()",
        'step = PythonScriptStep(name="a", script_name="s.py", source_directory="src",\n'
        "                        inputs=[mnist.as_named_input('mnist').as_mount()])\n"
        "Pipeline(ws, [step])",
    ]
    doc = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": c,
                "outputs": [],
                "execution_count": None,
            }
            for c in cells
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / "mnist.ipynb").write_text(json.dumps(doc))
    result = capture("mnist.ipynb")
    assert [i.name for i in result.pipelines[0].steps[0].inputs] == ["mnist"]
    assert any(
        w.file == "mnist.ipynb:cell 2:line 5" and "to_path()" in w.message for w in result.warnings
    )


@pytest.mark.parametrize(
    "body, line",
    [("n = 0\nwhile True:\n    n += 1\n", "23"), ("import time\n\ntime.sleep(600)\n", "3")],
)
def test_capture_that_never_ends_stops_naming_the_line(folder, body, line):
    path = Path("pipeline.py")
    path.write_text(body)
    proc = subprocess.run(
        [MLPIPE, "validate", str(path), "--capture-timeout", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    where, _, message = proc.stderr.partition(": ")
    assert where.startswith(f"{path}:") and where[-1] in line
    assert message.startswith("capture did not finish within 5 s; it was executing this line")
    assert "Traceback" not in proc.stderr


def test_lint_says_what_it_could_not_read(tmp_path):
    (tmp_path / "pipeline.py").write_text(
        HEAD
        + textwrap.dedent("""
        import os
        from settings import cfg
        PythonScriptStep(name="a", script_name=cfg.script, source_directory=os.environ["SRC"])
        """)
    )
    proc = subprocess.run(
        [MLPIPE, "lint", "pipeline.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "pipeline.py:9: note: step 'a': script_name=cfg.script, " in proc.stderr
    assert 'source_directory=os.environ["SRC"]: known only when the file runs' in proc.stderr
    assert "mlpipe lint: no warnings in what it could read; 1 place(s) not checked" in proc.stderr

    (tmp_path / "pipeline.py").write_text("from helpers import build\nbuild()\n")
    proc = subprocess.run(
        [MLPIPE, "lint", "pipeline.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "no step is built in this file itself" in proc.stderr


def test_environment_load_from_directory(folder):
    env_dir = folder / "src" / "env"
    env_dir.mkdir()
    (env_dir / "azureml_environment.json").write_text(
        json.dumps(
            {
                "name": "train_sklearn",
                "environmentVariables": {"EXAMPLE": "1"},
                "python": {"userManagedDependencies": False, "interpreterPath": "python"},
                "docker": {"enabled": True, "baseImage": None, "baseDockerfile": None},
            }
        )
    )
    (env_dir / "conda_dependencies.yml").write_text(
        "dependencies:\n  - python=3.7.*\n  - pip:\n      - azureml-defaults\n      - sklearn\n"
    )
    path = write(
        folder,
        """
        from azureml.core import Environment
        from azureml.core.runconfig import RunConfiguration
        rc = RunConfiguration()
        rc.environment = Environment.load_from_directory("src/env")
        step = PythonScriptStep(name="a", script_name="s.py", source_directory="src", runconfig=rc)
        Pipeline(ws, [step])
        """,
    )
    [env] = capture(str(path)).pipelines[0].environments
    assert (env.name, env.python_version, env.env_vars) == (
        "train_sklearn",
        "3.7.*",
        {"EXAMPLE": "1"},
    )
    assert env.pip_packages == ["scikit-learn", "pandas"]
