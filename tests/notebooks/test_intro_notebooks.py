"""The intro-to-pipelines usage patterns, as notebooks: each captures unmodified from its .ipynb.

The notebooks in intro/ follow the Azure ML v1 sample notebooks that build pipelines from
PythonScriptStep and CommandStep (see make_notebooks.py); what each must capture is checked here.
"""

from __future__ import annotations

import os
import re

import pytest

from conftest import mlpipe, warnings_of
from mlpipe.capture import capture
from mlpipe.ir import (
    DataPath,
    Dataset,
    InputArg,
    LiteralArg,
    ParameterArg,
    ParameterSource,
    PipelineIR,
    StepOutputSource,
)

INTRO = [
    "getting_started",
    "pipeline_drafts",
    "publish_rest",
    "schedule_published",
    "versioned_endpoints",
    "datapath_parameter",
    "dataset_parameter",
    "commandstep",
    "commandstep_r",
    "data_dependency",
    "web_dataset_files",
]


def run(notebooks, name):
    """Capture intro/NAME.ipynb in-process: ({pipeline name: IR}, warnings as printed)."""
    cwd = os.getcwd()
    os.chdir(notebooks / "intro")
    try:
        result = capture(f"{name}.ipynb")
    finally:
        os.chdir(cwd)
    return {p.name: p for p in result.pipelines}, [str(w) for w in result.warnings]


def edges(p: PipelineIR) -> set[tuple[str, str]]:
    data = {
        (i.source.step, s.name)
        for s in p.steps
        for i in s.inputs
        if isinstance(i.source, StepOutputSource)
    }
    return data | {(a, s.name) for s in p.steps for a in s.run_after}


def test_getting_started(notebooks):
    pipelines, warnings = run(notebooks, "getting_started")
    assert list(pipelines) == ["nb-side-by-side", "nb-one-by-one"]
    first, second = pipelines.values()
    # run_after() calls made after the first pipeline was built do not change it
    assert edges(first) == set()
    assert edges(second) == {("prepare", "score"), ("score", "report")}
    assert [s.name for s in second.steps] == ["prepare", "score", "report"]
    assert first.submissions[0].regenerate_outputs is True
    cpu = first.compute("cpu-nodes")
    assert (cpu.vm_size, cpu.min_nodes, cpu.max_nodes, cpu.cpu) == ("STANDARD_D2_V2", 0, 2, 2)
    env = first.environment(first.step("report").environment)
    assert env.conda_packages == ["numpy"] and env.docker_image is None
    # the download before the pipeline is refused; the rest of its cell is skipped
    assert any(
        w.startswith("getting_started.ipynb:cell 6:line 1: network access refused")
        and "GET https://example.org/samples/measurements.csv" in w
        and "the rest of this cell was not run" in w
        for w in warnings
    ), warnings
    assert first.uploads == []  # upload_files came after the refused download


def test_pipeline_drafts(notebooks):
    pipelines, _ = run(notebooks, "pipeline_drafts")
    assert list(pipelines) == ["draft_pipeline", "nb-drafts"]
    draft_only, updated = pipelines.values()
    assert draft_only.submissions == [] and [s.name for s in updated.steps] == ["fit_v2"]
    assert updated.submissions[0].experiment == "nb-drafts"
    assert updated.submissions[0].continue_on_step_failure is True
    assert [p.name for p in updated.publications] == ["fit-draft-v2"]
    assert updated.publications[0].description == "second version"


def test_publish_rest(notebooks):
    pipelines, warnings = run(notebooks, "publish_rest")
    (p,) = pipelines.values()
    assert p.name == "nb-readings"
    # only the last step is listed: the closure brings in its producers
    assert [s.name for s in p.steps] == ["clean.py", "featurize.py", "summarize.py"]
    assert edges(p) == {
        ("clean.py", "featurize.py"),
        ("clean.py", "summarize.py"),
        ("featurize.py", "summarize.py"),
    }
    assert [(x.name, x.type, x.default) for x in p.parameters] == [("threshold", "int", 5)]
    assert ParameterArg(name="threshold") in p.step("summarize.py").arguments
    assert p.step("summarize.py").output("summary").register_as == "reading_summary"
    raw = p.step("clean.py").input("raw_readings")
    assert raw.mode == "mount" and raw.source.dataset.paths[0].url.endswith("readings.csv")
    assert [(x.name, x.version) for x in p.publications] == [
        ("readings-service", None),
        ("readings-service-2", "1.1"),
    ]
    assert p.continue_on_step_failure is True
    refused = [w for w in warnings if "network access refused" in w]
    assert len(refused) == 1 and refused[0].startswith("publish_rest.ipynb:cell 11:line 5: ")
    assert "POST https://mlpipe.invalid/" in refused[0]
    assert (
        "publish_rest.ipynb:cell 12:line 1: ignored an error raised after the pipeline was "
        "submitted: NameError: name 'reply' is not defined"
    ) in warnings


def test_schedule_published(notebooks):
    pipelines, _ = run(notebooks, "schedule_published")
    (p,) = pipelines.values()
    # the publish name carries a timestamp: the steadier schedule experiment names the pipeline
    assert p.name == "nb-refresh"
    sched = {s.name: s for s in p.schedules}
    assert list(sched) == ["refresh-every-3h", "refresh-on-upload", "refresh-endpoint-daily"]
    every = sched["refresh-every-3h"]
    assert (every.recurrence.frequency, every.recurrence.interval, every.active) == (
        "Hour",
        3,
        True,
    )
    assert every.description == "more often"
    upload = sched["refresh-on-upload"]
    assert upload.recurrence is None and upload.active is False
    trigger = upload.datastore_trigger
    assert (trigger.datastore, trigger.path_on_datastore, trigger.polling_interval_minutes) == (
        "workspaceblobstore",
        "landing",
        10,
    )
    daily = sched["refresh-endpoint-daily"]
    assert (daily.recurrence.hours, daily.recurrence.minutes, daily.active) == ([2], [45], True)
    assert [x.endpoint for x in p.publications] == [None, "refresh-endpoint"]


def test_versioned_endpoints(notebooks):
    pipelines, warnings = run(notebooks, "versioned_endpoints")
    (p,) = pipelines.values()
    assert p.name == "nb-fit-endpoint"
    assert [s.experiment for s in p.submissions] == [
        "nb-fit-endpoint",
        "nb-fit-endpoint",
        "nb-fit-experiment",
    ]
    assert {x.endpoint for x in p.publications} == {"fit-endpoint-renamed"}
    assert any("cell 8:line 4: network access refused" in w for w in warnings), warnings


def test_datapath_parameter(notebooks):
    folder = notebooks / "intro"
    pipelines, warnings = run(notebooks, "datapath_parameter")
    (p,) = pipelines.values()
    assert p.name == "nb-datapath"
    # %%writefile wrote the step script beside the notebook before the step needed it
    assert "parser.add_argument" in (folder / "count_lines.py").read_text()
    inbox = p.parameter("inbox")
    assert inbox.type == "datapath" and inbox.default == DataPath(
        datastore="workspaceblobstore", path="inbox/week1"
    )
    step = p.step("count")
    assert step.inputs[0].source == ParameterSource(parameter="inbox")
    assert step.arguments == [
        LiteralArg(value="--label"),
        ParameterArg(name="label"),
        LiteralArg(value="--data"),
        InputArg(name="inbox"),
    ]
    first, second = p.submissions
    assert first.pipeline_parameters == {}
    assert second.pipeline_parameters == {
        "inbox": DataPath(datastore="workspaceblobstore", path="inbox/week2"),
        "label": "week2",
    }
    (watch,) = p.schedules
    assert watch.datastore_trigger.data_path_parameter == "inbox" and watch.active is False
    # the REST call after submit is refused; the cells depending on its reply only warn
    assert any(w.startswith("datapath_parameter.ipynb:cell 12:line 1: ") for w in warnings)
    assert any(w.startswith("datapath_parameter.ipynb:cell 13:line 1: ") for w in warnings)


def test_dataset_parameter(notebooks):
    pipelines, _ = run(notebooks, "dataset_parameter")
    (p,) = pipelines.values()
    assert "Run.get_context()" in (notebooks / "intro" / "describe.py").read_text()
    assert {x.name: x.type for x in p.parameters} == {"files": "dataset", "table": "dataset"}
    step = p.step("describe")
    assert {i.name: i.mode for i in step.inputs} == {"files": "mount", "table": "direct"}
    assert p.environment(step.environment).pip_packages == ["pandas"]
    override = p.submissions[1].pipeline_parameters
    assert isinstance(override["files"], Dataset) and override["files"].type == "file"
    assert override["table"].type == "tabular"
    assert override["table"].paths[0].url == "https://example.org/samples/big.csv"
    assert [s.experiment for s in p.submissions] == [
        "nb-datasets",
        "nb-datasets",
        "nb-datasets-published",
    ]


def test_commandstep(notebooks):
    pipelines, _ = run(notebooks, "commandstep")
    (p,) = pipelines.values()
    step = p.step("train-distributed")
    assert step.kind == "command" and step.script is None
    # a command item is split like a shell would split it (v1 runs the joined command)
    assert step.command == [
        LiteralArg(value=v) for v in ["python", "train.py", "--epochs", "3", "--tag", "first try"]
    ]
    assert step.node_count == 2 and step.source_directory == "command_train"
    gpu = p.compute("gpu-nodes")
    assert (gpu.gpu_count, gpu.gpu_type) == (1, "V100")
    env = p.environment(step.environment)
    assert env.curated and "torch" in env.pip_packages


def test_commandstep_r(notebooks):
    pipelines, warnings = run(notebooks, "commandstep_r")
    (p,) = pipelines.values()
    step = p.step("fit-r")
    (data,) = step.inputs
    assert step.command == [
        LiteralArg(value="Rscript"),
        LiteralArg(value="fit.R"),
        LiteralArg(value="--data"),
        InputArg(name=data.name),
        LiteralArg(value="--out"),
        LiteralArg(value="outputs"),
    ]
    assert data.source.dataset.paths[0] == DataPath(datastore="workspaceblobstore", path="trees")
    env = p.environment(step.environment)
    assert env.dockerfile.startswith("FROM rocker/r-ver")
    (upload,) = p.uploads
    assert (upload.datastore, upload.target_path, upload.files, upload.overwrite) == (
        "workspaceblobstore",
        "trees",
        ["r_model/trees.csv"],
        True,
    )
    # applied by `mlpipe run` / `mlpipe compile` (compiler/side_effects.py): nothing to warn about
    assert not any("upload_files" in w for w in warnings)


def test_data_dependency(notebooks):
    pipelines, warnings = run(notebooks, "data_dependency")
    (p,) = pipelines.values()
    assert p.name == "nb-shop"
    assert edges(p) == {("total.py", "rank.py"), ("rank.py", "join.py")}
    join = p.step("join.py")
    assert {i.name: (i.mode, i.source.kind) for i in join.inputs} == {
        "prices": ("download", "parameter"),
        "ranked": ("mount", "step_output"),
    }
    sales = p.step("total.py").input("sales")
    assert sales.source.path == DataPath(datastore="workspaceblobstore", path="shop/sales.csv")
    assert any(
        w.startswith("data_dependency.ipynb:cell 10:line 3: ") and "not downloaded" in w
        for w in warnings
    )
    assert not (notebooks / "intro" / "downloaded").exists()


def test_web_dataset_files_listed_before_the_pipeline(notebooks):
    # Listing a dataset's files reads data: capture warns at that line and goes on.
    pipelines, warnings = run(notebooks, "web_dataset_files")
    (p,) = pipelines.values()
    assert p.name == "nb-web-files"
    (iris,) = p.step("count rows").inputs
    assert iris.name == "iris" and iris.mode == "download"
    assert [x.url for x in iris.source.dataset.paths] == [
        "https://example.org/samples/iris/train.csv",
        "https://example.org/samples/iris/test.csv",
    ]
    assert any(
        w.startswith("web_dataset_files.ipynb:cell 4:line 5: ") and "to_path" in w for w in warnings
    ), warnings


@pytest.mark.parametrize("name", ["getting_started", "datapath_parameter", "commandstep_r"])
def test_notebook_capture_is_deterministic(notebooks, tmp_path, name):
    path = notebooks / "intro" / f"{name}.ipynb"
    outs = []
    for cwd in (path.parent, tmp_path):
        proc = mlpipe("ir", os.path.relpath(path, cwd), cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    # origins name the notebook cell, relative to the notebook's folder
    assert re.search(rf'"file": "{name}\.ipynb:cell \d+"', outs[0])


@pytest.mark.parametrize("name", INTRO)
def test_capture_writes_only_what_the_notebook_writes(notebooks, name):
    folder = notebooks / "intro"
    before = {p for p in folder.rglob("*") if ".mlpipe" not in p.parts}
    proc = mlpipe("validate", f"{name}.ipynb", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    after = {p for p in folder.rglob("*") if ".mlpipe" not in p.parts}
    assert {p.name for p in after - before} <= {"count_lines.py", "describe.py"}
    for line in warnings_of(proc.stderr):
        assert re.match(rf"{name}\.ipynb:cell \d+:line \d+: warning: ", line), line
