"""Capture of unmodified v1 scripts: steps, edges, parameters, determinism, the IR contract."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

from mlpipe.capture import capture
from mlpipe.ir import InputArg, OutputArg, ParameterArg, PipelineIR, StepOutputSource

ROOT = Path(__file__).resolve().parents[2]
MLPIPE = str(ROOT / ".venv" / "bin" / "mlpipe")
FIXTURES = ROOT / "tests" / "pipelines"


def one(path) -> PipelineIR:
    result = capture(str(path))
    assert len(result.pipelines) == 1
    return result.pipelines[0]


def data_edges(p: PipelineIR) -> set[tuple[str, str]]:
    return {
        (i.source.step, s.name)
        for s in p.steps
        for i in s.inputs
        if isinstance(i.source, StepOutputSource)
    }


def order_edges(p: PipelineIR) -> set[tuple[str, str]]:
    return {(a, s.name) for s in p.steps for a in s.run_after}


def test_seed_ir_round_trips_through_the_cli(tmp_path):
    proc = subprocess.run(
        [MLPIPE, "ir", str(ROOT / "samples/seed_pipeline/pipeline.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    pipeline = PipelineIR.model_validate_json(proc.stdout)
    assert PipelineIR.model_validate_json(pipeline.model_dump_json()) == pipeline
    assert json.loads(pipeline.model_dump_json()) == json.loads(proc.stdout)
    names = {s.name for s in pipeline.steps}
    assert len(names) == 4 and "iris_train" in names
    # print() in the user's file goes to stderr, keeping stdout pure JSON
    assert "Creating a new compute target" in proc.stderr


def test_closure_pulls_in_producers_and_run_after():
    p = one(FIXTURES / "chain_closure" / "pipeline.py")
    assert [s.name for s in p.steps] == ["a", "b", "c", "d"]
    assert data_edges(p) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert order_edges(p) == {("c", "d")}
    assert p.dependencies() == {"a": set(), "b": {"a"}, "c": {"a", "b"}, "d": {"c"}}
    assert p.topological_order() == ["a", "b", "c", "d"]
    c = p.step("c")
    modes = {i.name: i.mode for i in c.inputs}
    assert modes == {"numbers": "mount", "squares_dl": "download"}
    # PipelineData in arguments becomes the matching input/output path
    assert InputArg(name="squares_dl") in c.arguments
    assert OutputArg(name="result") in c.arguments


def test_nested_lists_have_no_order_and_step_sequence_orders():
    p = one(FIXTURES / "nested_lists" / "pipeline.py")
    assert data_edges(p) == set()
    assert order_edges(p) == {("seq_a", "seq_c"), ("seq_b", "seq_c"), ("seq_c", "seq_d")}
    assert p.dependencies()["s3"] == set()


def test_fanout_fanin_in_a_loop_with_parameters():
    p = one(FIXTURES / "fanout_fanin" / "pipeline.py")
    assert {(x.name, x.type, x.default) for x in p.parameters} == {
        ("epochs", "int", 3),
        ("lr", "float", 0.1),
        ("shuffle", "bool", False),
        ("mode", "string", "fast"),
    }
    workers = [f"work_{i}" for i in range(4)]
    assert data_edges(p) == {("split", w) for w in workers} | {(w, "merge") for w in workers}
    w0 = p.step("work_0")
    assert ParameterArg(name="epochs") in w0.arguments
    assert w0.params == {"shuffle": ParameterArg(name="shuffle"), "mode": ParameterArg(name="mode")}
    assert w0.parameter_names() == ["epochs", "lr", "mode", "shuffle"]
    merge = p.step("merge")
    assert [i.name for i in merge.inputs] == [f"part_{i}" for i in range(4)]


def test_output_file_dataset_config_forms():
    p = one(FIXTURES / "ofdc_as_input" / "pipeline.py")
    produce = p.step("produce")
    outs = {o.name: o for o in produce.outputs}
    assert outs["table"].register_as == "ofdc_table"
    assert outs["table"].destination == "dataset/{run-id}/{output-name}"
    assert outs["mounted"].destination == "ofdc/mounted/{run-id}"
    assert outs["uploaded"].mode == "upload" and outs["uploaded"].overwrite
    # unnamed as_input() gets a deterministic name: the output's own
    assert [i.name for i in p.step("read_default").inputs] == ["table"]
    tab = p.step("read_tabular").input("table_rows")
    assert tab.mode == "direct" and tab.tabular is not None
    assert data_edges(p) == {
        ("produce", n) for n in ("read_default", "read_named", "read_uploaded", "read_tabular")
    }


def test_capture_is_deterministic_from_any_working_directory(tmp_path):
    target = ROOT / "tests/pipelines/fanout_fanin/pipeline.py"
    outs = []
    for cwd in (ROOT, tmp_path, target.parent):
        proc = subprocess.run(
            [MLPIPE, "ir", os.path.relpath(target, cwd)],
            cwd=cwd,
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(len(outs) * 7 + 1)},
        )
        outs.append(proc.stdout)
    assert outs[0] == outs[1] == outs[2]


def test_schema_is_published():
    proc = subprocess.run([MLPIPE, "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(proc.stdout)
    assert schema["title"] == "PipelineIR"
    assert {"steps", "parameters", "schema_version"} <= set(schema["properties"])
    assert PipelineIR.model_json_schema() == schema


def write(tmp_path: Path, text: str, name="pipeline.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "s.py").write_text("print('x')\n")
    return path


def test_several_pipelines_each_get_a_unique_name_and_can_be_selected(tmp_path):
    path = write(
        tmp_path,
        """
        from azureml.core import Workspace, Experiment
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep
        ws = Workspace.from_config()
        s = PythonScriptStep("s.py", source_directory="src")
        first = Pipeline(ws, [s])
        second = Pipeline(ws, [PythonScriptStep("s.py", name="t", source_directory="src")])
        Experiment(ws, "exp").submit(first)
        Experiment(ws, "exp").submit(second, pipeline_parameters={})
    """,
    )
    # both were submitted to "exp", so neither takes it: the variable names tell them apart
    names = [p.name for p in capture(str(path)).pipelines]
    assert names == ["first", "second"]
    chosen = capture(f"{path}:second").pipelines
    assert [p.name for p in chosen] == ["second"]
    proc = subprocess.run([MLPIPE, "ir", str(path)], capture_output=True, text=True, check=True)
    assert [p["name"] for p in json.loads(proc.stdout)] == ["first", "second"]


def test_submission_overrides_and_publications_are_kept(tmp_path):
    path = write(
        tmp_path,
        """
        from azureml.core import Workspace, Experiment
        from azureml.pipeline.core import Pipeline, PipelineParameter
        from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence
        from azureml.pipeline.steps import PythonScriptStep
        ws = Workspace.from_config()
        n = PipelineParameter("n", 1)
        p = Pipeline(ws, [PythonScriptStep("s.py", arguments=[n], source_directory="src")],
                     description="demo")
        Experiment(ws, "e").submit(p, pipeline_parameters={"n": 2}, regenerate_outputs=True)
        pub = p.publish(name="pub", description="published")
        rec = ScheduleRecurrence(frequency="Day", interval=1, hours=[3], minutes=[30], time_zone="UTC")
        Schedule.create(ws, name="nightly", pipeline_id=pub.id, experiment_name="e", recurrence=rec)
    """,
    )
    p = one(path)
    assert p.submissions[0].pipeline_parameters == {"n": 2}
    assert p.submissions[0].regenerate_outputs is True
    assert p.publications[0].name == "pub"
    assert p.schedules[0].recurrence.hours == [3] and p.schedules[0].name == "nightly"
    assert p.description == "demo"


def test_compute_and_environment_resolution(tmp_path):
    (tmp_path / "mlpipe.yaml").write_text(
        textwrap.dedent("""
        workspace: w
        computes:
          gpu: {vm_size: standard_nc6s_v3, max_nodes: 2, node_selector: {pool: gpu}}
    """)
    )
    path = write(
        tmp_path,
        """
        from azureml.core import Workspace, Environment
        from azureml.core.compute import ComputeTarget
        from azureml.core.conda_dependencies import CondaDependencies
        from azureml.core.runconfig import RunConfiguration
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep
        ws = Workspace.from_config()
        rc = RunConfiguration()
        rc.target = ComputeTarget(workspace=ws, name="gpu")
        rc.environment.python.conda_dependencies = CondaDependencies.create(
            conda_packages=["python=3.8", "pandas=1.3"], pip_packages=["azureml-defaults", "six"])
        Pipeline(ws, [PythonScriptStep("s.py", source_directory="src", runconfig=rc)])
    """,
    )
    p = one(path)
    c = p.compute("gpu")
    assert (c.cpu, c.memory_gib, c.gpu_count, c.gpu_type, c.max_nodes) == (6, 112, 1, "V100", 2)
    assert c.kubernetes.node_selector == {"pool": "gpu"}
    env = p.environment(p.steps[0].environment)
    # conda's `pandas=1.3` is any 1.3.x; azureml-defaults brought pandas, already listed
    assert env.pip_packages == ["pandas==1.3.*", "six"]
    assert env.python_version == "3.8"


def test_unsupported_step_is_importable_and_fails_where_used(tmp_path):
    path = write(
        tmp_path,
        """
        from azureml.core import Workspace
        from azureml.pipeline.steps import ParallelRunStep, PythonScriptStep
        ws = Workspace.from_config()
        step = ParallelRunStep(name="p")
    """,
    )
    proc = subprocess.run([MLPIPE, "ir", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{path}:5: ParallelRunStep is not supported yet" in proc.stderr
    assert "Traceback" not in proc.stderr
