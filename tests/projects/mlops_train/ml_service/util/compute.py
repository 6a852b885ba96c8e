"""The training cluster: reuse it when the workspace has it, else provision it."""

from __future__ import annotations

from azureml.core import Workspace
from azureml.core.compute import AmlCompute, ComputeTarget


def get_compute(workspace: Workspace, name: str, vm_size: str, max_nodes: int) -> ComputeTarget:
    if name in workspace.compute_targets:
        print(f"using the existing compute target {name}")
        return workspace.compute_targets[name]
    config = AmlCompute.provisioning_configuration(
        vm_size=vm_size, vm_priority="lowpriority", min_nodes=0, max_nodes=max_nodes
    )
    target = ComputeTarget.create(workspace, name, config)
    target.wait_for_completion(show_output=True, timeout_in_minutes=10)
    return target
