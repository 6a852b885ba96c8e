"""The compiler (`mlpipe.ir`) and the step runtime (`mlpipe.runtime.irquery`, on JSON) must give the
same answers about a step: they share one implementation, checked here on every test pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe import ir
from mlpipe.capture import capture
from mlpipe.runtime.irquery import step_parameter_names

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
NAMES = sorted(p.name for p in PIPELINES.iterdir() if (p / "pipeline.py").is_file())


@pytest.mark.parametrize("name", NAMES)
def test_compiler_and_runtime_agree_on_a_steps_parameters(name):
    for pipeline in capture(str(PIPELINES / name / "pipeline.py")).pipelines:
        as_json = pipeline.model_dump(mode="json")
        for step, raw in zip(pipeline.steps, as_json["steps"], strict=True):
            assert step.parameter_names() == step_parameter_names(raw)


def test_a_commandstep_parameter_counts():
    arg = ir.ParameterArg(name="n")
    snap = ir.Snapshot(hash="h", files=0, bytes=0)
    step = ir.Step(name="s", kind="command", command=[arg], source_directory=".", snapshot=snap)
    assert step.parameter_names() == ["n"]
    assert step_parameter_names(step.model_dump(mode="json")) == ["n"]
