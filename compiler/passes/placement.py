"""Where a step's pod goes and what it asks for, worked out once for every target.

The merge rule (mlpipe.yaml `kubernetes:` is the workspace level, `computes: NAME:` the compute
level; docs/architecture.md):
- maps (node_selector) merge key by key, the compute's value winning;
- lists (tolerations, image_pull_secrets) are the workspace's followed by the compute's, each
  item once;
- single values (namespace, service_account, default_image) are the compute's, else the
  workspace's.

Resources leave the node headroom: a VM size's nominal vCPUs and memory are what the machine
has, not what Kubernetes can give one pod (the kubelet, system daemons and the eviction threshold
keep part of it), so a request of the nominal amount never schedules.
- CPU request: 90% of the vCPUs, and at least 0.2 cores below them; no CPU limit (a limit only
  throttles a step that could use idle cores);
- memory request: the VM's memory minus what AKS reserves for the kubelet (25% of the first
  4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2% above), minus the 0.75 GiB
  eviction threshold, minus 10% for daemon sets; the memory limit equals the request, so a step
  that needs more is stopped (OOM) instead of starving its neighbours;
- GPUs: a limit of the VM's GPU count (Kubernetes requires extended resources as limits).
"""

from __future__ import annotations

import math

from ..ir import Compute, KubernetesPlacement, PipelineIR, Step

# Kubernetes' extended resource name for the catalogue's (NVIDIA) GPUs.
GPU_RESOURCE = "nvidia.com/gpu"
# AKS kube-reserved memory: (GiB of the node in this tier, share reserved)
_RESERVED_TIERS = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02))
EVICTION_GIB = 0.75
DAEMONSET_SHARE = 0.10


def merge(
    workspace: KubernetesPlacement, compute: KubernetesPlacement | None
) -> KubernetesPlacement:
    """The compute's placement over the workspace's (the rule in the module docstring)."""
    own = compute or KubernetesPlacement()

    def union(a: list, b: list) -> list:
        out = []
        for item in [*a, *b]:
            if item not in out:
                out.append(item)
        return out

    return KubernetesPlacement(
        default_image=own.default_image or workspace.default_image,
        namespace=own.namespace or workspace.namespace,
        service_account=own.service_account or workspace.service_account,
        node_selector=dict(sorted({**workspace.node_selector, **own.node_selector}.items())),
        tolerations=union(workspace.tolerations, own.tolerations),
        image_pull_secrets=union(workspace.image_pull_secrets, own.image_pull_secrets),
    )


def compute_of(pipeline: PipelineIR, step: Step) -> Compute | None:
    if not step.compute:
        return None
    try:
        return pipeline.compute(step.compute)
    except KeyError:
        return None


def merged_placement(pipeline: PipelineIR, compute: Compute | None) -> KubernetesPlacement:
    return merge(pipeline.kubernetes, compute.kubernetes if compute is not None else None)


def cpu_request(cpu: float) -> float:
    return max(0.1, min(cpu * 0.9, cpu - 0.2))


def memory_request_gib(gib: float) -> float:
    reserved, left = 0.0, gib
    for size, share in _RESERVED_TIERS:
        part = min(left, size)
        reserved += part * share
        left -= part
        if left <= 0:
            break
    return max(0.25, (gib - reserved - EVICTION_GIB) * (1 - DAEMONSET_SHARE))


def cpu_quantity(cpu: float) -> str:
    """A Kubernetes CPU quantity: whole cores as `6`, else millicores rounded down (`5400m`)."""
    milli = math.floor(round(cpu * 1000, 6))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(gib: float) -> str:
    """A Kubernetes memory quantity: whole GiB as `8Gi`, else MiB rounded down (`94829Mi`)."""
    mib = math.floor(round(gib * 1024, 6))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def pod_resources(compute: Compute | None) -> dict[str, dict[str, str]]:
    """{"requests": {...}, "limits": {...}} for a pod on `compute` (empty dicts without one)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if compute is not None:
        if compute.cpu:
            requests["cpu"] = cpu_quantity(cpu_request(compute.cpu))
        if compute.memory_gib:
            memory = memory_quantity(memory_request_gib(compute.memory_gib))
            requests["memory"] = limits["memory"] = memory
        if compute.gpu_count:
            limits[GPU_RESOURCE] = str(compute.gpu_count)
    return {"requests": requests, "limits": limits}
