"""`mlpipe migrate` on files and folders: --diff, idempotence, atomic writes, reports, bad input."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from mlpipe.errors import MlpipeError
from mlpipe.migrate import run_migrate
from tests.migrate.migrate_helpers import (
    azureml_uses,
    copy_pipeline,
    mlpipe,
    python_files,
    tree_bytes,
)


@pytest.fixture
def seed(tmp_path) -> Path:
    return copy_pipeline("seed_pipeline", tmp_path / "seed").parent


def test_diff_prints_changes_and_writes_nothing(seed):
    before = tree_bytes(seed)
    mtimes = {p: p.stat().st_mtime_ns for p in python_files(seed)}
    result = mlpipe("migrate", str(seed), "--diff")
    assert result.returncode == 0, result.stderr
    assert f"--- a/{seed}/pipeline.py" in result.stdout
    assert "+from mlpipe import Run\n" in result.stdout
    assert "-from azureml.core import Run\n" in result.stdout
    assert "would migrate 2 file(s)" in result.stderr
    assert tree_bytes(seed) == before
    assert {p: p.stat().st_mtime_ns for p in python_files(seed)} == mtimes


def test_migrate_folder_then_again_changes_nothing(seed):
    first = mlpipe("migrate", str(seed))
    assert first.returncode == 0, first.stderr
    assert f"migrated {seed}/pipeline.py" in first.stderr
    assert f"migrated {seed}/iris_src/iris_train.py" in first.stderr
    for path in python_files(seed):
        assert azureml_uses(path.read_text(encoding="utf-8")) == [], path
    after = tree_bytes(seed)
    second = mlpipe("migrate", str(seed))
    assert second.returncode == 0
    assert "migrated 0 file(s)" in second.stderr
    assert tree_bytes(seed) == after
    again = mlpipe("migrate", str(seed), "--diff")
    assert again.stdout == ""


def test_migrate_a_single_file_leaves_its_neighbours(seed):
    result = mlpipe("migrate", str(seed / "pipeline.py"))
    assert result.returncode == 0, result.stderr
    assert azureml_uses((seed / "pipeline.py").read_text()) == []
    assert "from azureml.core import Run" in (seed / "iris_src" / "iris_train.py").read_text()


def test_rewrite_is_atomic_and_keeps_the_file_mode(tmp_path):
    script = tmp_path / "step.py"
    script.write_text("#!/usr/bin/env python\nfrom azureml.core import Run\n", encoding="utf-8")
    script.chmod(0o751)
    code = run_migrate(script, out=io.StringIO(), err=io.StringIO())
    assert code == 0
    assert script.read_text() == "#!/usr/bin/env python\nfrom mlpipe import Run\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o751
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step.py"]  # no temporary left


def test_constructs_without_equivalent_are_reported_and_exit_1(tmp_path):
    script = tmp_path / "pipe.py"
    script.write_text(
        "from azureml.core import Workspace\n"
        "from azureml.pipeline.steps import PythonScriptStep, ParallelRunStep\n",
        encoding="utf-8",
    )
    result = mlpipe("migrate", str(script))
    assert result.returncode == 1
    assert f"{script}:2: ParallelRunStep is not supported by mlpipe yet" in result.stderr
    assert "1 construct(s) left on azureml" in result.stderr
    assert script.read_text().splitlines() == [
        "from mlpipe import Workspace",
        "from mlpipe import PythonScriptStep; from azureml.pipeline.steps import ParallelRunStep",
    ]


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    missing = mlpipe("migrate", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'nope'}: no such file or folder" in missing.stderr
    assert "Traceback" not in missing.stderr

    good = tmp_path / "good.py"
    good.write_text("from azureml.core import Workspace\n", encoding="utf-8")
    broken = tmp_path / "sub" / "broken.py"
    broken.parent.mkdir()
    broken.write_text("from azureml.core import Run\n\ndef f(:\n    pass\n", encoding="utf-8")
    result = mlpipe("migrate", str(tmp_path))
    assert result.returncode == 2
    assert f"{broken}:3: cannot parse this file" in result.stderr
    assert "Traceback" not in result.stderr
    assert good.read_text() == "from azureml.core import Workspace\n"  # nothing written

    with pytest.raises(MlpipeError):
        run_migrate(tmp_path / "README.md")


def test_folder_walk_skips_hidden_and_virtualenv_folders(tmp_path):
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "a.py").write_text("from azureml.core import Run\n")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "venv" / "b.py").write_text("from azureml.core import Run\n")
    (tmp_path / "c.py").write_text("from azureml.core import Run\n")
    assert run_migrate(tmp_path, out=io.StringIO(), err=io.StringIO()) == 0
    assert (tmp_path / "c.py").read_text() == "from mlpipe import Run\n"
    assert (tmp_path / ".hidden" / "a.py").read_text() == "from azureml.core import Run\n"
    assert (tmp_path / "venv" / "b.py").read_text() == "from azureml.core import Run\n"


def _notebook(cells: list[list[str]]) -> dict:
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for source in cells
        ]
        + [{"cell_type": "markdown", "metadata": {}, "source": ["uses azureml.core\n"]}],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_notebook_code_cells_are_migrated_in_place(tmp_path):
    nb = _notebook(
        [
            ["%pip install pandas\n", "from azureml.core import Workspace, Run\n", "ws = 1"],
            ["import azureml.core\n", "W = azureml.core.Workspace\n"],
            ["%%bash\n", "echo azureml.core\n"],
            ["x = 1  # nothing to do\n"],
        ]
    )
    path = tmp_path / "pipe.ipynb"
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    assert run_migrate(path, diff=True, out=out, err=io.StringIO()) == 1  # the %%bash cell
    assert path.read_text(encoding="utf-8") == text
    assert '-    "from azureml.core import Workspace, Run\\n",' in out.getvalue()
    assert run_migrate(path, out=io.StringIO(), err=io.StringIO()) == 1
    migrated = json.loads(path.read_text(encoding="utf-8"))
    cells = [c["source"] for c in migrated["cells"]]
    assert cells[0] == ["%pip install pandas\n", "from mlpipe import Workspace, Run\n", "ws = 1"]
    assert cells[1] == ["import mlpipe\n", "W = mlpipe.Workspace\n"]
    assert cells[2] == ["%%bash\n", "echo azureml.core\n"]
    assert cells[4] == ["uses azureml.core\n"]  # markdown untouched
    # Same JSON layout as before: only the changed source lines differ.
    old_lines, new_lines = text.splitlines(), path.read_text(encoding="utf-8").splitlines()
    assert len(old_lines) == len(new_lines)
    assert sum(a != b for a, b in zip(old_lines, new_lines, strict=True)) == 3


def test_python_api_reports_to_plain_streams(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from azureml.core import VERSION\n")
    err = io.StringIO()
    assert run_migrate(script, out=io.StringIO(), err=err) == 1
    assert f"{script}:1: azureml.core.VERSION has no mlpipe equivalent" in err.getvalue()
    assert os.path.exists(script)
