"""`mlpipe images`: the build contexts' recipe, tried without a container engine.

A step image is its context's Dockerfile run on its base image: pip installs requirements.txt
(--no-deps --require-hashes) and the runtime folder is copied to /opt/mlpipe/runtime, with the
Dockerfile's ENV. Here a fresh venv stands in for the base image's Python: the Dockerfile's RUN
line installs the lock into it, pip is then removed (a pod can install nothing), and the step runs
exactly as the compiled artifacts start it in a pod: the KFP executor command of the YAML with
KFP_POD_NAME set, Airflow's `python -m mlpipe.runtime run-step`, and Prefect's `prefect flow-run
execute` for a flow run of the step's deployment on a real Prefect server (its pull step finds the
compiled folder `mlpipe compile` published to the default datastore).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.targets import MLPIPE, child_env, run_cmd

pytestmark = pytest.mark.integration

PIPELINE = """\
from azureml.core import Environment, Experiment, Workspace
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import RunConfiguration
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
env = Environment("yaml-env")
env.python.conda_dependencies = CondaDependencies.create(pip_packages=["pyyaml==6.0.2"])
rc = RunConfiguration()
rc.environment = env
word = PipelineParameter("word", default_value="hi")
out = OutputFileDatasetConfig("out")
step = PythonScriptStep(
    "train.py", source_directory="src", arguments=[out, word], runconfig=rc, allow_reuse=False
)
Experiment(ws, "images").submit(Pipeline(ws, steps=[step]))
"""
SCRIPT = """\
import pathlib
import sys

import yaml
from azureml.core import Run

run = Run.get_context()
run.log("words", 1)
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "result.yaml").write_text(yaml.safe_dump({"word": sys.argv[2], "yaml": yaml.__version__}))
print("trained in", sys.prefix)
"""


def project(tmp_path: Path) -> Path:
    folder = tmp_path / "p"
    (folder / "src").mkdir(parents=True)
    (folder / "data").mkdir()  # the datastore's volume, mounted here
    (folder / "src" / "train.py").write_text(SCRIPT)
    (folder / "mlpipe.yaml").write_text(
        "workspace: demo\ndatastores: {workspaceblobstore: ./data}\n"
        "images: {registry: myacr.azurecr.io/mlpipe}\n"
        "kubernetes: {volumes: [{name: data, claim: data-pvc, datastore: workspaceblobstore}]}\n"
    )
    (folder / "pipeline.py").write_text(PIPELINE)
    return folder / "pipeline.py"


def mlpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = run_cmd([MLPIPE, *args], env=child_env(), cwd=str(cwd))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def build(context: Path, where: Path) -> dict[str, str]:
    """The image's Python (a fresh venv: RUN as the Dockerfile says, then no pip) and its ENV."""
    dockerfile = (context / "Dockerfile").read_text()
    (run,) = [x[4:] for x in dockerfile.splitlines() if x.startswith("RUN ")]
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    argv = shlex.split(
        run.replace("/opt/mlpipe/requirements.txt", str(context / "requirements.txt"))
    )
    assert argv[:4] == ["python", "-m", "pip", "install"], argv
    proc = subprocess.run(
        [str(where / "bin" / "python"), *argv[1:]], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subprocess.run([str(where / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y", "pip"])
    env = {"PATH": f"{where / 'bin'}:/usr/bin:/bin", "HOME": str(where)}
    for line in dockerfile.splitlines():
        if line.startswith("ENV "):
            for item in line[4:].split():
                key, value = item.split("=", 1)
                env[key] = value.replace("/opt/mlpipe/runtime", str(context / "runtime"))
    return env


def contexts(out: Path) -> dict[str, Path]:
    listed = (out / "images.txt").read_text().splitlines()
    return {ref: out / folder for ref, folder in (line.split(" ") for line in listed)}


def test_a_kfp_pod_of_an_mlpipe_image_runs_its_step_and_installs_nothing(tmp_path):
    pipeline = project(tmp_path)
    base = pipeline.parent
    mlpipe("images", str(pipeline), "-t", "kfp", "-o", str(tmp_path / "images"), cwd=base)
    first = {p: p.read_bytes() for p in sorted((tmp_path / "images").rglob("*")) if p.is_file()}
    proc = mlpipe("images", str(pipeline), "-t", "kfp", "-o", str(tmp_path / "images"), cwd=base)
    again = {p: p.read_bytes() for p in sorted((tmp_path / "images").rglob("*")) if p.is_file()}
    assert again == first  # deterministic: a second run writes the same bytes
    assert "wrote" in proc.stderr
    images = contexts(tmp_path / "images")
    assert len(images) == 2  # yaml-env, and mlpipe-step for the run summary
    lock = (images[next(r for r in images if "/yaml-env:" in r)] / "requirements.txt").read_text()
    pins = re.findall(r"^([a-z0-9_.\-]+)==(\S+)", lock, re.M)
    assert {"pyyaml", "fsspec", "kfp"} <= {name for name, _ in pins}
    assert lock.count("--hash=sha256:") >= len(pins)

    mlpipe("compile", str(pipeline), "-t", "kfp", "-o", str(tmp_path / "kfp"), cwd=base)
    spec = next(yaml.safe_load_all((tmp_path / "kfp" / "images.yaml").read_text()))
    executors = {k: v["container"] for k, v in spec["deploymentSpec"]["executors"].items()}
    assert {c["image"] for c in executors.values()} == set(images)

    def pod(executor: str, params: dict) -> subprocess.CompletedProcess:
        container = executors[executor]
        env = build(images[container["image"]], tmp_path / f"venv-{executor}")
        env["KFP_POD_NAME"] = "images-pod"  # what KFP sets in its pods
        executor_input = {
            "inputs": {"parameterValues": params},
            "outputs": {"outputFile": str(tmp_path / f"{executor}.json")},
        }
        args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
        return subprocess.run(
            [*container["command"], *args], env=env, capture_output=True, text=True
        )

    params = {"mlpipe_run_id": "kfp-run-1", "regenerate_outputs": False, "word": "pod"}
    r = pod("exec-train-py", params)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"trained in {tmp_path / 'venv-exec-train-py'}" in r.stdout
    (result,) = (base / "data").rglob("result.yaml")
    assert yaml.safe_load(result.read_text()) == {"word": "pod", "yaml": "6.0.2"}
    r = pod("exec-mlpipe-run-summary", params)
    assert r.returncode == 0, r.stdout + r.stderr
    record = json.loads((base / "data" / ".mlpipe" / "runs" / "kfp-run-1" / "run.json").read_text())
    assert record["orchestrator"] == "kfp" and record["status"] == "completed", record


def test_an_airflow_kubernetes_pod_of_an_mlpipe_image_runs_its_step(tmp_path):
    pipeline = project(tmp_path)
    base = pipeline.parent
    mlpipe("images", str(pipeline), "-t", "airflow", "-o", str(tmp_path / "images"), cwd=base)
    mlpipe("compile", str(pipeline), "-t", "airflow", "--profile", "kubernetes", "-o",
           str(tmp_path / "dags"), cwd=base)  # fmt: skip
    dag = (tmp_path / "dags" / "images.py").read_text()
    (image,) = re.findall(r'image="([^"]+)"', dag)
    env = build(contexts(tmp_path / "images")[image], tmp_path / "venv")
    env["MLPIPE_RUNNER"] = "airflow"
    (bundle,) = (tmp_path / "dags" / ".mlpipe").glob("images.*.json")
    r = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-m", "mlpipe.runtime", "run-step"]
        + [
            f"--ir={bundle}",
            "--step=train.py",
            "--run-id=manual__1",
            '--params-json={"word": "air"}',
        ]
        + [f"--snapshots={tmp_path / 'dags' / '.mlpipe' / 'snapshots'}", "--pin-version"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mlpipe: step 'train.py' ran" in r.stdout and "building environment" not in r.stdout
    (result,) = (base / "data").rglob("result.yaml")
    assert yaml.safe_load(result.read_text()) == {"word": "air", "yaml": "6.0.2"}
    assert os.path.isdir(tmp_path / "venv" / "lib")


# The pod of a Prefect Kubernetes job, as prefect-kubernetes' worker would create it: the work
# pool's base job template rendered with the deployment's and the flow run's job variables (the
# image the pipeline flow names for the step) by prefect-kubernetes' own code, for a real flow run
# of the step deployment on the session's Prefect server.
PREFECT_JOB = r"""
import asyncio, json, sys
from prefect.client.orchestration import get_client
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

step, image = sys.argv[1], sys.argv[2]


async def main():
    out = {}
    async with get_client() as client:
        pool = await client.read_work_pool("mlpipe-kubernetes")
        for name in ("images/images", "images-step/no-compute"):
            dep = await client.read_deployment_by_name(name)
            values = dict(dep.job_variables)
            run = None
            if name.endswith("no-compute"):
                run = await client.create_flow_run_from_deployment(
                    dep.id,
                    parameters={"step": step, "run_id": "prefect-job-1",
                                "params": {"word": "job"}, "regenerate_outputs": False},
                    job_variables={"image": image},
                )
                values.update(run.job_variables or {})
                out["flow_run"] = str(run.id)
            cfg = await KubernetesWorkerJobConfiguration.from_template_and_values(
                pool.base_job_template, values, client=client)
            if run is not None:
                cfg.prepare_for_flow_run(flow_run=run, deployment=dep)
            out[name] = cfg.job_manifest
    print("JOBS " + json.dumps(out))


asyncio.run(main())
"""
FLOW_RUN_STATE = r"""
import sys
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    print("STATE", client.read_flow_run(sys.argv[1]).state.type.value)
"""


def test_a_prefect_kubernetes_job_of_an_mlpipe_image_pulls_the_flow_and_runs_its_step(tmp_path):
    from tests.targets import driver, python_of
    from tests.targets.kube import no_host_path, validate_strict

    pipeline = project(tmp_path)
    base = pipeline.parent
    drv = driver("prefect")
    drv.server.start()  # boots while the images resolve
    mlpipe("images", str(pipeline), "-t", "prefect", "-o", str(tmp_path / "images"), cwd=base)
    images = contexts(tmp_path / "images")
    out = tmp_path / "flows"
    proc = mlpipe("compile", str(pipeline), "-t", "prefect", "--profile", "kubernetes", "-o",
                  str(out), cwd=base)  # fmt: skip
    assert "may lack" not in proc.stderr  # every job runs an image mlpipe builds
    flow = (out / "images_flow.py").read_text()
    (step_image,) = re.findall(r'image="([^"]+)"', flow)
    assert "/yaml-env:" in step_image and set(images) == {
        step_image,
        next(r for r in images if "/mlpipe-step:" in r),
    }
    # The folder is published to the default datastore, which the pull step reads in place.
    published = base / "data" / ".mlpipe" / "flows" / "images"
    assert (published / "images_flow.py").read_text() == flow
    pull = yaml.safe_load((out / "prefect.yaml").read_text())["pull"]
    assert pull == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(published)}}
    ]

    env = drv.env()
    prefect = str(Path(python_of("prefect")).parent / "prefect")
    for cmd in (
        [
            "work-pool",
            "create",
            "mlpipe-kubernetes",
            "--type",
            "kubernetes",
            "--overwrite",
            "--base-job-template",
            "mlpipe-kubernetes-job-template.json",
        ],  # fmt: skip
        ["deploy", "--all"],
    ):
        r = run_cmd([prefect, "--no-prompt", *cmd], env=env, cwd=str(out))
        assert r.returncode == 0, r.stdout + r.stderr
    shutil.rmtree(out)  # the jobs read the published folder only
    r = drv.prefect(PREFECT_JOB, "train.py", step_image)
    assert r.returncode == 0, r.stdout + r.stderr
    jobs = json.loads(next(x for x in r.stdout.splitlines() if x.startswith("JOBS "))[5:])
    run_id = jobs.pop("flow_run")
    validate_strict(jobs, tmp_path / "manifests")
    no_host_path(jobs)
    flow_pod = jobs["images/images"]["spec"]["template"]["spec"]
    assert flow_pod["containers"][0]["image"] in images  # the orchestrating flow: mlpipe-step
    (container,) = jobs["images-step/no-compute"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == step_image
    command = [*container.get("command", []), *container.get("args", [])]
    assert command == ["prefect", "flow-run", "execute"]

    # The pod: the image's Python, the container's command and environment (the flow run id,
    # the API URL), started in a folder without the flow: Prefect's pull step finds it.
    job_env = build(images[step_image], tmp_path / "venv")
    assert job_env["PREFECT_HOME"] == "/tmp/.prefect"  # the image's: writable for any user
    job_env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    job_env["PREFECT_HOME"] = str(tmp_path / "job-home")  # (the test worker's was passed on)
    (tmp_path / "pod").mkdir()
    r = subprocess.run(
        command,
        env=job_env,
        cwd=tmp_path / "pod",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (result,) = (base / "data").rglob("result.yaml")
    assert yaml.safe_load(result.read_text()) == {"word": "job", "yaml": "6.0.2"}
    record = base / "data" / ".mlpipe" / "runs" / "prefect-job-1" / "steps" / "train.py.json"
    assert json.loads(record.read_text())["status"] == "completed"
    state = drv.prefect(FLOW_RUN_STATE, run_id)
    assert "STATE COMPLETED" in state.stdout, state.stdout + state.stderr


# Prefect's own pull step functions from the compiled prefect.yaml, in order, as `prefect flow-run
# execute` runs them in a job, then the step flow loaded from where they left the working directory.
PULL = r"""
import asyncio, importlib, inspect, json, os, sys
import yaml
from prefect.flows import load_flow_from_entrypoint

steps = yaml.safe_load(open(sys.argv[1]))["pull"]
steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] = sys.argv[2]  # /tmp
output = {}
for step in steps:  # what run_steps does, without the API server its events go to
    ((fqn, inputs),) = step.items()
    module, _, name = fqn.rpartition(".")
    result = getattr(importlib.import_module(module), name)(**inputs)
    output.update(asyncio.run(result) if inspect.iscoroutine(result) else result)
os.chdir(output["directory"])
flow = load_flow_from_entrypoint("images_flow.py:images_step")
print("PULLED " + json.dumps({"cwd": os.getcwd(), "flow": flow.name}))
"""


@pytest.fixture
def s3_server():
    """moto's S3 on 127.0.0.1 (tests/servers.py), stopped after the test."""
    from tests.servers import start_moto

    server, env = start_moto()
    yield env
    server.stop()


def test_a_prefect_job_pulls_the_folder_published_to_an_s3_default_datastore(
    s3_server, tmp_path, monkeypatch
):
    """With an object-store default datastore, `mlpipe compile` publishes the folder there and the
    jobs' pull step (Prefect's pull_from_remote_storage, fsspec) copies it from there, with the
    credentials of the job's environment (here moto's S3 on 127.0.0.1)."""
    from tests.servers import make_bucket
    from tests.targets import python_of

    env = child_env(**s3_server)
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    bucket = make_bucket("mlpipe-flows")
    pipeline = project(tmp_path)
    (pipeline.parent / "mlpipe.yaml").write_text(
        f"workspace: demo\ndatastores: {{workspaceblobstore: {bucket}/data}}\n"
        "images: {registry: myacr.azurecr.io/mlpipe}\n"
    )
    out = tmp_path / "flows"
    proc = run_cmd(
        [MLPIPE, "compile", str(pipeline), "-t", "prefect", "--profile", "kubernetes", "-o",
         str(out)], env=env, cwd=str(pipeline.parent),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    url = f"{bucket}/data/.mlpipe/flows/images"
    assert yaml.safe_load((out / "prefect.yaml").read_text())["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/tmp"}},
        {"prefect.deployments.steps.pull_from_remote_storage": {"url": url}},
    ]
    (tmp_path / "pod").mkdir()
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env.pop("PREFECT_API_URL", None)
    r = run_cmd(
        [python_of("prefect"), "-c", PULL, str(out / "prefect.yaml"), str(tmp_path / "pod")],
        env=env,
    )
    line = [x for x in r.stdout.splitlines() if x.startswith("PULLED ")]
    assert r.returncode == 0 and line, r.stdout[-3000:] + r.stderr[-3000:]
    pulled = json.loads(line[0][len("PULLED ") :])
    assert pulled["flow"] == "images-step"
    here = Path(pulled["cwd"])
    assert here.is_relative_to(tmp_path / "pod")
    for rel in [p.relative_to(out) for p in out.rglob("*") if p.is_file()]:
        if rel.as_posix() != ".mlpipe/manifest.json":
            assert (here / rel).read_bytes() == (out / rel).read_bytes(), rel
