"""`-m MODULE` on run / compile / validate / ir / graph, and the project root rule: a project
captured and run as `python -m` would run it, with one workspace for the whole project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe.capture import capture
from mlpipe.cli import app
from mlpipe.errors import MlpipeError
from mlpipe.workspace_config import load, project_root

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "projects" / "mlops_like"
MODULE = "ml_service.pipelines.build_pipeline"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of tests/projects/mlops_like, the current directory (its root)."""
    dest = tmp_path / "mlops_like"
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns(".mlpipe", "__pycache__"))
    monkeypatch.chdir(dest)
    for key in ("COMPUTE_NAME", "MODEL_NAME", "SOURCES_DIR"):
        monkeypatch.delenv(key, raising=False)
    return dest


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_validate_ir_graph_with_module(project):
    code, _, err = cli("validate", "-m", MODULE)
    assert code == 0, err
    assert "mlops-like-training: 3 steps, 1 parameters: ok" in err
    # the project's own print() went to stderr, as in every capture
    assert "published mlops-like-training for build local" in err

    code, out, err = cli("ir", "-m", MODULE)
    assert code == 0, err
    doc = json.loads(out)
    assert [s["name"] for s in doc["steps"]] == ["train", "evaluate", "register"]
    train = doc["steps"][0]
    # relative paths resolve against the current directory, as under `python -m`
    assert train["source_directory"] == "model_code" and train["script"] == "training/train.py"
    assert train["origin"]["file"] == "ml_service/pipelines/build_pipeline.py"
    # settings came from .env through the helper module; the compute from the helper module
    assert doc["computes"][0]["name"] == "train-cluster"
    assert doc["computes"][0]["vm_size"] == "STANDARD_DS2_V2" and doc["computes"][0]["cpu"] == 2
    store = {d["name"]: d["url"] for d in doc["datastores"]}["workspaceblobstore"]
    assert store == str(project / ".mlpipe" / "datastores" / "workspaceblobstore")

    code, out, err = cli("graph", "-m", MODULE)
    assert code == 0, err
    assert "train" in out and "register" in out


def test_compile_with_module(project, tmp_path):
    out_dir = tmp_path / "dags"
    code, _, err = cli("compile", "-m", MODULE, "-t", "airflow", "-o", out_dir)
    assert code == 0, err
    manifest = json.loads((out_dir / ".mlpipe" / "manifest.json").read_text())
    [key] = manifest["sources"]
    assert key == str(project / "ml_service" / "pipelines" / "build_pipeline.py")
    assert list(out_dir.glob("*.py"))


def test_run_with_module_imports_from_the_snapshot_root(project):
    """The steps run; train.py and register.py import `util.helper` from their snapshot root."""
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mlpipe"), "run", "-m", MODULE],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[train] trained line_model" in proc.stdout
    assert "[register] register line_model: slope 2.0" in proc.stdout
    # the environment's `python=3.7.*` pin is explained, not failed on
    assert "asks for Python 3.7.*" in proc.stdout or "building environment" not in proc.stdout
    runs = project / ".mlpipe" / "datastores" / "workspaceblobstore" / ".mlpipe" / "runs"
    assert len(list(runs.iterdir())) == 1

    # the run history of the module's pipelines: `mlpipe runs / show -m MODULE`
    code, out, err = cli("runs", "-m", MODULE, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert len(listed) == 1 and listed[0]["status"] == "succeeded", listed
    code, out, err = cli("show", listed[0]["run_id"], "-m", MODULE)
    assert code == 0, err
    assert "train" in out and "register" in out


def test_module_runs_package_init_and_sets_package(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    pkg = tmp_path / "pkg" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("import os\nos.environ['PKG_INIT'] = 'ran'\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "names.py").write_text("STEP = 'hello'\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print('s')\n")
    (pkg / "build.py").write_text(
        textwrap.dedent("""
        import os
        import sys
        from azureml.core import Workspace
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep
        from .names import STEP

        assert __package__ == "pkg.sub", __package__
        assert os.environ["PKG_INIT"] == "ran"
        assert sys.path[0] == os.getcwd()
        ws = Workspace.from_config()
        step = PythonScriptStep(name=STEP, script_name="s.py", source_directory="src")
        Pipeline(ws, [step])
        """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PKG_INIT", raising=False)
    [p] = capture(module="pkg.sub.build").pipelines
    assert [s.name for s in p.steps] == ["hello"]
    assert p.steps[0].origin.file == "pkg/sub/build.py"
    assert "pkg" not in sys.modules  # the project's modules do not outlive the capture


def test_module_not_found_says_where_to_run_from(project):
    os.chdir(project / "ml_service")
    with pytest.raises(MlpipeError) as info:
        capture(module=MODULE)
    assert "run mlpipe from the folder you run `python -m` from" in str(info.value)
    code, _, err = cli("validate")
    assert code == 2 and "give a pipeline FILE or -m MODULE" in err


def test_project_root_rule(tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    assert project_root(lone) == lone  # no marker: the pipeline's own folder, as before
    assert load(lone).datastores["workspaceblobstore"] == str(
        lone / ".mlpipe" / "datastores" / "workspaceblobstore"
    )
    proj = tmp_path / "proj"
    (proj / "pipelines" / "deep").mkdir(parents=True)
    (proj / ".env").write_text("A=1\n")
    for start in (proj, proj / "pipelines", proj / "pipelines" / "deep"):
        assert project_root(start) == proj
        assert load(start).datastores["workspaceblobstore"] == str(
            proj / ".mlpipe" / "datastores" / "workspaceblobstore"
        )
    git = tmp_path / "repo"
    (git / ".git").mkdir(parents=True)
    (git / "a" / "pyproject.toml").parent.mkdir()
    (git / "a" / "pyproject.toml").write_text("")
    assert project_root(git / "a") == git / "a"  # the nearest marker wins
    # an mlpipe.yaml (here or above) still decides everything
    (proj / "mlpipe.yaml").write_text("datastores:\n  workspaceblobstore: ./store\n")
    assert load(proj / "pipelines").datastores["workspaceblobstore"] == str(proj / "store")


def test_a_script_anywhere_in_the_project_sees_the_same_workspace(project):
    """A plain script (outside any capture) finds the workspace of the project it runs in."""
    script = (
        "from mlpipe import Workspace\n"
        "from mlpipe.api._session import current\n"
        "ws = Workspace.from_config()\n"
        "print(current().config.datastores[ws.get_default_datastore().name])\n"
    )
    seen = set()
    for where in (project, project / "ml_service" / "util", project / "model_code"):
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=where,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        seen.add(proc.stdout.strip())
    assert seen == {str(project / ".mlpipe" / "datastores" / "workspaceblobstore")}


def test_project_environment_variables_do_not_outlive_the_capture(tmp_path, monkeypatch):
    """A settings loader that fills os.environ from .env (as MLOps templates do) changes only the
    capture's own environment: the next capture in the same process reads its own .env."""
    (tmp_path / "build.py").write_text(
        textwrap.dedent("""
        import os
        from azureml.core import Workspace
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep

        os.environ.setdefault("SOURCES_DIR", "src")
        ws = Workspace.from_config()
        step = PythonScriptStep(name="s", script_name="s.py", source_directory=os.environ["SOURCES_DIR"])
        Pipeline(ws, [step])
        """)
    )
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print('s')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOURCES_DIR", raising=False)
    capture(str(tmp_path / "build.py"))
    assert "SOURCES_DIR" not in os.environ
