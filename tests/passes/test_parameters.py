"""The resolve pass's parameters: one type and one set of typed values, formatted by every target.

Unit tests of passes/parameters.py, then the three backends compiled from one pipeline file: the
values each writes (Airflow Params, the Prefect flow signature and deployments, the KFP inputs and
deploy document) are the pass's, and what a target cannot carry is refused the same way.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
import yaml

from mlpipe.backends.airflow import AirflowBackend
from mlpipe.backends.base import compile_pipelines
from mlpipe.backends.kfp import KfpBackend
from mlpipe.backends.prefect import PrefectBackend
from mlpipe.capture import capture
from mlpipe.errors import MlpipeError
from mlpipe.ir import DataPath, Datastore, Origin, Parameter, PipelineIR, Schedule, Submission
from mlpipe.passes.parameters import resolve

BACKENDS = {"airflow": AirflowBackend, "prefect": PrefectBackend, "kfp": KfpBackend}


def _ir(parameters, submissions=(), schedules=()) -> PipelineIR:
    return PipelineIR(
        name="p",
        source_file="pipeline.py",
        default_datastore="ws",
        datastores=[Datastore(name="ws", url="/data")],
        parameters=list(parameters),
        submissions=list(submissions),
        schedules=list(schedules),
    )


PARAMS = [
    Parameter(name="epochs", type="int", default=3, origin=Origin(file="pipeline.py", line=5)),
    Parameter(name="lr", type="float", default=0.1),
    Parameter(name="flag", type="bool", default=False),
    Parameter(name="mode", type="string", default="fast"),
    Parameter(name="where", type="datapath", default=DataPath(datastore="ws", path="in")),
]


def test_types_and_declared_defaults_come_from_the_pipeline_parameter():
    params = resolve(_ir(PARAMS))
    assert [(p.name, p.type) for p in params.declared] == [
        ("epochs", "int"),
        ("lr", "float"),
        ("flag", "bool"),
        ("mode", "string"),
        ("where", "datapath"),
    ]
    assert params.defaults() == {
        "epochs": 3,
        "lr": 0.1,
        "flag": False,
        "mode": "fast",
        "where": {"kind": "datapath", "datastore": "ws", "path": "in"},
    }
    assert params.problems == [] and params.run_defaults() == params.defaults()


@pytest.mark.parametrize(
    ("name", "given", "typed"),
    [
        ("epochs", "5", 5),
        ("epochs", 7.0, 7),
        ("epochs", " 8 ", 8),
        ("lr", 2, 2.0),
        ("lr", "0.5", 0.5),
        ("flag", "true", True),
        ("flag", "False", False),
        ("flag", 0, False),
        ("flag", 1, True),
        ("mode", 7, "7"),
        ("mode", True, "True"),
        ("mode", "  as given  ", "  as given  "),
        ("where", "ws/other", "ws/other"),  # data values keep their form, checked
        ("where", "https://e.x/a.csv", "https://e.x/a.csv"),
        (
            "where",
            DataPath(datastore="ws", path="b"),
            {"kind": "datapath", "datastore": "ws", "path": "b"},
        ),
    ],
)
def test_overrides_are_typed_as_the_runtime_reads_them(name, given, typed):
    sub = Submission(experiment="e", pipeline_parameters={name: given})
    params = resolve(_ir(PARAMS, submissions=[sub]))
    assert params.problems == []
    value = params.submitted[name]
    assert value == typed and type(value) is type(typed)


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("epochs", "five", "parameter 'epochs' is an int, got 'five'"),
        ("epochs", 2.5, "parameter 'epochs' is an int, got 2.5"),
        ("epochs", True, "is an int, got the bool True"),
        ("lr", "fast", "parameter 'lr' is a float"),
        ("flag", "yes", "parameter 'flag' is a bool"),
        ("where", "nostore/x", "neither a URL nor <datastore>/<path>"),
        ("nope", 1, "'nope' is not a parameter of this pipeline (its parameters: epochs, flag"),
    ],
)
def test_what_v1_refuses_is_a_problem_at_the_submission(name, given, message):
    at = Origin(file="pipeline.py", line=12)
    sub = Submission(experiment="e", pipeline_parameters={name: given}, origin=at)
    params = resolve(_ir(PARAMS, submissions=[sub]))
    ((origin, text),) = params.problems
    assert origin == at and text.startswith("pipeline_parameters: ") and message in text
    assert name not in params.submitted


def test_a_run_starts_from_the_last_submission_then_its_schedule():
    subs = [
        Submission(experiment="e", pipeline_parameters={"epochs": 4, "mode": "a"}),
        Submission(experiment="e", pipeline_parameters={"epochs": "5"}),
    ]
    scheds = [
        Schedule(name="one", pipeline_parameters={"flag": "1"}),
        Schedule(name="two", pipeline_parameters={"epochs": 9, "lr": 1}),
    ]
    params = resolve(_ir(PARAMS, subs, scheds))
    assert params.submissions == [{"epochs": 4, "mode": "a"}, {"epochs": 5}]
    assert params.schedules == [{"flag": True}, {"epochs": 9, "lr": 1.0}]
    assert params.run_defaults()["epochs"] == 5 and params.run_defaults()["mode"] == "fast"
    assert params.run_defaults(0)["flag"] is True and params.run_defaults(0)["epochs"] == 5
    assert params.run_defaults(1)["epochs"] == 9 and params.run_defaults(1)["flag"] is False


# ------------------------------------------------------------------------- every target agrees

PIPELINE = textwrap.dedent("""\
    from azureml.core import Experiment, Workspace
    from azureml.pipeline.core import Pipeline, PipelineParameter
    from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence
    from azureml.pipeline.steps import PythonScriptStep

    ws = Workspace.from_config()
    epochs = PipelineParameter(name="epochs", default_value=3)
    lr = PipelineParameter(name="lr", default_value=0.1)
    flag = PipelineParameter(name="flag", default_value=False)
    mode = PipelineParameter(name="mode", default_value="fast")
    args = ["--e", epochs, "--lr", lr, "--f", flag, "--m", mode]
    step = PythonScriptStep(name="s", script_name="s.py", source_directory="src", arguments=args)
    pipeline = Pipeline(workspace=ws, steps=[step])
    Experiment(ws, "e").submit(
        pipeline, pipeline_parameters={"epochs": "5", "lr": 2, "flag": "true", "mode": 7}
    )
    published = pipeline.publish(name="p")
    Schedule.create(ws, name="nightly", pipeline_id=published.id, experiment_name="e",
        recurrence=ScheduleRecurrence(frequency="Day", interval=1, hours=[8], minutes=[30]),
        pipeline_parameters={"epochs": 7.0, "flag": 0, "lr": "0.5"})
    """)


def _write(folder: Path, source: str) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "s.py").write_text("print(1)\n")
    (folder / "mlpipe.yaml").write_text("workspace: w\ndatastores:\n  workspaceblobstore: ./data\n")
    (folder / "pipeline.py").write_text(source)
    return folder / "pipeline.py"


def _airflow_params(dag: str) -> dict:
    """{key: (default, type)} of the DAG's Params, read from the generated source."""
    out = {}
    for node in ast.walk(ast.parse(dag)):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "Param":
                kind = next(k.value for k in value.keywords if k.arg == "type")
                name = ast.literal_eval(key) if isinstance(key, ast.Constant) else ast.unparse(key)
                out[name] = (ast.literal_eval(value.args[0]), ast.literal_eval(kind))
    return out


def test_every_target_writes_the_passes_types_and_values(tmp_path):
    path = _write(tmp_path / "p", PIPELINE)
    (pipeline,) = capture(str(path)).pipelines
    params = resolve(pipeline)
    submitted = {"epochs": 5, "lr": 2.0, "flag": True, "mode": "7"}
    scheduled = {"epochs": 7, "flag": False, "lr": 0.5}
    assert params.submitted == submitted and params.schedules == [scheduled]

    outs = {}
    for name, backend in BACKENDS.items():
        outs[name] = tmp_path / name
        compile_pipelines(backend(), [pipeline], path.parent, outs[name])

    # Airflow: scheduled runs have no conf, so the DAG's defaults are the schedule's run defaults.
    dag = _airflow_params((outs["airflow"] / f"{pipeline.name}.py").read_text())
    types = AirflowBackend.param_types
    expected = params.run_defaults(0)
    assert {k: dag[k] for k in expected} == {
        p.name: (expected[p.name], types[p.type]) for p in params.declared
    }
    # Prefect: the flow signature has the declared defaults; the deployment the submission's.
    doc = yaml.safe_load((outs["prefect"] / "prefect.yaml").read_text())
    (deployment,) = doc["deployments"]
    assert deployment["parameters"] == submitted
    assert deployment["schedules"][0]["parameters"] == scheduled
    flow = ast.parse((outs["prefect"] / f"{pipeline.name}_flow.py").read_text())
    (func,) = [f for f in flow.body if isinstance(f, ast.FunctionDef) and f.name == pipeline.name]
    signature = {
        a.arg: (ast.unparse(a.annotation), ast.literal_eval(d))
        for a, d in zip(func.args.args, func.args.defaults, strict=True)
    }
    assert signature == {
        **{p.name: (PrefectBackend.param_types[p.type], p.default) for p in params.declared},
        "regenerate_outputs": ("bool", False),
    }
    # KFP: the inputs have the declared defaults; the deploy document the typed overrides.
    (spec,) = [f for f in outs["kfp"].glob("*.yaml") if not f.name.endswith(".deploy.yaml")]
    inputs = yaml.safe_load_all(spec.read_text()).__next__()["root"]["inputDefinitions"]
    for p in params.declared:
        item = inputs["parameters"][p.name]
        assert item["parameterType"] == KfpBackend.param_types[p.type]
        assert item["defaultValue"] == p.default
    deploy = yaml.safe_load(next(outs["kfp"].glob("*.deploy.yaml")).read_text())
    (run,) = deploy["create_run_from_pipeline_package"]
    assert run["arguments"] == submitted
    assert deploy["create_recurring_run"][0]["params"] == scheduled
    for values in (run["arguments"], deployment["parameters"]):
        assert [type(values[k]) for k in submitted] == [int, float, bool, str]


RESERVED = textwrap.dedent("""\
    from azureml.core import Workspace
    from azureml.pipeline.core import Pipeline, PipelineParameter
    from azureml.pipeline.steps import PythonScriptStep
    ws = Workspace.from_config()
    r = PipelineParameter(name="regenerate_outputs", default_value=True)
    a = PythonScriptStep(name="a", script_name="s.py", source_directory="src", arguments=[r])
    Pipeline(workspace=ws, steps=[a])
    """)


def test_a_reserved_parameter_name_is_refused_the_same_way_everywhere(tmp_path):
    path = _write(tmp_path / "p", RESERVED)
    (pipeline,) = capture(str(path)).pipelines
    messages = {}
    for name, backend in BACKENDS.items():
        with pytest.raises(MlpipeError) as err:
            compile_pipelines(backend(), [pipeline], path.parent, tmp_path / name)
        assert not (tmp_path / name).exists()
        (problem,) = err.value.problems
        assert (problem.file, problem.line) == ("pipeline.py", 5)
        messages[name] = problem.message.replace(name, "TARGET")
    assert messages["airflow"] == messages["prefect"]
    assert messages["kfp"].startswith(
        "parameter 'regenerate_outputs': 'regenerate_outputs' is a name TARGET keeps for "
        "mlpipe's own run-time inputs (mlpipe_run_id, regenerate_outputs)"
    )


def test_values_a_target_cannot_carry_are_refused_at_their_line():
    at = Origin(file="pipeline.py", line=9)
    sub = Submission(
        experiment="e", pipeline_parameters={"mode": "x" * 10_001, "epochs": 2**53 + 1}, origin=at
    )
    pipeline = _ir(PARAMS, submissions=[sub])
    assert AirflowBackend().check_tables(pipeline) == []
    assert PrefectBackend().check_tables(pipeline) == []
    problems = KfpBackend().check_tables(pipeline)
    assert [(p.file, p.line) for p in problems] == [("pipeline.py", 9)] * 2
    assert "10001 characters is over kfp's limit of 10000" in problems[0].message
    assert "would reach the script as 9007199254740992" in problems[1].message


def test_names_over_a_targets_limit_are_warned_with_the_name_used(tmp_path):
    long = "x" * 70
    source = PIPELINE.replace('name="s"', f'name="{long}"')
    path = _write(tmp_path / "p", source)
    (pipeline,) = capture(str(path)).pipelines
    warned = {}
    for name, backend in BACKENDS.items():
        result = compile_pipelines(backend(), [pipeline], path.parent, tmp_path / name)
        warned[name] = [str(w) for w in result.warnings if "characters" in w.message]
    assert warned["prefect"] == []
    (airflow,) = warned["airflow"]
    assert airflow.startswith(f"pipeline.py:12: step '{long}' is named 'xxx")
    assert airflow.endswith("on airflow, whose step names have at most 64 characters")
    (kfp,) = warned["kfp"]
    assert kfp.endswith("on kfp, whose step names have at most 48 characters")
