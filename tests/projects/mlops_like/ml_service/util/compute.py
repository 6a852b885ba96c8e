"""Find the training cluster, or provision it."""

from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.exceptions import ComputeTargetException


def find_or_create_compute(workspace, name: str, vm_size: str, max_nodes: int = 2):
    try:
        if name in workspace.compute_targets:
            return workspace.compute_targets[name]
        config = AmlCompute.provisioning_configuration(
            vm_size=vm_size, vm_priority="lowpriority", min_nodes=0, max_nodes=max_nodes
        )
        target = ComputeTarget.create(workspace, name, config)
        target.wait_for_completion(show_output=True)
        return target
    except ComputeTargetException as exc:
        print("could not provision the compute:", exc)
        raise
