"""Helpers for the notebook tests: copies of the committed notebooks, and small notebooks on the fly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MLPIPE = str(ROOT / ".venv" / "bin" / "mlpipe")

HEADER = """\
from azureml.core import Workspace, Experiment
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep
ws = Workspace.from_config()
"""


def write_notebook(path: Path, cells: list, language: str = "python") -> Path:
    """cells: strings (code) or ("md", text). Sources are stored as lists of lines."""
    out = []
    for cell in cells:
        kind, text = cell if isinstance(cell, tuple) else ("code", cell)
        lines = text.split("\n")
        source = [ln + "\n" for ln in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        entry = {"cell_type": "markdown" if kind == "md" else "code", "metadata": {}}
        entry["source"] = source
        if kind != "md":
            entry.update(execution_count=None, outputs=[])
        out.append(entry)
    doc = {
        "cells": out,
        "metadata": {"kernelspec": {"language": language, "name": language}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def mlpipe(*args, cwd=None):
    return subprocess.run([MLPIPE, *map(str, args)], cwd=cwd, capture_output=True, text=True)


def warnings_of(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ": warning: " in ln]


@pytest.fixture
def folder(tmp_path):
    """An empty pipeline folder with a step source `src/s.py`."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print('s')\n")
    return tmp_path


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """A private copy of tests/notebooks (capture writes %%writefile files next to notebooks)."""
    target = tmp_path_factory.mktemp("nb") / "notebooks"
    shutil.copytree(HERE, target, ignore=shutil.ignore_patterns("__pycache__", ".mlpipe", "*.py"))
    for py in HERE.rglob("*.py"):
        rel = py.relative_to(HERE)
        if rel.parts[0] in ("intro", "unsupported"):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(py, target / rel)
    return target
