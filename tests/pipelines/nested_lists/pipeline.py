"""Nested step lists and a StepSequence inside the Pipeline's step list.

    Pipeline(steps=[[s1, s2], s3, StepSequence(steps=[[seq_a, seq_b], seq_c, seq_d])])

A (nested) list is a group with no order among its members, so s1, s2, s3 have no edges. A
StepSequence orders its items: every step of an item runs after every step of the item before it.

Expected order edges (no data edges at all):
    seq_a -> seq_c, seq_b -> seq_c, seq_c -> seq_d
Every step appends its name to data/executions.log.
"""

import os

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, StepSequence
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

# <datastore root>/executions.log (mlpipe.yaml maps the default datastore to ./data).
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))


def make_step(name):
    return PythonScriptStep(
        name=name,
        script_name="step.py",
        source_directory="src",
        arguments=["--name", name, "--log", EXEC_LOG],
    )


s1 = make_step("s1")
s2 = make_step("s2")
s3 = make_step("s3")
seq_a = make_step("seq_a")
seq_b = make_step("seq_b")
seq_c = make_step("seq_c")
seq_d = make_step("seq_d")

sequence = StepSequence(steps=[[seq_a, seq_b], seq_c, seq_d])
pipeline = Pipeline(workspace=ws, steps=[[s1, s2], s3, sequence])
