"""Run history across steps: train -> evaluate -> register, where evaluate cancels the run.

train logs a metric and a tag on the pipeline run (run.parent), tags its own run and writes
outputs/ and logs/ in its working folder plus an uploaded file. evaluate reads the pipeline run's
metrics and tags (written by train, possibly on another machine), records what it saw, and calls
run.parent.cancel() when the accuracy is below `threshold`. register must then never run, and the
run must end canceled, not failed. Every script appends its step name to data/executions.log.
"""

import os

from azureml.core import Experiment, Workspace
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()
DATA = os.path.abspath("data")

threshold = PipelineParameter("threshold", default_value=0.5)
verdict = PipelineData("verdict", datastore=datastore)

train = PythonScriptStep(
    name="train",
    script_name="train.py",
    source_directory="src",
    arguments=["--data", DATA],
    allow_reuse=False,
)
evaluate = PythonScriptStep(
    name="evaluate",
    script_name="evaluate.py",
    source_directory="src",
    arguments=["--data", DATA, "--threshold", threshold, "--out", verdict],
    outputs=[verdict],
    allow_reuse=False,
)
evaluate.run_after(train)
register = PythonScriptStep(
    name="register",
    script_name="register.py",
    source_directory="src",
    arguments=["--data", DATA, "--verdict", verdict],
    inputs=[verdict],
    allow_reuse=False,
)

pipeline = Pipeline(workspace=ws, steps=[train, evaluate, register])
Experiment(ws, "run_history").submit(pipeline)
