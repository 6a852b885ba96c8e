"""Where a step's pod goes and what it asks for, worked out once for every target.

The merge rule (mlpipe.yaml `kubernetes:` is the workspace level, `computes: NAME:` the compute
level; docs/architecture.md):
- maps (node_selector, labels, annotations, security_context, pod_security_context) merge key
  by key, the compute's value winning;
- lists (tolerations, image_pull_secrets, volumes, env_from) are the workspace's followed by the
  compute's, each item once; an env_from variable the compute also sets is the compute's;
- single values (namespace, service_account, priority_class, default_image) are the compute's,
  else the workspace's.

`pod_placement` turns the merged placement into Kubernetes' own field names once, so that every
target puts the same fields on its pods. A datastore that is a local path is reached in a pod only
through a PersistentVolumeClaim mounted at that path (`volumes: - {name, claim, datastore}` in the
workspace-level `kubernetes:`); without one it is a compile error (`kubernetes_problems`), never a
hostPath (forbidden by Pod Security "baseline", and another node's disk).

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

from ..errors import Problem
from ..ir import (
    Compute,
    DataPath,
    DataPathSource,
    DatasetSource,
    KubernetesPlacement,
    PipelineIR,
    Step,
)

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

    def mapping(name: str) -> dict:
        return dict(sorted({**getattr(workspace, name), **getattr(own, name)}.items()))

    return KubernetesPlacement(
        default_image=own.default_image or workspace.default_image,
        namespace=own.namespace or workspace.namespace,
        service_account=own.service_account or workspace.service_account,
        priority_class=own.priority_class or workspace.priority_class,
        node_selector=mapping("node_selector"),
        labels=mapping("labels"),
        annotations=mapping("annotations"),
        security_context=mapping("security_context"),
        pod_security_context=mapping("pod_security_context"),
        tolerations=union(workspace.tolerations, own.tolerations),
        image_pull_secrets=union(workspace.image_pull_secrets, own.image_pull_secrets),
        volumes=union(workspace.volumes, own.volumes),
        env_from=union(
            [e for e in workspace.env_from if e["env"] not in {o["env"] for o in own.env_from}],
            own.env_from,
        ),
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


# ------------------------------------------------------------------------- pod fields


def toleration(tol: dict) -> dict:
    """A toleration as Kubernetes writes it (tolerationSeconds a number)."""
    out = {k: v for k, v in tol.items() if k != "tolerationSeconds"}
    if tol.get("tolerationSeconds") not in (None, ""):
        out["tolerationSeconds"] = int(str(tol["tolerationSeconds"]))
    return out


def pod_placement(pipeline: PipelineIR, compute: Compute | None) -> dict:
    """The merged placement in Kubernetes' field names: {"namespace", "metadata": {labels,
    annotations}, "spec": {pod spec fields}, "container": {container fields}}; absent = unset."""
    merged = merged_placement(pipeline, compute)
    spec: dict = {
        "serviceAccountName": merged.service_account,
        "priorityClassName": merged.priority_class,
        "nodeSelector": dict(merged.node_selector) or None,
        "tolerations": [toleration(t) for t in merged.tolerations] or None,
        "imagePullSecrets": [{"name": s} for s in merged.image_pull_secrets] or None,
        "securityContext": dict(merged.pod_security_context) or None,
        "volumes": [
            {"name": v["name"], "persistentVolumeClaim": {"claimName": v["claim"]}}
            for v in merged.volumes
        ]
        or None,
    }
    container: dict = {
        "securityContext": dict(merged.security_context) or None,
        "volumeMounts": [_mount(pipeline, v) for v in merged.volumes] or None,
        "env": [_env_from(e) for e in merged.env_from] or None,
    }
    metadata = {
        "labels": dict(merged.labels) or None,
        "annotations": dict(merged.annotations) or None,
    }
    return {
        "namespace": merged.namespace,
        "metadata": _set(metadata),
        "spec": _set(spec),
        "container": _set(container),
    }


def _set(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def volume_mount_path(pipeline: PipelineIR, volume: dict) -> str:
    """Where a volume is mounted: its mount_path, or its datastore's own path."""
    if "datastore" in volume:
        return local_path(pipeline.datastore(volume["datastore"]).url) or ""
    return volume["mount_path"]


def _mount(pipeline: PipelineIR, volume: dict) -> dict:
    out = {"name": volume["name"], "mountPath": volume_mount_path(pipeline, volume)}
    if volume.get("sub_path"):
        out["subPath"] = volume["sub_path"]
    return out


def _env_from(item: dict) -> dict:
    if "secret" in item:
        ref = {"secretKeyRef": {"name": item["secret"], "key": item["key"]}}
    else:
        ref = {"configMapKeyRef": {"name": item["config_map"], "key": item["key"]}}
    return {"name": item["env"], "valueFrom": ref}


# ------------------------------------------------------------------------- datastores


def local_path(url: str) -> str | None:
    """The datastore's local path, or None for an fsspec URL (reached from anywhere)."""
    if url.startswith("file://"):
        return url[len("file://") :]
    return None if "://" in url else url


def used_datastores(pipeline: PipelineIR) -> list[str]:
    """The default datastore and every datastore a step reads or writes, in a stable order."""
    names = {pipeline.default_datastore}
    for p in pipeline.parameters:
        names |= _datastores_in(p.model_dump(mode="json")["default"])
    for s in pipeline.steps:
        names |= {o.datastore for o in s.outputs}
        for i in s.inputs:
            src = i.source
            if isinstance(src, DatasetSource):
                names |= {x.datastore for x in src.dataset.paths if isinstance(x, DataPath)}
            elif isinstance(src, DataPathSource):
                names.add(src.path.datastore)
            # ParameterSource: the parameter's default is covered above
    for sched in pipeline.schedules:
        if sched.datastore_trigger is not None:
            names.add(sched.datastore_trigger.datastore)
    return sorted(names)


def _datastores_in(value) -> set[str]:
    if isinstance(value, dict):
        found = {value["datastore"]} if value.get("kind") == "datapath" else set()
        for v in value.values():
            found |= _datastores_in(v)
        return found
    if isinstance(value, list):
        return set().union(*(_datastores_in(v) for v in value)) if value else set()
    return set()


def kubernetes_problems(pipeline: PipelineIR) -> list[Problem]:
    """What no target can run as pods: a local-path datastore without a volume, volumes that
    name an unknown datastore, two volumes of one pod with the same name or mount path."""
    file, line = (
        (pipeline.origin.file, pipeline.origin.line)
        if pipeline.origin
        else (pipeline.source_file, None)
    )
    problems: list[Problem] = []
    known = {d.name: d.url for d in pipeline.datastores}
    mapped = {v["datastore"] for v in pipeline.kubernetes.volumes if "datastore" in v}
    for name in sorted(mapped):
        if name not in known or local_path(known[name]) is None:
            problems.append(
                Problem(
                    file,
                    line,
                    f"mlpipe.yaml kubernetes: volumes: datastore {name!r} is not a datastore with a local path; map only local-path datastores (URLs are reached through fsspec)",
                )
            )
    for name in used_datastores(pipeline):
        path = local_path(known.get(name, "://"))
        if path is not None and name not in mapped:
            problems.append(
                Problem(
                    file,
                    line,
                    f"datastore {name!r} is the local path {path}, which a pod cannot reach: map it to "
                    "a PersistentVolumeClaim in mlpipe.yaml (kubernetes: volumes: - {name: data, "
                    f"claim: <pvc>, datastore: {name}}}, mounted at that path), or make it an "
                    "object-store URL (docs/architecture.md)",
                )
            )
    for compute in [None, *pipeline.computes]:
        merged = merged_placement(pipeline, compute).volumes
        for field in ("name", "mount"):
            seen = [
                v["name"] if field == "name" else volume_mount_path(pipeline, v)
                for v in merged
                if v.get("datastore", "") in known or "mount_path" in v
            ]
            dup = sorted({x for x in seen if seen.count(x) > 1})
            if dup:
                where = f"compute {compute.name!r}" if compute else "kubernetes"
                problems.append(
                    Problem(
                        file,
                        line,
                        f"{where}: two volumes with the {field} {dup[0]!r} in one pod; give each volume its own name and mount path",
                    )
                )
    problems.extend(_env_clashes(pipeline))
    return problems


# Set by the step runtime in the step's process, so a pod variable of that name never arrives.
_RUNTIME_PREFIXES = ("MLPIPE_", "AZUREML_", "AML_PARAMETER_")
_RUNTIME_NAMES = ("PATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED")


def _env_clashes(pipeline: PipelineIR) -> list[Problem]:
    """env_from variables a step would never see: the runtime or the step's environment sets a
    variable of the same name in the step's process, after the pod's own environment."""
    problems = []
    for step in pipeline.steps:
        names = {e["env"] for e in merged_placement(pipeline, compute_of(pipeline, step)).env_from}
        env = pipeline.environment_of(step)
        own = {*(env.env_vars if env else {}), *step.env_vars}
        for name in sorted(names):
            if name in own or name.startswith(_RUNTIME_PREFIXES) or name in _RUNTIME_NAMES:
                by = "the step's environment variables" if name in own else "mlpipe's step runtime"
                where = step.origin or pipeline.origin
                problems.append(
                    Problem(
                        where.file if where else pipeline.source_file,
                        where.line if where else None,
                        f"step {step.name!r}: mlpipe.yaml env_from sets {name!r}, which {by} "
                        "also set, so the step would never see the secret / config map value: "
                        "rename the env_from variable",
                    )
                )
    return problems
