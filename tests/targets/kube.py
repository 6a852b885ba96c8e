"""Strict Kubernetes schema validation of manifests rendered by an orchestrator's own code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from . import VENV


def validate_strict(manifests: dict[str, dict], folder: Path) -> None:
    """`kubernetes-validate --strict` (unknown fields are errors) on every manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, manifest in manifests.items():
        path = folder / f"{name.replace('/', '_')}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=True))
        files.append(str(path))
    cmd = [str(VENV / "bin" / "kubernetes-validate"), "--strict", "--quiet", *files]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def quantity(text: str) -> float:
    """A Kubernetes CPU / memory quantity as a number (cores; bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


# ------------------------------------------------------------------ the GPU pipeline of all targets
# One mlpipe.yaml with every Kubernetes key: each target's test renders its pods with the target's
# own code and compares their placement with PLACEMENT (the same for all three).
GPU_YAML = """\
workspace: kdemo
datastores:
  workspaceblobstore: ./data
kubernetes:
  default_image: registry.example.com/mlpipe-runtime:1.0
  namespace: ml
  service_account: pipelines
  labels: {team: vision, cost-center: "4711"}
  annotations: {example.com/owner: vision team}
  pod_security_context: {fsGroup: 1000}
  security_context: {runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true}
  volumes:
    - {name: blobstore, claim: mlpipe-data, datastore: workspaceblobstore}
  env_from:
    - {secret: storage-creds, key: account-key, env: AZURE_STORAGE_KEY}
computes:
  gpu-cluster:
    vm_size: STANDARD_NC6S_V3
    max_nodes: 2
    node_selector: {accelerator: nvidia-tesla-v100}
    tolerations:
      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
      - {key: spot, operator: Equal, value: "true", effect: NoExecute, tolerationSeconds: 300}
    image_pull_secrets: [regcred]
    labels: {team: vision-gpu}
    priority_class: gpu-batch
    volumes:
      - {name: model-cache, claim: model-cache, mount_path: /cache, sub_path: models}
    env_from:
      - {config_map: training-settings, key: region, env: TRAIN_REGION}
  cpu-cluster: {vm_size: STANDARD_D2_V2, max_nodes: 3}
"""

GPU_PIPELINE = '''\
"""Prepares on CPUs, trains on a V100."""
from azureml.core import Experiment, Workspace
from azureml.core.compute import ComputeTarget
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
prep = PythonScriptStep(name="prep", script_name="step.py", source_directory="src",
                        compute_target=ComputeTarget(workspace=ws, name="cpu-cluster"))
train = PythonScriptStep(name="train", script_name="step.py", source_directory="src",
                         compute_target=ComputeTarget(workspace=ws, name="gpu-cluster"))
train.run_after(prep)
pipeline = Pipeline(workspace=ws, steps=[train])
Experiment(ws, "gpu-exp").submit(pipeline)
'''

# NC6s_v3: 6 vCPUs, 112 GiB, 1 GPU; D2_v2: 2 vCPUs, 7 GiB (passes/placement.py's headroom rule)
NOMINAL = {"gpu-cluster": (6, 112 * 2**30), "cpu-cluster": (2, 7 * 2**30)}


def gpu_pipeline(folder: Path) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "src" / "step.py").write_text("import sys\nprint(sys.argv[1:])\n")
    (folder / "mlpipe.yaml").write_text(GPU_YAML)
    (folder / "pipeline.py").write_text(GPU_PIPELINE)
    return folder / "pipeline.py"


def expected_placement(folder: Path, compute: str) -> dict:
    """What every target's pod of a step on `compute` carries (see placement())."""
    gpu = compute == "gpu-cluster"
    out = {
        "serviceAccountName": "pipelines",
        "labels": {"team": "vision-gpu" if gpu else "vision", "cost-center": "4711"},
        "annotations": {"example.com/owner": "vision team"},
        "podSecurityContext": {"fsGroup": 1000},
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True},
        "mounts": {"mlpipe-data": (str(folder / "data"), None)},
        "env": {"AZURE_STORAGE_KEY": ("secretKeyRef", "storage-creds", "account-key")},
    }
    if gpu:
        out.update(
            nodeSelector={"accelerator": "nvidia-tesla-v100"},
            tolerations=[
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {
                    "key": "spot",
                    "operator": "Equal",
                    "value": "true",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            imagePullSecrets=[{"name": "regcred"}],
            priorityClassName="gpu-batch",
        )
        out["mounts"]["model-cache"] = ("/cache", "models")
        out["env"]["TRAIN_REGION"] = ("configMapKeyRef", "training-settings", "region")
    return out


def placement(pod: dict, container_name: str | None = None) -> dict:
    """The placement fields of a rendered pod manifest (labels / annotations: mlpipe's keys only;
    the orchestrators add their own)."""
    spec = pod["spec"]
    containers = spec["containers"]
    container = (
        next(c for c in containers if c["name"] == container_name)
        if container_name
        else containers[0]
    )
    meta = pod.get("metadata") or {}
    keys = ("team", "cost-center")
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    out = {
        "serviceAccountName": spec.get("serviceAccountName"),
        "labels": {k: v for k, v in (meta.get("labels") or {}).items() if k in keys},
        "annotations": {
            k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("example.com/")
        },
        "podSecurityContext": spec.get("securityContext"),
        "securityContext": container.get("securityContext"),
        "mounts": {
            claims[m["name"]]: (m["mountPath"], m.get("subPath"))
            for m in container.get("volumeMounts", [])
            if m["name"] in claims
        },
        "env": {
            e["name"]: next((kind, ref["name"], ref["key"]) for kind, ref in e["valueFrom"].items())
            for e in container.get("env", [])
            if "valueFrom" in e and set(e["valueFrom"]) & {"secretKeyRef", "configMapKeyRef"}
        },
    }
    for key in ("nodeSelector", "tolerations", "imagePullSecrets", "priorityClassName"):
        if spec.get(key):
            out[key] = spec[key]
    return out


def check_resources(container: dict, compute: str) -> None:
    """Requests below the VM's nominal vCPUs and memory; a GPU limit on the GPU compute."""
    cpu, memory = NOMINAL[compute]
    requests = container["resources"]["requests"]
    assert 0 < quantity(str(requests["cpu"])) < cpu, requests
    assert 0 < quantity(str(requests["memory"])) < memory, requests
    if compute == "gpu-cluster":
        assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == "1"


def no_host_path(manifests: dict[str, dict]) -> None:
    text = json.dumps(manifests)
    assert "hostPath" not in text and "host_path" not in text
