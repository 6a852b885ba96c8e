"""`mlpipe images`: the build contexts' recipe, tried without a container engine.

A step image is its context's Dockerfile run on its base image: pip installs requirements.txt
(--no-deps --require-hashes) and the runtime folder is copied to /opt/mlpipe/runtime, with the
Dockerfile's ENV. Here a fresh venv stands in for the base image's Python: the Dockerfile's RUN
line installs the lock into it, pip is then removed (a pod can install nothing), and the step runs
exactly as the compiled artifacts start it in a pod: the KFP executor command of the YAML with
KFP_POD_NAME set, and Airflow's `python -m mlpipe.runtime run-step`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
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
