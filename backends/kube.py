"""Kubernetes resource values as every backend writes them into pod specs and job variables, so
one compute target asks for the same resources whichever orchestrator runs it."""

from __future__ import annotations

# Kubernetes' extended resource name for the catalogue's (NVIDIA) GPUs.
GPU_RESOURCE = "nvidia.com/gpu"


def cpu_quantity(cpu: float) -> str:
    """A Kubernetes CPU quantity: whole cores as `6`, fractions in millicores (`1500m`)."""
    if float(cpu).is_integer():
        return str(int(cpu))
    return f"{round(cpu * 1000)}m"


def memory_quantity(gib: float) -> str:
    """A Kubernetes memory quantity: whole GiB as `112Gi`, else MiB (`3584Mi`)."""
    if float(gib).is_integer():
        return f"{int(gib)}Gi"
    return f"{round(gib * 1024)}Mi"
