"""Prefect backend: what only Prefect shows (loaders, job templates, states, logs, typed parameters).

The cross-target scenarios (seed sample = local runner, chain, fan-out with `epochs=5`, hostile
arguments, reuse, failures) run through tests/targets/prefect.py in tests/integration. Here: the
generated files against Prefect's own loaders and worker code, and one pipeline run twice to see
Prefect's states and logs. Integration tests share one Prefect server per session (the driver's).
"""

from __future__ import annotations

import ast
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlpipe.backends.prefect import docstring, py_literal, py_str
from tests.targets import MLPIPE, ROOT, child_env, driver, python_of
from tests.targets.kube import validate_strict

RUFF = str(Path(sys.executable).parent / "ruff")


def on_prefect(fn):
    """Real Prefect, on the xdist worker of the cross-target Prefect runs (one server for all)."""
    return pytest.mark.integration(pytest.mark.xdist_group("prefect")(fn))


PYPROJECT = str(ROOT / "pyproject.toml")

K8S_CONFIG = """\
workspace: k8s-demo
computes:
  gpu-cluster:
    vm_size: STANDARD_NC6S_V3
    max_nodes: 2
    node_selector: {agentpool: gpu}
    tolerations: [{key: sku, operator: Equal, value: gpu, effect: NoSchedule}]
  cpu-cluster: {vm_size: STANDARD_D2_V2, max_nodes: 3}
kubernetes:
  default_image: registry.example.com/mlpipe-prefect:3.9.1
  namespace: ml
  volumes: [{name: data, claim: mlpipe-data, datastore: workspaceblobstore}]
"""

K8S_PIPELINE = '''\
"""A GPU training pipeline with schedules, awkward names and a description that needs escaping."""

from azureml.core import Environment, Workspace
from azureml.core.compute import ComputeTarget
from azureml.core.runconfig import RunConfiguration
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence, TimeZone
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
gpu = ComputeTarget(workspace=ws, name="gpu-cluster")
cpu = ComputeTarget(workspace=ws, name="cpu-cluster")
trainer = Environment.from_docker_image("trainer", "registry.example.com/trainer:1.0")
rc = RunConfiguration()
rc.environment = trainer
rc.max_run_duration_seconds = 3600

epochs = PipelineParameter(name="epochs", default_value=5)
lr = PipelineParameter(name="learning-rate", default_value=0.01)
tag = PipelineParameter(name="tag", default_value='it\\'s "x" {{ y }} $(id)')
prepped = OutputFileDatasetConfig(name="prepped")
prep = PythonScriptStep(
    name="prep data", script_name="prep.py", source_directory="src", compute_target=cpu,
    arguments=["--out", prepped, "--tag", tag],
)
train = PythonScriptStep(
    name="train.gpu", script_name="train.py", source_directory="src", compute_target=gpu,
    runconfig=rc,
    arguments=["--in", prepped.as_input(name="prepped"), "--epochs", epochs, "--lr", lr],
)
pipeline = Pipeline(
    workspace=ws, steps=[prep, train],
    description='Trains "the" model on a GPU.\\nSecond line: C:\\\\temp, """quotes""", ünïcødé 日本',
)
published = pipeline.publish(name="gpu-training", description="GPU training")
Schedule.create(
    ws, name="nightly", pipeline_id=published.id, experiment_name="gpu-training",
    recurrence=ScheduleRecurrence(
        frequency="Day", interval=1, hours=[2], minutes=[30], time_zone=TimeZone.WEuropeStandardTime
    ),
    pipeline_parameters={"epochs": 10},
)
Schedule.create(
    ws, name="every 4 hours", pipeline_id=published.id, experiment_name="gpu-training",
    recurrence=ScheduleRecurrence(frequency="Hour", interval=4, start_time="2026-01-01T00:15:00"),
)
Schedule.create(
    ws, name="biweekly", pipeline_id=published.id, experiment_name="gpu-training",
    recurrence=ScheduleRecurrence(
        frequency="Week", interval=2, week_days=["Monday", "Thursday"], time_of_day="06:45",
        time_zone="America/New_York",
    ),
)
'''


SMALL_PIPELINE = """\
import os

from azureml.core import Workspace
from azureml.core.compute import ComputeTarget
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
small = ComputeTarget(workspace=ws, name="small")  # max_nodes: 2
INTERVALS = os.path.abspath("intervals.log")
handoff = OutputFileDatasetConfig(name="handoff")
a = PythonScriptStep(name="a", script_name="a.py", source_directory="src", compute_target=small,
                     arguments=["--out", handoff])
fan = [
    PythonScriptStep(name=f"b{i}", script_name="b.py", source_directory="src", compute_target=small,
                     arguments=["--in", handoff.as_input(name="handoff"), INTERVALS])
    for i in range(3)
]
pipeline = Pipeline(workspace=ws, steps=fan)
"""

SMALL_A = """\
import os, sys
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "note.txt"), "w").write("from a\\n")
print("hello from step a")
print("a warns on stderr", file=sys.stderr)
"""

SMALL_B = """\
import os, sys, time
print("b read:", open(os.path.join(sys.argv[2], "note.txt")).read().strip())
start = time.time()
time.sleep(2)
with open(sys.argv[3], "a") as fh:
    fh.write(f"{start} {time.time()}\\n")
"""


def small_pipeline(tmp_path: Path) -> Path:
    base = tmp_path / "small"
    (base / "src").mkdir(parents=True)
    (base / "mlpipe.yaml").write_text(
        "workspace: tiny\ndatastores:\n  workspaceblobstore: ./data\n"
        "computes:\n  small: {vm_size: STANDARD_D2_V2, max_nodes: 2}\n"
    )
    (base / "src" / "a.py").write_text(SMALL_A)
    (base / "src" / "b.py").write_text(SMALL_B)
    (base / "pipeline.py").write_text(SMALL_PIPELINE)
    return base / "pipeline.py"


def k8s_pipeline(tmp_path: Path) -> Path:
    base = tmp_path / "k8s"
    (base / "src").mkdir(parents=True)
    (base / "mlpipe.yaml").write_text(K8S_CONFIG)
    for script in ("prep.py", "train.py"):
        (base / "src" / script).write_text("import sys\nprint(sys.argv[1:])\n")
    (base / "pipeline.py").write_text(K8S_PIPELINE)
    return base / "pipeline.py"


def compile_to(pipeline: Path, out: Path, profile: str = "local") -> Path:
    proc = subprocess.run(
        [
            MLPIPE,
            "compile",
            str(pipeline),
            "--target",
            "prefect",
            "-o",
            str(out),
            "--profile",
            profile,
        ],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def tree(path: Path) -> dict[str, bytes]:
    return {
        f.relative_to(path).as_posix(): f.read_bytes()
        for f in sorted(path.rglob("*"))
        if f.is_file()
    }


def prefect_python(code: str, cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `code` in .venvs/prefect without an API server (loaders and worker code only)."""
    env = child_env(PREFECT_HOME=str(tmp_path / "prefect-home"))
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        [python_of("prefect"), "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


# ------------------------------------------------------------------------------ no Prefect


def test_recompiling_is_byte_identical_and_output_dir_free(pipeline_copy, tmp_path):
    seed = pipeline_copy("seed_pipeline")
    k8s = k8s_pipeline(tmp_path)
    for pipeline, profile in ((seed, "local"), (k8s, "kubernetes")):
        first = tree(compile_to(pipeline, tmp_path / f"a-{profile}", profile))
        again = compile_to(pipeline, tmp_path / f"a-{profile}", profile)  # over its own output
        assert tree(again) == first
        other = tree(compile_to(pipeline, tmp_path / f"b-{profile}", profile))
        assert other == first
        for name, content in first.items():
            if not name.startswith(".mlpipe/snapshots/"):
                assert f"a-{profile}".encode() not in content, name
    assert {"compare_models_exp_flow.py", "prefect.yaml"} <= set(tree(tmp_path / "a-local"))
    assert "mlpipe-kubernetes-job-template.json" in tree(tmp_path / "a-kubernetes")


def test_generated_code_passes_ruff(pipeline_copy, tmp_path):
    out = tmp_path / "generated"
    for name in ("seed_pipeline", "fanout_fanin", "hostile_args", "chain_closure"):
        compile_to(pipeline_copy(name, dest=name), out / name)
    compile_to(k8s_pipeline(tmp_path), out / "k8s", "kubernetes")
    files = sorted(str(f) for f in out.rglob("*_flow.py"))
    assert len(files) == 5
    for cmd in (["check"], ["format", "--check", "--diff"]):
        proc = subprocess.run(
            [RUFF, *cmd, "--config", PYPROJECT, *files], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_literals_and_docstrings_are_exact_and_ruff_stable(tmp_path):
    rng = random.Random(7)
    alphabet = "aZ09 '\"\\\n\t\r{}$`%#;|&<>ü日本✓\x00\x0b\u2028\U0001f600"
    texts = [
        "",
        "'",
        '"',
        "'\"",
        'it\'s "quoted" {{ x }} $HOME; echo x',
        "line1\nline2",
        "back\\slash\\",
        '"""triple"""',
        'trailing quote"',
    ] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(300)]
    lines = [f"X{i} = {py_str(t)}" for i, t in enumerate(texts)]
    lines += [f"Y = {py_literal(v)}" for v in (1e20, 1e-05, 0.5, -3, True, 2.0, 1.5e300)]
    for i, t in enumerate(texts):
        code, read = docstring(t, 4)
        lines += ["", "", f"def f{i}():", code, "    return None"]
        if t.strip() and "\\" not in t and all(c.isprintable() or c == "\n" for c in t):
            assert read == "\n".join(x.strip() for x in t.strip().split("\n")), t
    source = "\n".join(lines) + "\n"
    module = ast.parse(source)
    values = [
        n.value.value
        for n in module.body
        if isinstance(n, ast.Assign) and n.targets[0].id.startswith("X")
    ]
    assert values == texts
    path = tmp_path / "literals.py"
    path.write_text(source, encoding="utf-8")
    proc = subprocess.run(
        [RUFF, "format", "--check", "--diff", "--config", PYPROJECT, str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def test_unrepresentable_names_are_user_errors(tmp_path):
    base = tmp_path / "clash"
    (base / "src").mkdir(parents=True)
    (base / "src" / "s.py").write_text("print(1)\n")
    (base / "pipeline.py").write_text(
        textwrap.dedent("""\
        from azureml.core import Workspace
        from azureml.pipeline.core import Pipeline, PipelineParameter
        from azureml.pipeline.steps import PythonScriptStep

        ws = Workspace.from_config()
        a = PipelineParameter(name="learning-rate", default_value=1)
        b = PipelineParameter(name="learning_rate", default_value=2)
        s = PythonScriptStep(name="s", script_name="s.py", source_directory="src", arguments=[a, b])
        pipeline = Pipeline(workspace=ws, steps=[s])
        """)
    )
    proc = subprocess.run(
        [
            MLPIPE,
            "compile",
            str(base / "pipeline.py"),
            "--target",
            "prefect",
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    assert proc.returncode == 2
    assert "pipeline.py:7: pipeline parameter 'learning_rate' and 'learning-rate'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- real Prefect


@on_prefect
def test_flow_parameters_are_typed_and_tasks_named_after_steps(pipeline_copy, tmp_path):
    out = compile_to(pipeline_copy("fanout_fanin"), tmp_path / "out")
    proc = prefect_python(
        """
        import json
        from prefect import Task
        from prefect.flows import load_flow_from_entrypoint
        from prefect.utilities.importtools import load_script_as_module

        flow = load_flow_from_entrypoint("pipeline_flow.py:pipeline")
        props = flow.parameters.model_dump()["properties"]
        module = load_script_as_module("pipeline_flow.py")
        tasks = sorted(v.name for v in vars(module).values() if isinstance(v, Task))
        print(json.dumps({
            "props": {k: [v.get("type"), v.get("default")] for k, v in props.items()},
            "coerced": flow.validate_parameters({"epochs": "5", "lr": 1, "shuffle": "true"}),
            "tasks": tasks,
            "name": flow.name,
        }))
    """,
        out,
        tmp_path,
    )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["props"] == {
        "epochs": ["integer", 3],
        "lr": ["number", 0.1],
        "shuffle": ["boolean", False],
        "mode": ["string", "fast"],
        "regenerate_outputs": ["boolean", False],
    }
    assert info["coerced"] == {
        "epochs": 5,
        "lr": 1.0,
        "shuffle": True,
        "mode": "fast",
        "regenerate_outputs": False,
    }
    assert info["tasks"] == sorted(["split", "work_0", "work_1", "work_2", "work_3", "merge"])
    assert info["name"] == "pipeline"


@on_prefect
def test_prefect_yaml_loads_with_prefects_own_loader(tmp_path):
    out = compile_to(k8s_pipeline(tmp_path), tmp_path / "out", "kubernetes")
    proc = prefect_python(
        """
        import io, json
        from pathlib import Path
        from rich.console import Console
        from prefect.cli.deploy._config import _load_deploy_configs_and_actions
        from prefect.cli.deploy._schedules import _construct_schedules
        from prefect.flows import load_flow_from_entrypoint

        buf = io.StringIO()
        console = Console(file=buf)
        configs, actions = _load_deploy_configs_and_actions(Path("prefect.yaml"), console=console)
        assert not buf.getvalue(), buf.getvalue()  # the loader prints validation problems
        result = {"pull": actions["pull"], "deployments": {}}
        for cfg in configs:
            flow = load_flow_from_entrypoint(cfg["entrypoint"])
            schedules = _construct_schedules(cfg, {}, console=console, is_interactive=lambda: False)
            result["deployments"][cfg["name"]] = {
                "flow": flow.name,
                "description": flow.description,
                "parameters": cfg.get("parameters"),
                "job_variables": cfg["work_pool"].get("job_variables"),
                "pool": cfg["work_pool"]["name"],
                "schedules": [
                    {"type": type(s["schedule"]).__name__, "active": s.get("active"),
                     "parameters": s.get("parameters"), "slug": s.get("slug"),
                     **s["schedule"].model_dump(mode="json")}
                    for s in schedules or []
                ],
            }
        print(json.dumps(result))
    """,
        out,
        tmp_path,
    )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/mlpipe"}}
    ]
    deps = info["deployments"]
    assert set(deps) == {"gpu-training", "gpu-cluster", "cpu-cluster"}
    main = deps["gpu-training"]
    assert main["flow"] == "gpu-training"
    assert main["description"] == (
        'Trains "the" model on a GPU.\nSecond line: C:\\temp, """quotes""", ünïcødé 日本'
    )
    assert main["pool"] == "mlpipe-kubernetes"
    by_slug = {s["slug"]: s for s in main["schedules"]}
    assert by_slug["nightly"]["type"] == "CronSchedule"
    assert by_slug["nightly"]["cron"] == "30 2 * * *"
    assert by_slug["nightly"]["timezone"] == "Europe/Berlin"
    assert by_slug["nightly"]["parameters"] == {"epochs": 10}
    # An hourly recurrence with a start time counts from it (v1): an rrule anchored there.
    assert by_slug["every_4_hours"]["type"] == "RRuleSchedule"
    assert by_slug["every_4_hours"]["rrule"] == (
        "DTSTART:20260101T001500\nRRULE:FREQ=HOURLY;INTERVAL=4;BYMINUTE=15;BYSECOND=0"
    )
    assert by_slug["every_4_hours"]["timezone"] == "UTC"
    # "every 2 weeks" without a start time has no anchor: every target runs it weekly, with a
    # compile warning (the resolve pass gives one meaning to all three).
    assert by_slug["biweekly"]["type"] == "CronSchedule"
    assert by_slug["biweekly"]["cron"] == "45 6 * * MON,THU"
    assert by_slug["biweekly"]["timezone"] == "America/New_York"
    assert deps["gpu-cluster"]["flow"] == deps["cpu-cluster"]["flow"] == "gpu-training-step"
    assert deps["gpu-cluster"]["job_variables"]["gpu_count"] == 1


@on_prefect
def test_kubernetes_profile_deploys_and_requests_the_compute_targets_resources(tmp_path):
    """`prefect work-pool create --base-job-template` + `prefect deploy --all` on a real server, then
    the job the Kubernetes worker would create, from prefect-kubernetes' own configuration code."""
    out = compile_to(k8s_pipeline(tmp_path), tmp_path / "out", "kubernetes")
    drv = driver("prefect")
    env = drv.env()
    prefect = str(Path(python_of("prefect")).parent / "prefect")
    for cmd in (
        [
            prefect,
            "--no-prompt",
            "work-pool",
            "create",
            "mlpipe-kubernetes",
            "--type",
            "kubernetes",
            "--base-job-template",
            "mlpipe-kubernetes-job-template.json",
            "--overwrite",
        ],
        [prefect, "--no-prompt", "deploy", "--all"],
    ):
        proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = drv.prefect(
        textwrap.dedent("""
        import asyncio, json
        from prefect.client.orchestration import get_client
        from uuid import uuid4
        from prefect.client.schemas.objects import FlowRun
        from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

        async def main():
            result = {}
            async with get_client() as client:
                pool = await client.read_work_pool("mlpipe-kubernetes")
                for name in ("gpu-training-step/gpu-cluster", "gpu-training-step/cpu-cluster",
                             "gpu-training/gpu-training"):
                    dep = await client.read_deployment_by_name(name)
                    cfg = await KubernetesWorkerJobConfiguration.from_template_and_values(
                        pool.base_job_template, dep.job_variables, client=client)
                    cfg.prepare_for_flow_run(flow_run=FlowRun(flow_id=uuid4(), name="run-1"))
                    result[name] = {"namespace": cfg.namespace, "pod": cfg.job_manifest["spec"]["template"]["spec"],
                                    "job": cfg.job_manifest, "schedules": len(dep.schedules)}
            print(json.dumps(result))

        asyncio.run(main())
    """)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = json.loads(proc.stdout.strip().splitlines()[-1])
    # the jobs prefect-kubernetes would create: valid for the Kubernetes schema
    validate_strict({k: v["job"] for k, v in jobs.items()}, tmp_path / "manifests")
    gpu = jobs["gpu-training-step/gpu-cluster"]
    container = gpu["pod"]["containers"][0]
    # below the NC6s_v3's nominal 6 vCPUs / 112 GiB (passes/placement.py)
    assert container["resources"]["requests"] == {
        "cpu": "5400m",
        "memory": "94823Mi",
        "nvidia.com/gpu": 1,
    }
    assert container["resources"]["limits"] == {"memory": "94823Mi", "nvidia.com/gpu": 1}
    assert container["image"] == "registry.example.com/mlpipe-prefect:3.9.1"
    assert gpu["namespace"] == "ml"
    assert gpu["pod"]["nodeSelector"] == {"agentpool": "gpu"}
    assert gpu["pod"]["tolerations"] == [
        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    ]
    cpu = jobs["gpu-training-step/cpu-cluster"]["pod"]
    assert cpu["containers"][0]["resources"]["requests"] == {"cpu": "1800m", "memory": "4285Mi"}
    assert "nodeSelector" not in cpu
    assert jobs["gpu-training/gpu-training"]["schedules"] == 3
    flow_code = (out / "gpu_training_flow.py").read_text()
    # The GPU step's Environment names its own image: the job runs with it.
    assert 'image="registry.example.com/trainer:1.0"' in flow_code


@on_prefect
def test_cached_states_run_logs_and_max_nodes_on_a_real_server(tmp_path):
    drv = driver("prefect")
    p = small_pipeline(tmp_path)
    first = drv.run(p, tmp_path / "out")
    assert first.ok, first.log
    second = drv.run(p, tmp_path / "out")
    assert second.ok, second.log
    print(f"prefect timings: {drv.last_timing}")
    proc = drv.prefect(
        textwrap.dedent("""
        import json, sys, time
        from uuid import UUID
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId)

        out = {}
        with get_client(sync_client=True) as client:
            for run_id in sys.argv[1:]:
                rid = UUID(run_id)
                flt = FlowRunFilter(id=FlowRunFilterId(any_=[rid]))
                deadline = time.monotonic() + 60
                while True:  # task runs are recorded from the clients' events, a moment later
                    tasks = client.read_task_runs(flow_run_filter=flt)
                    if len(tasks) == 4 and all(t.state and t.state.is_final() for t in tasks):
                        break
                    assert time.monotonic() < deadline, tasks
                    time.sleep(0.5)
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[rid])))
                out[run_id] = {"tasks": {t.name.rsplit("-", 1)[0]: [t.state.name, t.state.message]
                                         for t in tasks},
                               "logs": [l.message for l in logs]}
            limit = client.read_concurrency_limit_by_tag("mlpipe-compute:tiny:small")
            out["limit"] = limit.concurrency_limit
        print(json.dumps(out))
    """),
        first.run_id,
        second.run_id,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    ran, reused = info[first.run_id], info[second.run_id]
    assert {name: state for name, (state, _) in ran["tasks"].items()} == dict.fromkeys(
        ["a", "b0", "b1", "b2"], "Completed"
    )
    assert {name: state for name, (state, _) in reused["tasks"].items()} == dict.fromkeys(
        ["a", "b0", "b1", "b2"], "Cached"
    )
    assert all(f"reused from run {first.run_id}" in msg for _, msg in reused["tasks"].values())
    # Step stdout / stderr and the runtime's decisions are in the flow run's logs on the server.
    assert {"hello from step a", "a warns on stderr", "b read: from a"} <= set(ran["logs"])
    assert any(m.startswith("mlpipe: step 'a' ran") for m in ran["logs"])
    assert any(m.startswith("mlpipe: step 'b1' reused from run") for m in reused["logs"])
    assert "hello from step a" not in reused["logs"]
    # The flow run id is the run id the runtime records (state under the default datastore).
    runs = p.parent / "data" / ".mlpipe" / "runs"
    assert {d.name for d in runs.iterdir()} == {first.run_id, second.run_id}
    # The compute target's max_nodes (2) bounded the three parallel steps of the first run.
    assert info["limit"] == 2
    spans = [
        tuple(map(float, line.split()))
        for line in (p.parent / "intervals.log").read_text().split("\n")
        if line
    ]
    assert len(spans) == 3
    overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlap <= 2, spans


# The jobs prefect-kubernetes' worker would create for each deployment: its own configuration code
# renders the work pool's base job template with the deployment's job variables, as the worker
# does before creating the job. No API server: nothing here references blocks or variables.
PREFECT_JOBS = r"""
import asyncio, json, sys
from pathlib import Path
from uuid import uuid4
import yaml
from prefect.client.schemas.objects import FlowRun
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

out = Path(sys.argv[1])
template = json.loads((out / "mlpipe-kubernetes-job-template.json").read_text())
deployments = yaml.safe_load((out / "prefect.yaml").read_text())["deployments"]


class NoServer:
    def __getattr__(self, name):
        raise AssertionError(f"the job template asked the API server for {name}")


async def main():
    jobs = {}
    for dep in deployments:
        values = dep["work_pool"].get("job_variables") or {}
        cfg = await KubernetesWorkerJobConfiguration.from_template_and_values(
            template, values, client=NoServer()
        )
        cfg.prepare_for_flow_run(flow_run=FlowRun(flow_id=uuid4(), name="run-1"))
        jobs[dep["name"]] = cfg.job_manifest
    print("JOBS " + json.dumps(jobs))

asyncio.run(main())
"""


@on_prefect
def test_kubernetes_profile_pods_validate_strictly_with_the_placement_of_every_target(tmp_path):
    from tests.targets import kube

    pipeline = kube.gpu_pipeline(tmp_path / "p")
    out = compile_to(pipeline, tmp_path / "out", "kubernetes")
    proc = prefect_python(PREFECT_JOBS.replace("sys.argv[1]", repr(str(out))), out, tmp_path)
    line = [x for x in proc.stdout.splitlines() if x.startswith("JOBS ")]
    jobs = json.loads(line[0][len("JOBS ") :])
    assert set(jobs) == {"gpu-exp", "gpu-cluster", "cpu-cluster"}
    kube.validate_strict(jobs, tmp_path / "manifests")
    kube.no_host_path(jobs)
    for name, compute in (("gpu-cluster", "gpu-cluster"), ("cpu-cluster", "cpu-cluster")):
        job = jobs[name]
        pod = job["spec"]["template"]
        kube.check_resources(pod["spec"]["containers"][0], compute)
        expected = kube.expected_placement(pipeline.parent.resolve(), compute)
        assert kube.placement(pod) == expected, name
        assert job["metadata"]["namespace"] == "ml"
    # the flow that orchestrates the steps reaches the datastore too: the workspace placement
    flow_pod = kube.placement(jobs["gpu-exp"]["spec"]["template"])
    assert flow_pod["mounts"] == {"mlpipe-data": (str(pipeline.parent.resolve() / "data"), None)}
