"""PipelineData chain a -> b -> c where the Pipeline lists only the last step.

The Pipeline is built from `step_d` alone. `d.run_after(c)` pulls in `c` (order edge, no data), and
the data `c` consumes pulls in its producers `b` and `a` (resolve_closure defaults to True).
PipelineData is consumed three ways: `as_input(name)` (mount), `as_download(input_name=...)`, and
the plain object listed in `inputs`.

Expected graph:  a -> b (numbers), a -> c (numbers), b -> c (squares), c -> d (run_after only)
Every script appends its step name to data/executions.log (the default datastore's folder).
"""

import os

from azureml.core import Experiment, Workspace
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()

# The capture runs this file with its own folder as the working directory; mlpipe.yaml maps the
# default datastore to ./data, so this is <datastore root>/executions.log.
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))

numbers = PipelineData("numbers", datastore=datastore)
squares = PipelineData("squares", datastore=datastore)
result = PipelineData("result", datastore=datastore)
marker = PipelineData("marker", datastore=datastore)

step_a = PythonScriptStep(
    name="a",
    script_name="make_numbers.py",
    source_directory="src",
    arguments=["--out", numbers, "--count", 10, "--log", EXEC_LOG],
    outputs=[numbers],
)

numbers_in = numbers.as_input("numbers_in")
step_b = PythonScriptStep(
    name="b",
    script_name="square.py",
    source_directory="src",
    arguments=["--numbers", numbers_in, "--out", squares, "--log", EXEC_LOG],
    inputs=[numbers_in],
    outputs=[squares],
)

squares_dl = squares.as_download(input_name="squares_dl")
step_c = PythonScriptStep(
    name="c",
    script_name="combine.py",
    source_directory="src",
    arguments=["--numbers", numbers, "--squares", squares_dl, "--out", result, "--log", EXEC_LOG],
    inputs=[numbers, squares_dl],
    outputs=[result],
)

step_d = PythonScriptStep(
    name="d",
    script_name="finish.py",
    source_directory="src",
    arguments=["--out", marker, "--log", EXEC_LOG],
    outputs=[marker],
)
step_d.run_after(step_c)

pipeline = Pipeline(workspace=ws, steps=[step_d])

run = Experiment(ws, "chain_closure").submit(pipeline)
run.wait_for_completion()
