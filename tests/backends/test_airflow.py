"""The Airflow backend: generated DAG files, checked as text where that is all there is to check,
and loaded / run by real Airflow 3.3 (`.venvs/airflow`) for everything else.

Unit tests (no Airflow): determinism, ruff, literals, names, schedules, compile-time problems.
Integration tests (`-m integration`): Airflow's DagBag imports every compiled fixture and sample in
both profiles (the kubernetes GPU step becomes a KubernetesPodOperator with 5.4 CPU / 94823Mi (below the VM's nominal 6 / 112Gi) /
nvidia.com/gpu 1, checked on the pod Airflow would create), `airflow pools import` accepts the
pools file, Airflow rejects a `--conf` of the wrong type, and a reused step shows as skipped while
its downstream runs. The cross-target scenarios (outputs equal to the local runner's, order,
parameter overrides, reuse decisions, hostile arguments, failures) run through
tests/targets/airflow.py from tests/integration/test_cross_target.py.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpipe.backends import airflow as af
from mlpipe.runtime.state import safe_name
from tests.targets import MLPIPE, ROOT, child_env, python_of, run_cmd

PIPELINES = ROOT / "tests" / "pipelines"
SAMPLES = ROOT / "samples"
RUFF = str(ROOT / ".venv" / "bin" / "ruff")
CONFIG = str(ROOT / "pyproject.toml")

GPU_YAML = """\
workspace: kdemo
datastores:
  workspaceblobstore: ./data
computes:
  gpu-cluster:
    vm_size: STANDARD_NC6S_V3
    max_nodes: 2
    namespace: ml-gpu
    service_account: trainer
    node_selector: {accelerator: nvidia-tesla-v100}
    tolerations:
      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    image_pull_secrets: [regcred]
  cpu-cluster: {vm_size: STANDARD_D2_V2, max_nodes: 3}
kubernetes:
  default_image: registry.example.com/mlpipe-runtime:1.0
  namespace: ml
  volumes: [{name: data, claim: mlpipe-data, datastore: workspaceblobstore}]
"""

GPU_PIPELINE = '''\
"""A GPU training pipeline, published with a weekly schedule."""
from azureml.core import Environment, Workspace
from azureml.core.compute import ComputeTarget
from azureml.core.runconfig import RunConfiguration
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
epochs = PipelineParameter(name="epochs", default_value=3)
rc = RunConfiguration()
rc.environment = Environment.from_docker_image("torch", "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime")
rc.environment_variables = {"OMP_NUM_THREADS": "6"}
rc.max_run_duration_seconds = 3600
prep = PythonScriptStep(name="prep data", script_name="step.py", source_directory="src",
                        compute_target=ComputeTarget(workspace=ws, name="cpu-cluster"))
train = PythonScriptStep(name="Train-GPU", script_name="step.py", source_directory="src",
                         compute_target=ws.compute_targets["gpu-cluster"], runconfig=rc,
                         arguments=["--epochs", epochs])
train.run_after(prep)
p = Pipeline(workspace=ws, steps=[train],
             description='Trains on a V100.\\nQuotes " \\' and {{ ds }} {% raw %} stay text.')
pub = p.publish(name="gpu-train", description="x")
Schedule.create(ws, name="weekly", pipeline_id=pub.id, experiment_name="gpu-exp",
    recurrence=ScheduleRecurrence(frequency="Week", interval=1, week_days=["Monday", "Thursday"],
        hours=[6], minutes=[30], time_zone="W. Europe Standard Time",
        start_time="2026-01-05T06:30:00"),
    pipeline_parameters={"epochs": 10})
'''

WATCH_PIPELINE = '''\
"""Runs when files under incoming/ change."""
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.core.schedule import Schedule
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
step = PythonScriptStep(name="ingest", script_name="step.py", source_directory="src")
p = Pipeline(workspace=ws, steps=[step])
pub = p.publish(name="ingest-on-change", description="x")
Schedule.create(ws, name="on-change", pipeline_id=pub.id, experiment_name="ingest",
                datastore=ws.get_default_datastore(), path_on_datastore="incoming",
                polling_interval=5)
'''

NAMES_PIPELINE = '''\
"""Awkward step names: long, quoted, unicode, keywords, and a wide fan-out."""
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
note = PipelineParameter(name="note \\"quoted\\" ✓", default_value="日本 {{ ds }}")
root = PythonScriptStep(name="prepare the very long input data set for every downstream worker now",
                        script_name="step.py", source_directory="src", arguments=[note])
others = []
for name in ["class", "json", "it's \\"x\\"", "ünïcødé ✓"] + [f"worker number {i} of many" for i in range(8)]:
    s = PythonScriptStep(name=name, script_name="step.py", source_directory="src")
    s.run_after(root)
    others.append(s)
last = PythonScriptStep(name="collect everything from all of the workers into a single report file",
                        script_name="step.py", source_directory="src")
for s in others:
    last.run_after(s)
Pipeline(workspace=ws, steps=[root, others, last], description="Names.")
'''


# ------------------------------------------------------------------------------------ helpers


def compile_in_process(pipeline: Path, out: Path, profile: str = "local") -> None:
    """What `mlpipe compile` does, without a new interpreter per pipeline (fixtures compile many)."""
    from mlpipe.backends.base import compile_pipelines
    from mlpipe.capture import capture

    result = capture(str(pipeline))
    compile_pipelines(
        af.AirflowBackend(), result.pipelines, pipeline.parent.resolve(), out, profile
    )


def compile_to(pipeline: Path, out: Path, profile: str = "local") -> subprocess.CompletedProcess:
    """The real command line (exit status, messages)."""
    return run_cmd(
        [
            MLPIPE,
            "compile",
            str(pipeline),
            "--target",
            "airflow",
            "-o",
            str(out),
            "--profile",
            profile,
        ],
        env=child_env(),
        cwd=str(pipeline.parent),
    )


def write_pipeline(folder: Path, source: str, yaml: str | None = None) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "step.py").write_text("import sys\nprint('args', sys.argv[1:])\n")
    (folder / "data").mkdir(exist_ok=True)
    if yaml is not None:
        (folder / "mlpipe.yaml").write_text(yaml)
    (folder / "pipeline.py").write_text(source)
    return folder / "pipeline.py"


def every_pipeline() -> list[Path]:
    found = [
        p / "pipeline.py" for p in sorted(PIPELINES.iterdir()) if (p / "pipeline.py").is_file()
    ]
    found += [p / "pipeline.py" for p in sorted(SAMPLES.iterdir()) if (p / "pipeline.py").is_file()]
    return found


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, Path]:
    """Every fixture and sample (plus a GPU / scheduled and a datastore-triggered pipeline),
    compiled in both profiles: {"<name>-<profile>": output folder}."""
    root = tmp_path_factory.mktemp("airflow-compiled")
    extra = root / "extra"
    gpu = write_pipeline(extra / "gpu", GPU_PIPELINE, GPU_YAML)
    watch = write_pipeline(
        extra / "watch", WATCH_PIPELINE, "datastores:\n  workspaceblobstore: ./data\n"
    )
    names = write_pipeline(extra / "names", NAMES_PIPELINE)
    outs = {}
    for pipeline in [*every_pipeline(), gpu, watch, names]:
        # the kubernetes profile needs a volume for each local-path datastore: the GPU pipeline's
        for profile in ("local", "kubernetes") if pipeline == gpu else ("local",):
            out = root / f"{pipeline.parent.name}-{profile}"
            compile_in_process(pipeline, out, profile)
            outs[out.name] = out
    return outs


def dag_file(out: Path) -> Path:
    (found,) = sorted(out.glob("*.py"))
    return found


def dag_files(outs: dict[str, Path]) -> list[Path]:
    return [f for out in outs.values() for f in sorted(out.glob("*.py"))]


# ------------------------------------------------------------------------- generated code


def test_recompiling_is_byte_identical(compiled, tmp_path):
    for name in ("seed_pipeline-local", "hostile_args-local", "gpu-kubernetes"):
        first = compiled[name]
        source = {
            "seed_pipeline": SAMPLES / "seed_pipeline",
            "hostile_args": PIPELINES / "hostile_args",
        }.get(name.rsplit("-", 1)[0], first.parent / "extra" / "gpu")
        again = tmp_path / name
        assert compile_to(source / "pipeline.py", again, name.rsplit("-", 1)[1]).returncode == 0

        def listing(folder):  # the manifest is base.py's bookkeeping, keyed by how it was called
            return sorted(
                p.relative_to(folder)
                for p in folder.rglob("*")
                if p.is_file() and p.name != "manifest.json"
            )

        files = listing(first)
        assert files == listing(again)
        for rel in files:
            assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel
        # No output-folder path leaks into the artifacts.
        for rel in files:
            if rel.suffix in (".py", ".json"):
                assert str(first) not in (first / rel).read_text(encoding="utf-8"), rel


def test_generated_dags_pass_ruff(compiled):
    files = [str(f) for f in dag_files(compiled)]
    check = subprocess.run(
        [RUFF, "check", "--config", CONFIG, *files], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [RUFF, "format", "--check", "--config", CONFIG, *files], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_dag_files_are_found_by_safe_mode_and_import_no_mlpipe_at_parse_time(compiled):
    for path in dag_files(compiled):
        text = path.read_text(encoding="utf-8")
        lowered = text.lower()
        assert "airflow" in lowered and "dag" in lowered
        tree = ast.parse(text)
        for node in tree.body:  # module level: what runs when Airflow parses the file
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("mlpipe") for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("mlpipe"), path
            if isinstance(node, ast.Try):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.ImportFrom):
                        assert not (sub.module or "").startswith("mlpipe"), path


def test_one_task_per_step_with_the_mapping_in_a_comment(compiled):
    text = dag_file(compiled["seed_pipeline-local"]).read_text()
    assert '#   "prepare.py" -> prepare_py' in text
    assert (
        'prepare_py = MlpipeStep(\n        task_id="prepare_py",\n        step="prepare.py",'
        in text
    )
    assert "prepare_py >> train_py" in text and "train_py >> compare" in text
    assert text.count("MlpipeStep(\n") == 4
    pools = json.loads(
        (compiled["seed_pipeline-local"] / "Compare_Models_Exp.pools.json").read_text()
    )
    assert pools == {
        "mlpipe_aml-compute": {
            "description": "mlpipe compute target 'aml-compute': at most 4 step(s) at once "
            "(AmlCompute max_nodes)",
            "include_deferred": False,
            "slots": 4,
        }
    }


def test_user_text_is_never_a_template_or_code(compiled):
    text = dag_file(compiled["hostile_args-local"]).read_text()
    # The hostile default is an escaped literal; the arguments are not in the DAG at all.
    assert """Param(\n            'say "cheese" & {{ params.mode }} it\\'s $(date)',""" in text
    assert "pwned" not in text
    assert "template_fields = ()" in text
    gpu = dag_file(compiled["gpu-kubernetes"]).read_text()
    assert "template_fields = ()" in gpu
    assert "{% raw %} stay text." in gpu  # the description, inside a string literal


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_python_literals_round_trip(text):
    lit = af.py_str(text)
    assert ast.literal_eval(lit) == text
    assert "\n" not in lit and "\r" not in lit


def test_literals_are_already_ruff_formatted(tmp_path):
    samples = [
        'it\'s "quoted"',
        'a "b" c',
        "x'y",
        "tab\there",
        "\x7f\u2028 ünï 日本",
        "\\",
        "",
        "{{ ds }}",
    ]
    body = "".join(f"X{i} = {af.py_str(s)}\n" for i, s in enumerate(samples))
    body += (
        "Y = "
        + af.py_literal(
            {"kind": "datapath", "path": "a/b", "n": [1, 2.5, True, None, 1e20, 5e-324]}
        )
        + "\n"
    )
    path = tmp_path / "lits.py"
    path.write_text(body, encoding="utf-8")
    fmt = subprocess.run(
        [RUFF, "format", "--check", "--diff", "--config", CONFIG, str(path)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_task_ids_are_sanitised_and_collisions_are_errors(tmp_path):
    assert af.task_id("Train Model (v2)") == "train_model_v2"
    assert af.task_id("class") == "class_step"
    assert af.task_id("json") == "json_step"
    assert af.task_id("3rd") == "s_3rd"
    assert af.task_id("Ünïcødé ✓") == "unic_de"
    assert af.task_id("日本").startswith("step_") and af.task_id("日本") != af.task_id("中国")
    long = af.task_id("x" * 300)
    assert len(long) <= af.TASK_ID_MAX and long == af.task_id("x" * 300)
    source = """\
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep
ws = Workspace.from_config()
a = PythonScriptStep(name="Train Model", script_name="step.py", source_directory="src")
b = PythonScriptStep(name="train-model", script_name="step.py", source_directory="src")
Pipeline(workspace=ws, steps=[a, b])
"""
    p = write_pipeline(tmp_path / "clash", source)
    proc = compile_to(p, tmp_path / "out")
    assert proc.returncode == 2
    assert "'train-model' and 'Train Model' both become 'train_model'" in proc.stderr
    assert "pipeline.py:6:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_scheduled_and_triggered_dags(compiled):
    gpu = dag_file(compiled["gpu-local"]).read_text()
    assert 'schedule=CronTriggerTimetable("30 6 * * MON,THU", timezone="Europe/Berlin")' in gpu
    assert 'start_date=pendulum.datetime(2026, 1, 5, 6, 30, 0, tz="Europe/Berlin")' in gpu
    # The schedule's parameter values are the defaults scheduled runs get.
    assert '"epochs": Param(\n            10,\n            type="integer",' in gpu
    assert "execution_timeout=timedelta(seconds=3600)" in gpu
    watch = dag_file(compiled["watch-local"]).read_text()
    assert 'schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC")' in watch
    assert "ShortCircuitOperator(" in watch and "datastore_changed_check >> [" in watch


def test_compile_time_problems(tmp_path):
    source = """\
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep
ws = Workspace.from_config()
r = PipelineParameter(name="regenerate_outputs", default_value=True)
a = PythonScriptStep(name="a", script_name="step.py", source_directory="src", arguments=[r])
Pipeline(workspace=ws, steps=[a])
"""
    p = write_pipeline(tmp_path / "p", source)
    proc = compile_to(p, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert "pipeline.py:5: parameter 'regenerate_outputs': 'regenerate_outputs' is a name" in (
        proc.stderr
    )


# ------------------------------------------------------------------------- real Airflow

INSPECT = r"""
import json, os, sys
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
from airflow.dag_processing.dagbag import DagBag
from kubernetes.client import ApiClient

report = {"import_errors": {}, "dags": {}}
for folder in sys.argv[1:]:
    bag = DagBag(dag_folder=folder, safe_mode=True)
    report["import_errors"].update({f: str(e) for f, e in bag.import_errors.items()})
    for dag_id, dag in bag.dags.items():
        tasks = {}
        for t in dag.tasks:
            info = {
                "type": type(t).__name__,
                "bases": [c.__name__ for c in type(t).__mro__],
                "step": getattr(t, "step", None),
                "pool": t.pool,
                "trigger_rule": getattr(t.trigger_rule, "value", t.trigger_rule),
                "upstream": sorted(t.upstream_task_ids),
                "template_fields": list(t.template_fields),
            }
            if hasattr(t, "pod_template_dict"):
                info.update(image=t.image, namespace=t.namespace, template=t.pod_template_dict)
            tasks[t.task_id] = info
        report["dags"][folder + "::" + dag_id] = {
            "tasks": tasks,
            "params": {k: dag.params.get_param(k).schema for k in dag.params},
            "defaults": {k: dag.params[k] for k in dag.params},
            "timetable": type(dag.timetable).__name__,
        }
# Parsing must not have imported mlpipe (the DAG files import it only inside tasks).
report["mlpipe_imported_at_parse"] = any(m.split(".")[0] == "mlpipe" for m in sys.modules)

# The kubernetes pod Airflow would create for the GPU step (arguments as set at run time).
gpu_folder = [f for f in sys.argv[1:] if f.endswith("gpu-kubernetes")][0]
bag = DagBag(dag_folder=gpu_folder)
(dag,) = bag.dags.values()
task = dag.get_task("train_gpu")
report["gpu_dag_id"] = dag.dag_id
context = {"params": {"epochs": 10, "regenerate_outputs": False}, "run_id": "manual__x", "dag": dag}
task.arguments = task.pod_arguments(context, "/data/.mlpipe/bundles/h.json", "/data/.mlpipe/snapshots")
pod = task.build_pod_request_obj(dry_run=True)
report["gpu_pod"] = ApiClient().sanitize_for_serialization(pod)

# The datastore-change trigger's check (it imports the mlpipe runtime when it runs).
watch_folder = [f for f in sys.argv[1:] if f.endswith("watch-local")][0]
bag = DagBag(dag_folder=watch_folder)
(dag,) = bag.dags.values()
check = dag.get_task("datastore_changed").python_callable

class Run:
    def __init__(self, run_type):
        self.run_type = run_type

def poll(run_type="scheduled"):
    return check(run_id="r", dag_run=Run(run_type))

incoming = os.path.join(os.path.dirname(watch_folder), "extra", "watch", "data", "incoming")
seen = [poll()]  # first poll: records the state, runs nothing
seen.append(poll())  # unchanged
os.makedirs(incoming, exist_ok=True)
with open(os.path.join(incoming, "new.csv"), "w") as fh:
    fh.write("a,b\n1,2\n")
seen.append(poll())  # changed
seen.append(poll())  # unchanged again
seen.append(poll("manual"))  # a manual run always runs
report["watch_polls"] = seen
print("REPORT " + json.dumps(report))
"""


@pytest.mark.integration
def test_airflow_imports_every_dag(compiled):
    from tests.targets.airflow import DRIVER

    folders = [str(p) for p in compiled.values()]
    env = DRIVER.env(Path(folders[0]))
    proc = run_cmd([python_of("airflow"), "-c", INSPECT, *folders], env=env, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith("REPORT ")]
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-5000:]
    report = json.loads(line[0][len("REPORT ") :])
    assert report["import_errors"] == {}
    assert not report["mlpipe_imported_at_parse"]
    # One DAG per compiled pipeline, one task per step.
    assert len(report["dags"]) == len(folders)

    def dag_of(name):
        (found,) = [
            v for k, v in report["dags"].items() if k.startswith(str(compiled[name]) + "::")
        ]
        return found

    seed = dag_of("seed_pipeline-local")
    assert set(seed["tasks"]) == {"prepare_py", "train_py", "compare", "iris_train"}
    assert seed["tasks"]["compare"]["upstream"] == ["train_py"]
    assert seed["tasks"]["compare"]["step"] == "compare"
    assert seed["tasks"]["prepare_py"]["pool"] == "mlpipe_aml-compute"
    assert seed["tasks"]["prepare_py"]["trigger_rule"] == "none_failed"
    assert seed["tasks"]["prepare_py"]["template_fields"] == []
    assert seed["params"]["epochs"]["type"] == "integer"
    assert seed["params"]["learning_rate"]["type"] == "number"
    assert seed["params"]["regenerate_outputs"]["type"] == "boolean"
    assert seed["defaults"] == {"epochs": 40, "learning_rate": 0.5, "regenerate_outputs": False}
    fan = dag_of("fanout_fanin-local")
    assert {k: v["type"] for k, v in fan["params"].items()} == {
        "epochs": "integer",
        "lr": "number",
        "mode": "string",
        "shuffle": "boolean",
        "regenerate_outputs": "boolean",
    }
    assert fan["tasks"]["merge"]["upstream"] == ["work_0", "work_1", "work_2", "work_3"]

    # Kubernetes profile: a KubernetesPodOperator per step, resources from the vm size.
    gpu = dag_of("gpu-kubernetes")
    train = gpu["tasks"]["train_gpu"]
    assert "KubernetesPodOperator" in train["bases"]
    assert train["image"] == "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
    assert train["namespace"] == "ml-gpu"
    assert train["template"]["spec"]["serviceAccountName"] == "trainer"
    assert gpu["tasks"]["prep_data"]["image"] == "registry.example.com/mlpipe-runtime:1.0"
    assert gpu["tasks"]["prep_data"]["namespace"] == "ml"
    assert gpu["timetable"] == "CronTriggerTimetable"
    pod = report["gpu_pod"]
    container = pod["spec"]["containers"][0]
    assert container["resources"] == {
        "limits": {"memory": "94823Mi", "nvidia.com/gpu": "1"},
        "requests": {"cpu": "5400m", "memory": "94823Mi"},
    }
    assert container["command"] == ["python", "-m", "mlpipe.runtime"]
    args = dict((a.split("=", 1) + [""])[:2] for a in container["args"][1:])
    assert container["args"][0] == "run-step"
    assert "--pin-version" in args  # one pipeline version per run
    assert args["--ir"] == "/data/.mlpipe/bundles/h.json" and args["--step"] == "Train-GPU"
    assert json.loads(args["--params-json"]) == {"epochs": 10}
    # Airflow's run id is unique per DAG only: mlpipe's adds the DAG's id (records of two DAGs
    # scheduled for the same time never share a folder), Airflow's part first
    assert args["--run-id"] == "manual__x@" + report["gpu_dag_id"]
    assert args["--snapshots"] == "/data/.mlpipe/snapshots"
    assert args["--result-file"] == "/airflow/xcom/return.json"
    assert pod["spec"]["nodeSelector"] == {"accelerator": "nvidia-tesla-v100"}
    assert pod["spec"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["serviceAccountName"] == "trainer"
    assert {"name": "OMP_NUM_THREADS", "value": "6"} in container["env"]
    assert report["watch_polls"] == [False, False, True, False, True]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(compiled["gpu-kubernetes"].parent / "extra" / "gpu" / "data") in mounts


@pytest.mark.integration
def test_pools_import_and_conf_type_checks(compiled, tmp_path):
    from tests.targets.airflow import DRIVER

    out = compiled["seed_pipeline-local"]
    env = DRIVER.env(out)
    proc = run_cmd(
        [DRIVER.airflow, "pools", "import", str(out / "Compare_Models_Exp.pools.json")], env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Uploaded 1 pool(s)" in proc.stdout
    # `mlpipe verify` loads the folder with Airflow's DagBag (backend.verify_code()).
    proc = run_cmd(
        [MLPIPE, "verify", str(out), "--target", "airflow", "--python", python_of("airflow")],
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A wrong type is refused by Airflow's own Param validation, before anything runs (the real
    # `airflow dags test --conf` command line).
    code, log = DRIVER.test_dag(out, {"epochs": "five"}, cli=True)
    assert code != 0
    assert "'five' is not of type 'integer'" in log
    assert "[DAG TEST] starting task_id" not in log


@pytest.mark.integration
def test_a_reused_step_is_skipped_and_its_downstream_runs(pipeline_copy, tmp_path):
    from tests.targets.airflow import DRIVER

    p = pipeline_copy("chain_closure")
    out = tmp_path / "out"
    first = DRIVER.run(p, out)
    assert first.ok, first.log
    second = DRIVER.run(p, out)
    assert second.ok, second.log
    assert "Skipping task." in second.log and "mlpipe reused step 'a' from run" in second.log
    # Every step was reused: all four tasks skipped, the DAG run still succeeded.
    assert second.log.count("new_state=skipped") == 4
    assert "DagRun Finished" in second.log and "state=success" in second.log
    assert "mlpipe: step 'd' reused from run " + first.run_id in second.log


# Airflow's own DAG-file discovery over a dags folder (files it would parse), in both ignore
# syntaxes and with the "dag"/"airflow" content heuristic off: only the DAG files.
DISCOVER = r"""
import json, os, sys
from airflow.utils import file as airflow_file
found = {}
for syntax in ("glob", "regexp"):
    os.environ["AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX"] = syntax  # read on every use
    for safe in (True, False):
        paths = airflow_file.list_py_file_paths(sys.argv[1], safe_mode=safe)
        found[f"{syntax}-{safe}"] = sorted(paths)
print("FOUND " + json.dumps(found))
"""


@pytest.mark.integration
@pytest.mark.parametrize("venv", ["airflow", "airflow2"])
def test_the_shipped_runtime_is_no_dag_file_for_airflow(compiled, tmp_path, venv):
    """Every compiled folder in one dags folder, as a platform team drops them in: Airflow 3.3 and
    2.10 list exactly the DAG files, never a module of .mlpipe/runtime/."""
    dags = tmp_path / "dags"
    for name in ("seed_pipeline-local", "gpu-kubernetes"):
        shutil.copytree(compiled[name], dags / name)
    assert list(dags.glob("*/.mlpipe/runtime/*/mlpipe/runtime/step.py"))
    env = child_env(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    proc = run_cmd([python_of(venv), "-c", DISCOVER, str(dags)], env=env, timeout=300)
    line = [x for x in proc.stdout.splitlines() if x.startswith("FOUND ")]
    assert proc.returncode == 0 and line, proc.stdout[-2000:] + proc.stderr[-3000:]
    expected = sorted(str(dag_file(dags / name)) for name in sorted(os.listdir(dags)))
    for variant, paths in json.loads(line[0][len("FOUND ") :]).items():
        assert paths == expected, variant


def test_a_change_of_step_code_only_gives_a_new_dag_version_and_keeps_the_old_bundle(tmp_path):
    """The DAG file names its content-addressed bundle and shows the pipeline version in doc_md
    (which Airflow 3 serialises: a new DAG version); the previous bundle stays for runs in flight."""
    pipeline = write_pipeline(tmp_path / "p", NAMES_PIPELINE)
    out = tmp_path / "dags"
    compile_in_process(pipeline, out)
    (first,) = out.glob("*.py")
    before = first.read_text()
    (tmp_path / "p" / "src" / "step.py").write_text("print('changed')\n")
    compile_in_process(pipeline, out)
    after = first.read_text()
    assert before != after
    versions = [
        re.search(r"Pipeline version `([0-9a-f]{16})`", t).group(1) for t in (before, after)
    ]
    assert versions[0] != versions[1]
    for version in versions:
        assert len(list(out.glob(f".mlpipe/*.{version}.json"))) == 1
    # The tasks build their arguments with the shipped runtime, which pins the run's version.
    assert "from mlpipe.runtime.supervise import run_step_args" in after
    (runtime,) = (out / ".mlpipe" / "runtime").iterdir()
    assert f'"{runtime.name}",' in after and (runtime / "mlpipe" / "runtime" / "step.py").is_file()
    supervise = (runtime / "mlpipe" / "runtime" / "supervise.py").read_text()
    assert '"--pin-version"' in supervise


# The pods KubernetesPodOperator itself builds from the compiled DAG (its build_pod_request_obj),
# serialised by the kubernetes client the way it sends them to the API server.
AIRFLOW_PODS = r"""
import json, os, sys
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2.10
    from airflow.models.dagbag import DagBag
from kubernetes.client import ApiClient

bag = DagBag(dag_folder=sys.argv[1], safe_mode=True)
assert not bag.import_errors, bag.import_errors
pods = {}
for dag in bag.dags.values():
    for task in dag.tasks:
        context = {"params": {"regenerate_outputs": False}, "run_id": "manual__x", "dag": dag}
        task.arguments = task.pod_arguments(context, "/d/.mlpipe/bundles/h.json", "/d/.mlpipe/s")
        pods[task.task_id] = ApiClient().sanitize_for_serialization(
            task.build_pod_request_obj(dry_run=True)
        )
print("PODS " + json.dumps(pods))
"""


@pytest.mark.integration
def test_kubernetes_profile_pods_validate_strictly_with_the_placement_of_every_target(tmp_path):
    from tests.targets import kube

    pipeline = kube.gpu_pipeline(tmp_path / "p")
    out = tmp_path / "dags"
    proc = compile_to(pipeline, out, "kubernetes")
    assert proc.returncode == 0, proc.stderr
    proc = run_cmd(
        [python_of("airflow"), "-c", AIRFLOW_PODS, str(out)],
        env=child_env(AIRFLOW_HOME=str(tmp_path / "home")),
        timeout=300,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("PODS ")]
    assert proc.returncode == 0 and line, proc.stdout[-2000:] + proc.stderr[-3000:]
    pods = json.loads(line[0][len("PODS ") :])
    kube.validate_strict(pods, tmp_path / "manifests")
    kube.no_host_path(pods)
    for task, compute in (("train", "gpu-cluster"), ("prep", "cpu-cluster")):
        container = next(c for c in pods[task]["spec"]["containers"] if c["name"] == "base")
        kube.check_resources(container, compute)
        expected = kube.expected_placement(pipeline.parent.resolve(), compute)
        assert kube.placement(pods[task], "base") == expected, task
        assert pods[task]["metadata"]["namespace"] == "ml"


# Two versions of one kubernetes-profile DAG file in one Airflow process: a task of each stages
# what its pod would run (stage_version, which MlpipeStepPod.execute calls before creating the pod).
STAGE_VERSIONS = r"""
import importlib.util, json, os, sys
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

out = {}
for label, path, run_id in json.loads(sys.argv[1]):
    dag_module = load(path, label)
    task = next(t for t in dag_module.dag.tasks if t.step == "with env")
    staged = dag_module.stage_version(
        task.step, task.snapshot, task.image, {"dag": dag_module.dag, "run_id": run_id}
    )
    out[label] = {"staged": staged, "own": [task.image, dag_module.IR_HASH, task.snapshot],
                  "dag_id": dag_module.dag.dag_id}
print("STAGED " + json.dumps(out))
"""


@pytest.mark.integration
def test_a_kubernetes_run_keeps_the_images_and_bundle_it_started_with(tmp_path):
    """Issue 14 item 8 on the kubernetes profile: a run started by the DAG file of version 1 runs
    a later task parsed from the recompiled file (other step code, other packages: another
    image) with version 1's bundle, snapshot and image; a new run uses version 2."""
    from tests.backends.test_step_images import PIPELINE, REGISTRY

    pipeline = write_pipeline(tmp_path / "p", PIPELINE, "workspace: demo\n" + REGISTRY)
    out = tmp_path / "dags"
    compile_in_process(pipeline, out, "kubernetes")
    first = out / "pipeline.py"
    (out / "pipeline_v1.py").write_text(first.read_text())  # the file a running task parsed
    (pipeline.parent / "src" / "step.py").write_text("print('version 2')\n")
    pipeline.write_text(PIPELINE.replace("pyyaml==6.0.2", "pyyaml==6.0.3"))
    compile_in_process(pipeline, out, "kubernetes")
    state = pipeline.parent / ".mlpipe" / "datastores" / "workspaceblobstore" / ".mlpipe"

    def stage(*runs: list[str]) -> dict:
        proc = run_cmd(
            [python_of("airflow"), "-c", STAGE_VERSIONS, json.dumps(runs)],
            env=child_env(AIRFLOW_HOME=str(tmp_path / "home")),
            timeout=300,
        )
        line = [x for x in proc.stdout.splitlines() if x.startswith("STAGED ")]
        assert proc.returncode == 0 and line, proc.stdout[-2000:] + proc.stderr[-3000:]
        return json.loads(line[0][len("STAGED ") :])

    got = stage(["v1", str(out / "pipeline_v1.py"), "run-1"])
    shutil.rmtree(state / "snapshots")  # the later task stages its version's snapshot itself
    got.update(
        stage(
            ["v2", str(first), "run-1"],  # a later task of run-1, from the recompiled file
            ["v2new", str(first), "run-2"],
        )
    )
    v1_image, v1_hash, v1_snapshot = got["v1"]["own"]
    v2_image, v2_hash, v2_snapshot = got["v2"]["own"]
    assert v1_image != v2_image and v1_hash != v2_hash and v1_snapshot != v2_snapshot
    v1 = [str(state / "bundles" / f"{v1_hash}.json"), str(state / "snapshots"), v1_image]
    assert got["v1"]["staged"] == v1
    assert got["v2"]["staged"] == v1  # the run's version, not the file's
    assert (state / "snapshots" / f"{v1_snapshot}.tar.gz").is_file()
    v2 = [str(state / "bundles" / f"{v2_hash}.json"), str(state / "snapshots"), v2_image]
    assert got["v2new"]["staged"] == v2
    run_1 = safe_name("run-1@" + got["v1"]["dag_id"])  # mlpipe's id: Airflow's + the DAG's
    recorded = json.loads((state / "runs" / run_1 / "version.json").read_text())
    assert recorded["bundle"] == f"{v1_hash}.json" and recorded["images"]["with env"] == v1_image
    # and a recompile keeps version 1's snapshots beside the DAG while run-1 goes on
    assert (state / "pins" / f"ir-{v1_hash[:16]}" / f"{run_1}.json").is_file()
