"""Step images: mlpipe.yaml `images:`, the image each step's pod runs, and the missing-runtime warning.

The build contexts themselves (resolved with uv, installed into a fresh venv, a step run with
them) are tested in tests/integration/test_images.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mlpipe.backends.base import compile_pipelines
from mlpipe.backends.kfp import KfpBackend
from mlpipe.capture import capture
from mlpipe.errors import MlpipeError
from mlpipe.images import image_spec, pipeline_images
from tests.targets import MLPIPE, child_env, run_cmd

PIPELINE = """\
from azureml.core import Environment, Workspace
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import RunConfiguration
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
env = Environment("Yaml Env")
env.python.conda_dependencies = CondaDependencies.create(pip_packages=["pyyaml==6.0.2"])
rc = RunConfiguration()
rc.environment = env
own = Environment.from_docker_image("own", "registry.example.com/team/own:1")
rc_own = RunConfiguration()
rc_own.environment = own
a = PythonScriptStep("step.py", name="with env", source_directory="src", runconfig=rc)
b = PythonScriptStep("step.py", name="plain", source_directory="src")
c = PythonScriptStep("step.py", name="own image", source_directory="src", runconfig=rc_own)
pipeline = Pipeline(ws, steps=[a, b, c])
"""
# A local-path datastore is a PVC in the kubernetes profiles (never a hostPath).
VOLUME = "kubernetes: {volumes: [{name: data, claim: data-pvc, datastore: workspaceblobstore}]}\n"
REGISTRY = "images: {registry: myacr.azurecr.io/mlpipe}\n" + VOLUME


def project(tmp_path: Path, config: str | None = REGISTRY) -> Path:
    folder = tmp_path / "p"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "step.py").write_text("print('hi')\n")
    if config is not None:
        (folder / "mlpipe.yaml").write_text("workspace: demo\n" + config)
    (folder / "pipeline.py").write_text(PIPELINE)
    return folder / "pipeline.py"


def compile_kfp(pipeline: Path, out: Path):
    result = capture(str(pipeline))
    done = compile_pipelines(KfpBackend(), result.pipelines, pipeline.parent, out)
    spec = next(yaml.safe_load_all((out / "pipeline.yaml").read_text()))
    return result.pipelines[0], spec, done.warnings


def executors(spec: dict) -> dict[str, dict]:
    return {k: v["container"] for k, v in spec["deploymentSpec"]["executors"].items()}


def test_kfp_steps_run_mlpipes_images_and_install_nothing(tmp_path):
    pipeline = project(tmp_path)
    ir, spec, warnings = compile_kfp(pipeline, tmp_path / "kfp")
    env = ir.environments[[e.name for e in ir.environments].index("Yaml Env")]
    containers = executors(spec)
    with_env = containers["exec-with-env"]
    assert with_env["image"] == image_spec(ir, env, "kfp").ref
    assert re.fullmatch(r"myacr\.azurecr\.io/mlpipe/yaml-env:[0-9a-f]{16}", with_env["image"])
    plain = containers["exec-plain"]["image"]
    assert plain == image_spec(ir, None, "kfp").ref and "/mlpipe-step:" in plain
    assert containers["exec-mlpipe-run-summary"]["image"] == plain
    for name in ("exec-with-env", "exec-plain", "exec-mlpipe-run-summary"):
        prefix = containers[name]["command"][2]
        assert "pip" not in prefix and "install" not in prefix, prefix
        assert "MLPIPE_USE_CURRENT_PYTHON=1" in prefix
    # the environment with its own image keeps it, installs at start, and is warned about
    own = containers["exec-own-image"]
    assert own["image"] == "registry.example.com/team/own:1"
    assert "pip install" in own["command"][2]
    (warning,) = warnings
    assert warning.file == "pipeline.py" and warning.line == 17
    assert "step 'own image' runs in image registry.example.com/team/own:1" in warning.message
    assert {s.ref for s in pipeline_images(ir, "kfp")} == {with_env["image"], plain}


def test_without_a_registry_every_pod_step_is_warned_about_by_name_and_line(tmp_path):
    pipeline = project(tmp_path, config=VOLUME)
    out = tmp_path / "dags"
    proc = run_cmd(
        [MLPIPE, "compile", str(pipeline), "-t", "airflow", "--profile", "kubernetes"]
        + ["-o", str(out)],
        env=child_env(),
        cwd=str(pipeline.parent),
    )
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "warning:" in x]
    assert [x.split(", which")[0] for x in lines] == [
        "pipeline.py:15: warning: steps 'with env', 'plain' run in image python:3.11-slim",
        "pipeline.py:17: warning: step 'own image' runs in image registry.example.com/team/own:1",
    ]
    assert all("no image registry is configured" in x for x in lines), lines
    # the local profile runs no image: nothing to warn about
    proc = run_cmd(
        [MLPIPE, "compile", str(pipeline), "-t", "airflow", "-o", str(tmp_path / "local")],
        env=child_env(),
        cwd=str(pipeline.parent),
    )
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_airflow_kubernetes_pods_name_the_same_images(tmp_path):
    from mlpipe.backends.airflow import AirflowBackend

    pipeline = project(tmp_path)
    result = capture(str(pipeline))
    out = tmp_path / "dags"
    compile_pipelines(AirflowBackend(), result.pipelines, pipeline.parent, out, "kubernetes")
    ir = result.pipelines[0]
    dag = (out / "pipeline.py").read_text()
    images = re.findall(r'image="([^"]+)"', dag)
    env = ir.environments[[e.name for e in ir.environments].index("Yaml Env")]
    assert images == [
        image_spec(ir, env, "airflow").ref,
        image_spec(ir, None, "airflow").ref,
        "registry.example.com/team/own:1",
    ]
    # KFP images carry kfp and its executor: another image than Airflow's for one environment
    assert image_spec(ir, env, "kfp").ref != images[0]


def test_the_tag_changes_with_what_decides_the_image(tmp_path):
    pipeline = project(tmp_path)
    ir = capture(str(pipeline)).pipelines[0]
    env = ir.environments[[e.name for e in ir.environments].index("Yaml Env")]
    ref = image_spec(ir, env, "airflow").ref
    assert image_spec(ir, env, "airflow").ref == ref  # a pure function of the IR
    changed = env.model_copy(update={"pip_packages": ["pyyaml==6.0.3"]})
    assert image_spec(ir, changed, "airflow").ref != ref
    later = ir.model_copy(
        update={"images": ir.images.model_copy(update={"exclude_newer": "2027-01-01"})}
    )
    assert image_spec(later, env, "airflow").ref != ref
    based = ir.model_copy(update={"images": ir.images.model_copy(update={"base_image": "x/y:1"})})
    spec = image_spec(based, env, "airflow")
    assert spec.ref != ref and "\nFROM x/y:1\n" in spec.dockerfile


@pytest.mark.parametrize(
    ("config", "line", "message"),
    [
        ("images: {registry: MyAcr.io/Upper}\n", 2, "registry must be a registry"),
        ("images:\n  registry: acr.io/x\n  push: true\n", 4, "unknown key(s) push"),
        ("images: acr.io/x\n", 2, "images: must be a mapping"),
        ("images:\n  registry: acr.io/x\n  exclude_newer: soon\n", 4, "exclude_newer must be"),
    ],
)
def test_bad_images_settings_name_the_line(tmp_path, config, line, message):
    pipeline = project(tmp_path, config=config)
    with pytest.raises(MlpipeError) as info:
        capture(str(pipeline))
    (problem,) = info.value.problems
    assert problem.file.endswith("mlpipe.yaml") and problem.line == line
    assert message in problem.message


def test_prefect_kubernetes_jobs_run_mlpipes_images_and_pull_the_published_folder(tmp_path):
    from mlpipe.backends.prefect import PrefectBackend

    pipeline = project(tmp_path)
    result = capture(str(pipeline))
    ir = result.pipelines[0]
    out = tmp_path / "flows"
    published = pipeline.parent / ".mlpipe" / "datastores" / "workspaceblobstore"
    with pytest.raises(MlpipeError, match="does not exist on this machine"):
        # the volume is not mounted here: the folder would go nowhere the jobs see
        compile_pipelines(PrefectBackend(), result.pipelines, pipeline.parent, out, "kubernetes")
    assert not out.exists()  # nothing written
    published.mkdir(parents=True)
    done = compile_pipelines(PrefectBackend(), result.pipelines, pipeline.parent, out, "kubernetes")
    # only the step whose environment names its own image may lack the runtime
    assert [(w.line, w.message.split(", which")[0]) for w in done.warnings] == [
        (17, "step 'own image' runs in image registry.example.com/team/own:1"),
    ]
    assert "prefect==3.9.1" in done.warnings[0].message
    env = ir.environments[[e.name for e in ir.environments].index("Yaml Env")]
    flow = (out / "pipeline_flow.py").read_text()
    assert re.findall(r'image="([^"]+)"', flow) == [
        image_spec(ir, env, "prefect").ref,
        image_spec(ir, None, "prefect").ref,
        "registry.example.com/team/own:1",
    ]
    assert [s.ref for s in pipeline_images(ir, "prefect")] == sorted(
        [image_spec(ir, env, "prefect").ref, image_spec(ir, None, "prefect").ref]
    )
    assert "prefect==3.9.1" in image_spec(ir, env, "prefect").requirements_in
    assert "prefect" not in image_spec(ir, env, "airflow").requirements_in
    doc = yaml.safe_load((out / "prefect.yaml").read_text())
    assert {d["work_pool"]["job_variables"]["image"] for d in doc["deployments"]} == {
        image_spec(ir, None, "prefect").ref
    }
    # the jobs read the folder `mlpipe compile` published to the default datastore (a volume)
    published = published / ".mlpipe" / "flows" / "pipeline"
    assert doc["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(published)}}
    ]
    for rel in done.written:
        assert (published / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_prefect_kubernetes_without_a_registry_warns_about_every_step(tmp_path):
    from mlpipe.backends.prefect import PrefectBackend

    pipeline = project(tmp_path, config=VOLUME)
    result = capture(str(pipeline))
    out = tmp_path / "flows"
    done = compile_pipelines(PrefectBackend(), result.pipelines, pipeline.parent, out, "kubernetes")
    assert [(w.line, w.message.split(", which")[0]) for w in done.warnings] == [
        (15, "steps 'with env', 'plain' run in image prefecthq/prefect:3.9.1-python3.11"),
        (17, "step 'own image' runs in image registry.example.com/team/own:1"),
    ]
    assert "no image registry is configured" in done.warnings[0].message
    pull = yaml.safe_load((out / "prefect.yaml").read_text())["pull"]
    assert pull == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/mlpipe"}}
    ]
