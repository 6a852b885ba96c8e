"""CommandStep in both forms, feeding a PythonScriptStep.

hello  CommandStep(command=[...list...]): "python hello.py --n <n> --out <greetings> --log <log>",
       with the PipelineParameter n (int, default 3) and the output `greetings` inside the list
shout  CommandStep(command="python shout.py ..."): one string, split like a POSIX shell would
       (shlex), no parameters, no data; also writes the executions log
check  PythonScriptStep reading greetings.as_input(name="greetings"), writes `checked`

Expected data edge: hello -> check. shout is independent.
Every step appends its name to data/executions.log.
"""

import os
import shlex

from azureml.core import Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import CommandStep, PythonScriptStep

ws = Workspace.from_config()

# <datastore root>/executions.log (mlpipe.yaml maps the default datastore to ./data).
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))

n = PipelineParameter(name="n", default_value=3)
greetings = OutputFileDatasetConfig(name="greetings")

hello = CommandStep(
    name="hello",
    command=["python", "hello.py", "--n", n, "--out", greetings, "--log", EXEC_LOG],
    source_directory="hello_src",
    outputs=[greetings],
)

shout = CommandStep(
    name="shout",
    command=f"python shout.py --word 'hello world' --log {shlex.quote(EXEC_LOG)}",
    source_directory="hello_src",
)

checked = OutputFileDatasetConfig(name="checked")
check = PythonScriptStep(
    name="check",
    script_name="check.py",
    source_directory="check_src",
    arguments=[
        "--greetings",
        greetings.as_input(name="greetings"),
        "--out",
        checked,
        "--log",
        EXEC_LOG,
    ],
)

pipeline = Pipeline(workspace=ws, steps=[hello, shout, check])
