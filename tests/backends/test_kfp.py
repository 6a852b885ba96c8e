"""The KFP backend: pipeline YAML checked as data in `.venv`, and by the real kfp 2.17 SDK in
`.venvs/kfp` (its loader, its protobuf parsers, and what its own DSL emits for the same settings).

Unit tests (no kfp): determinism, spec shape (types, defaults, edges, cache off, run id), resources
and placement, schedules / publish, names, the YAML writer (round trip, hypothesis), executor modules
(ruff-clean, no pipeline text in code), snapshot placement, compile-time problems.
With kfp (no orchestrator): `load_component_from_file` loads every compiled fixture and sample; the
spec and platform spec parse strictly into kfp's protobuf classes; the NC6S_V3 step's resources and
the Kubernetes executor config equal what `kfp.dsl` + `kfp.kubernetes` emit for the same settings.
Integration (`kfp.local` runs): typed overrides (a KFP bool and an int for a float) give the local
runner's outputs. The cross-target scenarios run through tests/targets/kfp.py from
tests/integration/test_cross_target.py.
"""

from __future__ import annotations

import ast
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpipe.backends import kfp as K
from mlpipe.backends import kfp_spec as S
from mlpipe.backends.base import compile_pipelines
from mlpipe.backends.kfp_executor import decode
from mlpipe.capture import capture
from tests.targets import MLPIPE, ROOT, child_env, python_of, run_cmd
from tests.targets.kfp import DRIVER, pipeline_files

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
    node_selector: {accelerator: nvidia-tesla-v100}
    tolerations:
      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
      - {key: spot, operator: Equal, value: "true", effect: NoExecute, tolerationSeconds: "300"}
    image_pull_secrets: [gpu-pull]
  cpu-cluster: {vm_size: STANDARD_D2_V2, max_nodes: 3}
kubernetes:
  default_image: registry.example.com/mlpipe-runtime:1.0
  namespace: ml
  service_account: trainer
  image_pull_secrets: [regcred]
  volumes: [{name: data, claim: mlpipe-data, datastore: workspaceblobstore}]
"""

GPU_PIPELINE = '''\
"""A GPU training pipeline, published with schedules.

Its description has two lines."""
from azureml.core import Environment, Workspace
from azureml.core.compute import ComputeTarget
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import RunConfiguration
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.core.schedule import Schedule, ScheduleRecurrence, TimeZone
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
gpu = ComputeTarget(workspace=ws, name="gpu-cluster")
cpu = ComputeTarget(workspace=ws, name="cpu-cluster")

env = Environment("train-env")
env.docker.base_image = "ghcr.io/acme/train:1.0"
env.python.conda_dependencies = CondaDependencies.create(pip_packages=["numpy==2.1.0", "tqdm"])
gpu_rc = RunConfiguration()
gpu_rc.target = gpu
gpu_rc.environment = env

epochs = PipelineParameter(name="epochs", default_value=3)
rate = PipelineParameter(name="learning-rate", default_value=0.01)
model = OutputFileDatasetConfig(name="model")
report = OutputFileDatasetConfig(name="report")

train = PythonScriptStep(
    name="train.gpu",
    script_name="train.py",
    source_directory="src",
    arguments=["--epochs", epochs, "--lr", rate, "--out", model],
    runconfig=gpu_rc,
    compute_target=gpu,
)
# "train_gpu" and "train.gpu" both become the KFP task name "train-gpu".
summarize = PythonScriptStep(
    name="train_gpu",
    script_name="train.py",
    source_directory="src",
    arguments=["--in", model.as_input(name="model_in"), "--out", report],
    compute_target=cpu,
)
pipeline = Pipeline(workspace=ws, steps=[train, summarize], description=__doc__)
published = pipeline.publish(name="gpu-train", description="GPU training", version="1.0")
Schedule.create(
    ws,
    name="weekly",
    pipeline_id=published.id,
    experiment_name="gpu-exp",
    recurrence=ScheduleRecurrence(
        frequency="Week",
        interval=1,
        week_days=["Monday", "Wednesday"],
        time_of_day="09:30",
        start_time="2026-01-05T09:30:00",
        time_zone=TimeZone.WEuropeStandardTime,
    ),
    pipeline_parameters={"epochs": 7},
)
Schedule.create(
    ws,
    name="often",
    pipeline_id=published.id,
    experiment_name="gpu-exp",
    recurrence=ScheduleRecurrence(frequency="Minute", interval=15),
)
'''


def fixture_pipelines() -> list[Path]:
    found = [p / "pipeline.py" for p in sorted(PIPELINES.iterdir()) if p.name != "bad"]
    found += [p / "pipeline.py" for p in sorted(SAMPLES.iterdir()) if (p / "pipeline.py").exists()]
    return [p for p in found if p.exists()]


def copy_pipeline(src: Path, dest: Path) -> Path:
    shutil.copytree(src.parent, dest, ignore=shutil.ignore_patterns(".mlpipe", "__pycache__"))
    return dest / src.name


def compile_kfp(pipeline: Path, out: Path, profile: str | None = None):
    result = capture(str(pipeline))
    return compile_pipelines(
        K.KfpBackend(), result.pipelines, pipeline.parent.resolve(), out, profile
    )


def load_docs(out: Path) -> tuple[dict, dict | None]:
    (path,) = pipeline_files(out)
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return docs[0], (docs[1] if len(docs) > 1 else None)


def modules(doc: dict) -> dict[str, str]:
    return {
        label: ex["container"]["command"][-1]
        for label, ex in doc["deploymentSpec"]["executors"].items()
    }


def step_payload(module: str) -> dict:
    return decode(re.search(r'^STEP = "([A-Za-z0-9+/=]+)"$', module, re.M).group(1))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, Path]:
    """Every fixture and sample compiled once (from a copy): {name: output folder}."""
    base = tmp_path_factory.mktemp("kfp-compiled")
    out = {}
    for pipeline in fixture_pipelines():
        name = pipeline.parent.name
        copy = copy_pipeline(pipeline, base / "src" / name)
        compile_kfp(copy, base / "out" / name)
        out[name] = base / "out" / name
    return out


@pytest.fixture(scope="module")
def gpu(tmp_path_factory) -> Path:
    """The GPU / schedules pipeline compiled: its output folder."""
    base = tmp_path_factory.mktemp("kfp-gpu")
    (base / "p" / "src").mkdir(parents=True)
    (base / "p" / "src" / "train.py").write_text("print('train')\n")
    (base / "p" / "mlpipe.yaml").write_text(GPU_YAML)
    (base / "p" / "pipeline.py").write_text(GPU_PIPELINE)
    compile_kfp(base / "p" / "pipeline.py", base / "out", "kubernetes")
    return base / "out"


# ------------------------------------------------------------------------------- determinism


def test_recompiling_is_byte_identical_and_holds_no_output_path(compiled, tmp_path):
    for name, first in compiled.items():
        pipeline = first.parent.parent / "src" / name / "pipeline.py"
        again = tmp_path / f"again-{name}"
        compile_kfp(pipeline, again)
        for path in pipeline_files(first):
            data = path.read_bytes()
            assert data == (again / path.name).read_bytes(), name
            assert str(first).encode() not in data and str(tmp_path).encode() not in data
        # Only the YAML (+ the deploy file) and mlpipe's manifest: the YAML is self-contained.
        written = {p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()}
        assert {w for w in written if not w.endswith(".yaml")} == {".mlpipe/manifest.json"}


def test_profiles_local_without_and_kubernetes_with_the_platform_spec(tmp_path):
    """--profile local (the default): no platform spec, datastores reached as they are;
    --profile kubernetes: the platform spec, and a local-path datastore without a volume is an
    error at compile time (nothing written)."""
    pipeline = copy_pipeline(PIPELINES / "chain_closure" / "pipeline.py", tmp_path / "p")
    (tmp_path / "p" / "mlpipe.yaml").write_text("kubernetes: {labels: {team: ml}}\n")
    base = [MLPIPE, "compile", str(pipeline), "--target", "kfp"]
    for profile in (None, "local"):
        out = tmp_path / f"o-{profile}"
        args = ["-o", str(out)] + (["--profile", profile] if profile else [])
        good = run_cmd(base + args, env=child_env())
        assert good.returncode == 0, good.stderr
        assert load_docs(out)[1] is None
    bad = run_cmd(base + ["-o", str(tmp_path / "k"), "--profile", "kubernetes"], env=child_env())
    assert bad.returncode == 2, bad.stderr
    assert "pipeline.py:" in bad.stderr and "datastore 'workspaceblobstore' is the local path" in (
        bad.stderr
    )
    assert "Traceback" not in bad.stderr and not (tmp_path / "k").exists()
    other = run_cmd(base + ["-o", str(tmp_path / "x"), "--profile", "cloud"], env=child_env())
    assert other.returncode == 2 and "no profile 'cloud'" in other.stderr, other.stderr


# -------------------------------------------------------------------------------- spec shape


def test_parameters_are_typed_pipeline_inputs(compiled):
    doc, _ = load_docs(compiled["fanout_fanin"])
    root = doc["root"]["inputDefinitions"]["parameters"]
    assert root == {
        "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 3.0, "isOptional": True},
        "lr": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.1, "isOptional": True},
        "mode": {"parameterType": "STRING", "defaultValue": "fast", "isOptional": True},
        "shuffle": {"parameterType": "BOOLEAN", "defaultValue": False, "isOptional": True},
        "regenerate_outputs": {
            "parameterType": "BOOLEAN",
            "defaultValue": False,
            "isOptional": True,
        },
    }
    # A worker gets exactly the parameters it uses, typed, wired from the pipeline's inputs.
    comp = doc["components"]["comp-work-0"]["inputDefinitions"]["parameters"]
    assert {k: v["parameterType"] for k, v in comp.items()} == {
        "epochs": "NUMBER_INTEGER",
        "lr": "NUMBER_DOUBLE",
        "mode": "STRING",
        "shuffle": "BOOLEAN",
        "mlpipe_run_id": "STRING",
        "regenerate_outputs": "BOOLEAN",
    }
    task = doc["root"]["dag"]["tasks"]["work-0"]["inputs"]["parameters"]
    assert task["shuffle"] == {"componentInputParameter": "shuffle"}
    assert task["regenerate_outputs"] == {"componentInputParameter": "regenerate_outputs"}
    assert task["mlpipe_run_id"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
    module = modules(doc)["exec-work-0"]
    assert "    shuffle: bool,\n" in module and "    epochs: int,\n" in module
    assert step_payload(module)["inputs"] == {
        "epochs": "epochs",
        "lr": "lr",
        "mode": "mode",
        "shuffle": "shuffle",
    }


def test_edges_cache_off_and_the_run_summary(compiled):
    doc, platform = load_docs(compiled["chain_closure"])
    tasks = doc["root"]["dag"]["tasks"]
    deps = {name: t.get("dependentTasks", []) for name, t in tasks.items()}
    assert deps == {
        "a": [],
        "b": ["a"],
        "c": ["a", "b"],
        "d": ["c"],  # run_after only
        "mlpipe-run-summary": ["a", "b", "c", "d"],
    }
    for name, task in tasks.items():
        # KFP's cache never decides: enableCache is false (absent) on every task.
        assert task["cachingOptions"] == {}, name
        assert task["componentRef"]["name"] == f"comp-{name}"
    assert tasks["mlpipe-run-summary"]["triggerPolicy"] == {
        "strategy": "ALL_UPSTREAM_TASKS_COMPLETED"
    }
    assert tasks["d"]["taskInfo"] == {"name": "d"}
    assert doc["pipelineInfo"] == {"name": "chain-closure", "displayName": "chain_closure"}
    assert doc["schemaVersion"] == "2.1.0" and doc["sdkVersion"] == "kfp-2.17.3"
    assert platform is None  # no Kubernetes placement declared
    for label, ex in doc["deploymentSpec"]["executors"].items():
        c = ex["container"]
        assert c["args"] == [
            "--executor_input",
            "{{$}}",
            "--function_to_execute",
            "mlpipe_run_summary" if "summary" in label else label[len("exec-") :],
        ]
        assert c["command"][:2] == ["sh", "-c"] and c["command"][3:5] == ["sh", "-ec"]
        assert "kfp.dsl.executor_main" in c["command"][5]
        assert c["image"] == "python:3.11-slim"


def test_full_protobuf_spec_is_the_yaml(compiled, tmp_path):
    from google.protobuf import json_format

    pipeline = compiled["fanout_fanin"].parent.parent / "src" / "fanout_fanin" / "pipeline.py"
    (ir,) = capture(str(pipeline)).pipelines
    ctx = _ctx(ir, pipeline.parent)
    proto, platform = K.KfpBackend().pipeline_spec(ir, ctx)
    doc, _ = load_docs(compiled["fanout_fanin"])
    assert json_format.MessageToDict(proto) == doc
    assert platform is None


def _ctx(ir, pipeline_dir: Path):
    from mlpipe.backends.base import CompileContext
    from mlpipe.snapshot import pack

    snaps = {}
    for s in ir.steps:
        src = Path(s.source_directory)
        snaps[s.snapshot.hash] = pack(src if src.is_absolute() else pipeline_dir / src)[1]
    return CompileContext(
        profile="kubernetes",
        pipeline_dir=pipeline_dir,
        snapshots={},
        bundle_path="",
        ir_hash=ir.ir_hash(),
        snapshot_bytes=snaps,
    )


def test_gpu_compute_resources_and_placement(gpu):
    doc, platform = load_docs(gpu)
    tasks = doc["root"]["dag"]["tasks"]
    # Names that clash once sanitised get a short hash; the display name stays the step name.
    by_display = {t["taskInfo"]["name"]: name for name, t in tasks.items()}
    assert set(by_display) == {"train.gpu", "train_gpu", "mlpipe-run-summary"}
    train, summary = by_display["train.gpu"], by_display["train_gpu"]
    assert train != summary and train.startswith("train-gpu-") and summary.startswith("train-gpu-")
    assert tasks[summary]["dependentTasks"] == [train]

    executors = doc["deploymentSpec"]["executors"]
    res = executors[f"exec-{train}"]["container"]["resources"]
    # Requests leave the node headroom (passes/placement.py); memory limit = request, no CPU limit.
    assert "resourceCpuLimit" not in res and "cpuLimit" not in res
    assert res["resourceMemoryLimit"] == "94823Mi"
    assert res["memoryLimit"] == pytest.approx(94823 * 2**20 / 1e9)
    assert res["resourceCpuRequest"] == "5400m" and res["resourceMemoryRequest"] == "94823Mi"
    assert res["accelerator"] == {
        "resourceType": "nvidia.com/gpu",
        "resourceCount": "1",
        "type": "nvidia.com/gpu",
        "count": "1",
    }
    cpu_res = executors[f"exec-{summary}"]["container"]["resources"]
    assert cpu_res["resourceCpuRequest"] == "1800m" and cpu_res["resourceMemoryLimit"] == "4285Mi"
    assert "accelerator" not in cpu_res
    # The user's own image wins; a step without an environment gets the workspace default.
    assert executors[f"exec-{train}"]["container"]["image"] == "ghcr.io/acme/train:1.0"
    assert (
        executors[f"exec-{summary}"]["container"]["image"]
        == "registry.example.com/mlpipe-runtime:1.0"
    )
    # The environment's pip packages are installed in a KFP pod only, like packages_to_install.
    prefix = executors[f"exec-{train}"]["container"]["command"][2]
    assert " numpy==2.1.0 tqdm\n" in prefix and prefix.startswith(
        'set -e\nif [ -n "${KFP_POD_NAME:-}" ]'
    )

    kube = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    data_mount = {  # the local-path datastore: its PVC mounted at its path
        "constant": "mlpipe-data",
        "pvcNameParameter": {"runtimeValue": {"constant": "mlpipe-data"}},
        "mountPath": str((gpu.parent / "p" / "data").resolve()),
    }
    assert kube[f"exec-{train}"] == {
        "nodeSelector": {"labels": {"accelerator": "nvidia-tesla-v100"}},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {
                "key": "spot",
                "operator": "Equal",
                "value": "true",
                "effect": "NoExecute",
                "tolerationSeconds": "300",
            },
        ],
        "imagePullSecret": [
            {"secretName": n, "secretNameParameter": {"runtimeValue": {"constant": n}}}
            for n in ("regcred", "gpu-pull")
        ],
        "pvcMount": [data_mount],
    }
    assert kube[f"exec-{summary}"] == {
        "imagePullSecret": [
            {
                "secretName": "regcred",
                "secretNameParameter": {"runtimeValue": {"constant": "regcred"}},
            }
        ],
        "pvcMount": [data_mount],
    }
    # the run summary writes the run record to the datastore: the workspace placement too
    assert kube[f"exec-{K.SUMMARY_TASK}"] == kube[f"exec-{summary}"]
    # Parameter names that are not identifiers become identifiers; the IR name travels along.
    root = doc["root"]["inputDefinitions"]["parameters"]
    assert root["learning_rate"]["parameterType"] == "NUMBER_DOUBLE"
    assert step_payload(modules(doc)[f"exec-{train}"])["inputs"]["learning_rate"] == "learning-rate"
    header = pipeline_files(gpu)[0].read_text().split("components:")[0]
    assert "# Description: A GPU training pipeline, published with schedules.\n#" in header


def test_schedules_and_publish_become_kfp_client_arguments(gpu):
    (package,) = pipeline_files(gpu)
    deploy = yaml.safe_load(package.with_suffix(".deploy.yaml").read_text())
    assert deploy["pipeline_package_path"] == package.name
    assert deploy["namespace"] == "ml"
    assert deploy["upload_pipeline"] == [
        {
            "pipeline_name": "gpu-train",
            "description": "GPU training",
            "pipeline_version_name": "1.0",
        }
    ]
    weekly, often = deploy["create_recurring_run"]
    assert weekly["job_name"] == "weekly" and weekly["experiment_name"] == "gpu-exp"
    assert weekly["cron_expression"] == "TZ=Europe/Berlin 0 30 9 * * MON,WED"
    assert weekly["start_time"] == "2026-01-05T09:30:00+01:00"
    assert "notes" not in weekly
    assert weekly["params"] == {"epochs": 7}
    assert weekly["enable_caching"] is False and weekly["service_account"] == "trainer"
    assert often["cron_expression"] == "0 */15 * * * *" and "interval_second" not in often


def test_reserved_parameter_name_is_a_compile_error(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print(1)\n")
    (tmp_path / "pipeline.py").write_text(
        "from azureml.core import Workspace\n"
        "from azureml.pipeline.core import Pipeline, PipelineParameter\n"
        "from azureml.pipeline.steps import PythonScriptStep\n"
        "ws = Workspace.from_config()\n"
        "flag = PipelineParameter(name='regenerate_outputs', default_value=True)\n"
        "s = PythonScriptStep(name='s', script_name='s.py', source_directory='src',\n"
        "                     arguments=[flag])\n"
        "p = Pipeline(workspace=ws, steps=[s])\n"
    )
    proc = run_cmd(
        [MLPIPE, "compile", str(tmp_path / "pipeline.py"), "--target", "kfp", "-o", "o"],
        env=child_env(),
        cwd=str(tmp_path),
    )
    assert proc.returncode == 2
    assert "pipeline.py:5: parameter 'regenerate_outputs'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


# ------------------------------------------------------------------- executor modules, snapshots


def test_executor_modules_are_clean_python_without_pipeline_text(compiled, tmp_path):
    hostile = json.loads((PIPELINES / "hostile_args" / "expected_args.json").read_text())
    folder = tmp_path / "modules"
    folder.mkdir()
    for name, out in compiled.items():
        doc, _ = load_docs(out)
        for label, source in modules(doc).items():
            ast.parse(source)
            # No KFP placeholder in code: `{{` only ever appears in the args / run id constant.
            assert "{{" not in source and "$" not in source.replace("$HOME", "")
            (folder / f"{name}_{label.replace('-', '_')}.py").write_text(source)
            if name == "hostile_args":
                for text in hostile:
                    if len(text) > 3:
                        assert text not in source
    for cmd in (
        [RUFF, "check", "--config", CONFIG, str(folder)],
        [RUFF, "format", "--check", "--config", CONFIG, str(folder)],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_small_snapshots_are_embedded_large_ones_go_to_the_datastore(compiled, tmp_path):
    doc, _ = load_docs(compiled["seed_pipeline"])
    for label, source in modules(doc).items():
        if "summary" not in label:
            assert re.search(r'^SNAPSHOT = "[A-Za-z0-9+/=]{40,}"$', source, re.M), label

    pipeline = copy_pipeline(PIPELINES / "chain_closure" / "pipeline.py", tmp_path / "big")
    # 48 KiB that gzip cannot shrink: above SNAPSHOT_EMBED_MAX once packed.
    (pipeline.parent / "src" / "weights.bin").write_bytes(random.Random(7).randbytes(48 * 1024))
    compile_kfp(pipeline, tmp_path / "out")
    doc, _ = load_docs(tmp_path / "out")
    source = modules(doc)["exec-a"]
    assert re.search(r'^SNAPSHOT = ""$', source, re.M)
    digest = step_payload(source)["ir"]["steps"][0]["snapshot"]["hash"]
    stored = pipeline.parent / "data" / ".mlpipe" / "snapshots" / f"{digest}.tar.gz"
    assert stored.is_file() and len(stored.read_bytes()) > K.SNAPSHOT_EMBED_MAX


# ------------------------------------------------------------------------------- YAML writer


def test_yaml_writer_round_trips_the_specs(compiled):
    for out in compiled.values():
        (path,) = pipeline_files(out)
        text = path.read_text(encoding="utf-8")
        docs = list(yaml.safe_load_all(text))
        assert S.dump_yaml(docs).decode("utf-8") == text[text.index("components:") :]


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_SCALAR = _TEXT | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False)
_DOC = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, _DOC, max_size=5))
def test_yaml_writer_round_trips_any_text(doc):
    assert yaml.safe_load(S.dump_yaml([doc])) == (doc or None)


@settings(max_examples=200, deadline=None)
@given(_TEXT.map(lambda t: t + "\n" + t))
def test_yaml_writer_multiline_text(text):
    assert yaml.safe_load(S.dump_yaml([{"k": text, "l": [text]}])) == {"k": text, "l": [text]}


# --------------------------------------------------------------------------------- real kfp

KFP_CHECK = r"""
import json, os, sys
import yaml
from google.protobuf import json_format
from kfp import components, compiler, dsl, kubernetes
from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

report = {}
for path in sys.argv[1:]:
    component = components.load_component_from_file(path)
    docs = list(yaml.safe_load_all(open(path, encoding="utf-8")))
    spec = json_format.ParseDict(docs[0], pb.PipelineSpec())  # strict: unknown fields fail
    deployment = json_format.ParseDict(
        json_format.MessageToDict(spec.deployment_spec), pb.PipelineDeploymentConfig()
    )
    platform = {}
    if len(docs) > 1:
        ps = json_format.ParseDict(docs[1], pb.PlatformSpec())
        for label, cfg in ps.platforms["kubernetes"].deployment_spec.executors.items():
            msg = json_format.ParseDict(json_format.MessageToDict(cfg), k8s.KubernetesExecutorConfig())
            platform[label] = json_format.MessageToDict(msg)
    report[path] = {
        "name": component.name,
        "inputs": sorted(component.component_spec.inputs or {}),
        "executors": len(deployment.executors),
        "platform": platform,
    }

# What kfp's own DSL + kfp-kubernetes emit for the GPU step's settings.
@dsl.component(base_image="python:3.11-slim")
def gpu_step():
    pass

@dsl.pipeline(name="reference")
def reference():
    t = gpu_step()
    # passes/placement.py: requests below the NC6s_v3's nominal 6 vCPUs / 112 GiB, no CPU limit
    t.set_cpu_request("5400m").set_memory_request("94823Mi").set_memory_limit("94823Mi")
    t.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    kubernetes.add_node_selector(t, "accelerator", "nvidia-tesla-v100")
    kubernetes.add_toleration(t, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    kubernetes.add_toleration(
        t, key="spot", operator="Equal", value="true", effect="NoExecute", toleration_seconds=300
    )
    kubernetes.set_image_pull_secrets(t, ["regcred", "gpu-pull"])
    kubernetes.mount_pvc(t, pvc_name="mlpipe-data", mount_path=os.environ["MLPIPE_TEST_DATA"])

compiler.Compiler().compile(reference, "reference.yaml")
ref = list(yaml.safe_load_all(open("reference.yaml")))
report["reference"] = {
    "resources": ref[0]["deploymentSpec"]["executors"]["exec-gpu-step"]["container"]["resources"],
    "platform": ref[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-gpu-step"],
}
print(json.dumps(report))
"""


def test_kfp_loads_every_compiled_pipeline_and_agrees_with_its_dsl(compiled, gpu, tmp_path):
    files = [p for out in [*compiled.values(), gpu] for p in pipeline_files(out)]
    script = tmp_path / "kfp_check.py"  # a file: kfp.dsl reads the component's source
    script.write_text(KFP_CHECK)
    data = str((gpu.parent / "p" / "data").resolve())
    proc = run_cmd(
        [python_of("kfp"), str(script), *map(str, files)],
        env=child_env(MLPIPE_TEST_DATA=data),
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    reference = report.pop("reference")
    for path in files:
        entry = report[str(path)]
        doc, _ = load_docs(path.parent)
        assert entry["name"] == doc["pipelineInfo"]["name"]
        assert entry["executors"] == len(doc["deploymentSpec"]["executors"])
        assert "regenerate_outputs" in entry["inputs"]

    doc, _ = load_docs(gpu)
    train = next(
        n for n, t in doc["root"]["dag"]["tasks"].items() if t["taskInfo"]["name"] == "train.gpu"
    )
    ours = doc["deploymentSpec"]["executors"][f"exec-{train}"]["container"]["resources"]
    assert ours == reference["resources"]
    assert report[str(pipeline_files(gpu)[0])]["platform"][f"exec-{train}"] == reference["platform"]


# ------------------------------------------------------------------------------ kfp.local runs


@pytest.mark.integration
def test_typed_overrides_reach_the_scripts_like_locally(pipeline_copy, tmp_path):
    """A KFP BOOLEAN override arrives as `True`, as the local runner passes it (KFP itself rejects
    an int for a NUMBER_DOUBLE input, so numbers keep their KFP type); the summary records the run."""
    params = {"shuffle": True, "mode": "full"}
    outs = {}
    for target in ("local", "kfp"):
        p = pipeline_copy("fanout_fanin", dest=target)
        if target == "kfp":
            outcome = DRIVER.run(p, tmp_path / "out", params=params)
        else:
            from tests.targets import LocalDriver

            outcome = LocalDriver().run(p, tmp_path / "local", params=params)
        assert outcome.ok, outcome.log[-4000:]
        merged = p.parent / "data" / ".mlpipe" / "runs"
        (run_dir,) = [d for d in merged.iterdir() if d.is_dir()]
        record = json.loads((run_dir / "steps" / "merge.json").read_text())
        url = record["outputs"]["merged"]["url"].removeprefix("file://")
        outs[target] = (Path(url) / "merged.json").read_bytes()
        if target == "kfp":
            assert run_dir.name == outcome.run_id
            run = json.loads((run_dir / "run.json").read_text())
            assert run["status"] == "completed" and run["orchestrator"] == "kfp"
            assert run["params"]["shuffle"] is True
            assert set(run["steps"]) == {"split", "work_0", "work_1", "work_2", "work_3", "merge"}
    assert outs["kfp"] == outs["local"]
    expected = PIPELINES / "fanout_fanin" / "expected" / "shuffle_true_mode_full" / "merged.json"
    assert outs["kfp"] == expected.read_bytes()


@pytest.mark.integration
def test_a_kfp_run_reuses_what_the_local_runner_ran(pipeline_copy, tmp_path):
    """Same datastore, same fingerprints: the runtime's decisions do not depend on the target."""
    from tests.targets import LocalDriver

    p = pipeline_copy("chain_closure")
    assert LocalDriver().run(p, tmp_path / "local").ok
    executed = (p.parent / "data" / "executions.log").read_text().split()
    outcome = DRIVER.run(p, tmp_path / "out")
    assert outcome.ok, outcome.log[-4000:]
    assert (p.parent / "data" / "executions.log").read_text().split() == executed
    for step in "abcd":
        assert f"mlpipe: step '{step}' reused from run" in outcome.log


def test_datapath_and_dataset_defaults_read_back_exactly():
    from mlpipe.ir import DataPath, Dataset, Parameter, UrlPath
    from mlpipe.runtime.params import resolve_parameters

    params = [
        Parameter(name="dp", type="datapath", default=DataPath(datastore="ws", path="in/x.csv")),
        Parameter(
            name="ds",
            type="dataset",
            default=Dataset(
                type="tabular",
                paths=[DataPath(datastore="ws", path="a/"), UrlPath(url="https://e.x/b.csv")],
                separator=";",
            ),
        ),
        Parameter(name="flag", type="bool", default=True),
    ]
    ir = {
        "parameters": [p.model_dump(mode="json") for p in params],
        "datastores": [{"name": "ws", "url": "/data"}],
    }
    overrides = {p.name: K.parameter_default(p) for p in params}
    assert overrides["dp"] == "ws/in/x.csv" and isinstance(overrides["ds"], str)
    assert resolve_parameters(ir, overrides) == resolve_parameters(ir, {})


@pytest.mark.integration
def test_pod_mode_prefix_runs_steps_with_the_images_python(pipeline_copy, tmp_path):
    """With KFP_POD_NAME set (as in a KFP pod) the install prefix takes its pod branch: kfp is
    already importable so nothing is installed, and the runtime uses the image's Python."""
    from tests.targets.kfp import RUNNER

    p = pipeline_copy("chain_closure")
    DRIVER.compile(p, tmp_path / "out")
    (package,) = pipeline_files(tmp_path / "out")
    proc = run_cmd(
        [python_of("kfp"), "-c", RUNNER, str(package), str(tmp_path / "root"), "{}"],
        env=child_env(KFP_POD_NAME="mlpipe-test-pod"),
        cwd=str(tmp_path),
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert (p.parent / "data" / "executions.log").read_text().split() == ["a", "b", "c", "d"]
    assert "building environment" not in log and "pip install" not in log


def test_no_component_installs_mlpipe_from_a_package_index(compiled, gpu):
    """A pod never downloads mlpipe (the name on PyPI is another project): the step image has it.
    What a component's start-up script installs is kfp (when missing) and its Environment's own
    packages, nothing else."""
    import yaml

    seen = 0
    for folder in [*compiled.values(), gpu]:
        for path in folder.glob("*.yaml"):
            if path.name.endswith(K.DEPLOY_SUFFIX):
                continue
            docs = list(yaml.safe_load_all(path.read_text()))
            executors = docs[0]["deploymentSpec"]["executors"]
            for name, executor in executors.items():
                prefix = executor["container"]["command"][2]
                installs = [x for x in prefix.splitlines() if "pip install" in x]
                assert installs, (path, name)  # kfp's own install line is there to be read
                assert not [x for x in installs if re.search(r"\bmlpipe", x)], (path, name)
                seen += 1
    assert seen > 20


# ------------------------------------------------------------------ pods from the platform spec

# KFP renders pods in its Go driver (backend/src/v2/driver); neither kfp nor kfp-kubernetes has a
# Python renderer. So: kfp-kubernetes' own KubernetesExecutorConfig message reads the platform spec
# (strict: an unknown field fails), and its fields are put on a pod skeleton made of the
# executor's container, the way the driver sets them (node selector, tolerations, pull secrets,
# pod metadata, PVC mounts, secret / config map keys as env, the container's security context),
# with the run's service account from the deploy document.
KFP_PODS = r"""
import json, sys
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

docs = list(yaml.safe_load_all(open(sys.argv[1], encoding="utf-8")))
deploy = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
account = deploy["create_run_from_pipeline_package"][0]["service_account"]
platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
pods = {}
for label, executor in docs[0]["deploymentSpec"]["executors"].items():
    cfg = json_format.ParseDict(platform.get(label, {}), k8s.KubernetesExecutorConfig())
    c = executor["container"]
    res = c.get("resources", {})
    container = {"name": "main", "image": c["image"], "command": c["command"], "args": c["args"]}
    resources = {"requests": {}, "limits": {}}
    for field, kind, key in (("resourceCpuRequest", "requests", "cpu"),
                             ("resourceMemoryRequest", "requests", "memory"),
                             ("resourceCpuLimit", "limits", "cpu"),
                             ("resourceMemoryLimit", "limits", "memory")):
        if field in res:
            resources[kind][key] = res[field]
    if "accelerator" in res:
        resources["limits"][res["accelerator"]["resourceType"]] = res["accelerator"]["resourceCount"]
    container["resources"] = {k: v for k, v in resources.items() if v}
    spec = {"restartPolicy": "Never", "serviceAccountName": account, "containers": [container]}
    meta = {"name": label}
    if cfg.HasField("node_selector"):
        spec["nodeSelector"] = dict(cfg.node_selector.labels)
    if cfg.tolerations:
        spec["tolerations"] = []
        for t in cfg.tolerations:
            item = {k: getattr(t, k) for k in ("key", "operator", "value", "effect") if getattr(t, k)}
            if t.HasField("toleration_seconds"):
                item["tolerationSeconds"] = t.toleration_seconds
            spec["tolerations"].append(item)
    if cfg.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": s.secret_name} for s in cfg.image_pull_secret]
    if cfg.HasField("pod_metadata"):
        meta["labels"] = dict(cfg.pod_metadata.labels)
        meta["annotations"] = dict(cfg.pod_metadata.annotations)
    for m in cfg.pvc_mount:
        claim = m.pvc_name_parameter.runtime_value.constant.string_value or m.constant
        spec.setdefault("volumes", []).append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
        mount = {"name": claim, "mountPath": m.mount_path}
        if m.sub_path:
            mount["subPath"] = m.sub_path
        container.setdefault("volumeMounts", []).append(mount)
    for s in cfg.secret_as_env:
        for pair in s.key_to_env:
            ref = {"secretKeyRef": {"name": s.secret_name, "key": pair.secret_key}}
            container.setdefault("env", []).append({"name": pair.env_var, "valueFrom": ref})
    for s in cfg.config_map_as_env:
        for pair in s.key_to_env:
            ref = {"configMapKeyRef": {"name": s.config_map_name, "key": pair.config_map_key}}
            container.setdefault("env", []).append({"name": pair.env_var, "valueFrom": ref})
    if cfg.HasField("security_context"):
        sc = json_format.MessageToDict(cfg.security_context)
        container["securityContext"] = {k: v if isinstance(v, bool) else int(v) for k, v in sc.items()}
    pods[label] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
print(json.dumps(pods))
"""


@pytest.mark.integration
def test_kubernetes_profile_pods_validate_strictly_with_the_placement_of_every_target(tmp_path):
    from tests.targets import kube

    pipeline = kube.gpu_pipeline(tmp_path / "p")
    out = tmp_path / "out"
    proc = run_cmd(
        [MLPIPE, "compile", str(pipeline), "--target", "kfp", "--profile", "kubernetes"]
        + ["-o", str(out)],
        env=child_env(),
        cwd=str(pipeline.parent),
    )
    assert proc.returncode == 0, proc.stderr
    # what the platform spec cannot say is a warning, never a silent drop
    assert (
        "compute 'gpu-cluster': KFP's kubernetes platform spec has no field for priority_class"
        in proc.stderr
    )
    assert (
        "kubernetes: KFP's kubernetes platform spec has no field for pod_security_context"
        in proc.stderr
    )
    (package,) = pipeline_files(out)
    script = tmp_path / "pods.py"
    script.write_text(KFP_PODS)
    proc = run_cmd(
        [
            python_of("kfp"),
            str(script),
            str(package),
            str(package.with_suffix(".deploy.yaml")),
        ],
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pods = json.loads(proc.stdout.strip().splitlines()[-1])
    kube.validate_strict(pods, tmp_path / "manifests")
    kube.no_host_path(pods)
    for label, compute in (("exec-train", "gpu-cluster"), ("exec-prep", "cpu-cluster")):
        kube.check_resources(pods[label]["spec"]["containers"][0], compute)
        expected = kube.expected_placement(pipeline.parent.resolve(), compute)
        expected.pop("podSecurityContext")  # warned above
        expected.pop("priorityClassName", None)
        got = kube.placement(pods[label])
        got.pop("podSecurityContext")
        assert got == expected, label
    # the run summary writes to the datastore: the workspace placement (the PVC) as well
    summary = kube.placement(pods["exec-mlpipe-run-summary"])
    assert summary["mounts"] == {"mlpipe-data": (str(pipeline.parent.resolve() / "data"), None)}
