"""Bad input: provisioning a cluster with a vm_size that is not in the catalogue."""

from azureml.core import Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

compute_name = "toaster-cluster"
if compute_name in ws.compute_targets:
    compute_target = ws.compute_targets[compute_name]
else:
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_TOASTER_V9", max_nodes=2)
    compute_target = ComputeTarget.create(ws, compute_name, config)
    compute_target.wait_for_completion(show_output=True)

step = PythonScriptStep(
    name="train", script_name="step.py", source_directory="src", compute_target=compute_target
)
pipeline = Pipeline(workspace=ws, steps=[step])
