"""A StepSequence given directly as the Pipeline's steps, with a parallel group in the middle.

    Pipeline(steps=StepSequence(steps=[first, [left, right], last]))

Expected order edges: first -> left, first -> right, left -> last, right -> last.
Uses the same source folder and datastore as pipeline.py next to it.
"""

import os

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, StepSequence
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))

steps = {}
for name in ("first", "left", "right", "last"):
    steps[name] = PythonScriptStep(
        name=name,
        script_name="step.py",
        source_directory="src",
        arguments=["--name", name, "--log", EXEC_LOG],
    )

sequence = StepSequence(steps=[steps["first"], [steps["left"], steps["right"]], steps["last"]])
pipeline = Pipeline(workspace=ws, steps=sequence)
