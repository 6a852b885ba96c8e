"""Bad input: a cycle made of order edges (a after b, b after a)."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

step_a = PythonScriptStep(name="a", script_name="step.py", source_directory="src")
step_b = PythonScriptStep(name="b", script_name="step.py", source_directory="src")

step_a.run_after(step_b)
step_b.run_after(step_a)

pipeline = Pipeline(workspace=ws, steps=[step_a, step_b])
