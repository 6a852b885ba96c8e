"""Every intro notebook compiles, unmodified, with `mlpipe compile` for each target."""

from __future__ import annotations

import pytest

from conftest import mlpipe
from test_intro_notebooks import INTRO

TARGETS = ["airflow", "prefect", "kfp"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", INTRO)
def test_notebook_compiles(notebooks, target, name):
    folder = notebooks / "intro"
    out = notebooks / "compiled" / target / name
    proc = mlpipe("compile", f"{name}.ipynb", "--target", target, "-o", out, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert any(p.is_file() for p in out.iterdir())
