"""Every intro notebook compiles, unmodified, with `mlpipe compile` for each target."""

from __future__ import annotations

import pytest

from conftest import mlpipe
from test_intro_notebooks import INTRO

TARGETS = ["airflow", "prefect", "kfp"]

# Gaps in a backend (not in capture), reported to the backend's owner; remove an entry once fixed.
KNOWN_GAPS = {
    ("airflow", "datapath_parameter"): "airflow backend: a submission's DataPath override "
    "(ir.DataPath in pipeline_parameters) is written as a literal without model_dump",
    ("airflow", "dataset_parameter"): "airflow backend: a submission's dataset override "
    "(ir.Dataset in pipeline_parameters) is written as a literal without model_dump",
    ("airflow", "schedule_published"): "airflow backend: one DAG takes one schedule; the "
    "notebook leaves three (one disabled)",
    ("kfp", "commandstep_r"): "kfp backend: an environment built from a Dockerfile needs an "
    "image (kubernetes: default_image in mlpipe.yaml)",
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", INTRO)
def test_notebook_compiles(notebooks, target, name, request):
    if (target, name) in KNOWN_GAPS:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_GAPS[(target, name)], strict=False))
    folder = notebooks / "intro"
    out = notebooks / "compiled" / target / name
    proc = mlpipe("compile", f"{name}.ipynb", "--target", target, "-o", out, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert any(p.is_file() for p in out.iterdir())
