"""A step that fails with exit code 3, and a branch that must still finish.

    a -> b -> c      (data edges through OutputFileDatasetConfig)
    x                (independent)

b reads b_src/mode.txt (a file in its own source folder): "fail" (as committed) makes it print
"b: failing on purpose: b_src/mode.txt says 'fail'" to stderr and exit with status 3; "ok" makes it
succeed. Expected with "fail": a and x complete, b fails, c does not run, the run fails.
After a test writes "ok" into b_src/mode.txt: a and x are reused, b and c run.
Every script appends its step name to data/executions.log.
"""

import os

from azureml.core import Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

# <datastore root>/executions.log (mlpipe.yaml maps the default datastore to ./data).
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))

a_out = OutputFileDatasetConfig(name="a_out")
b_out = OutputFileDatasetConfig(name="b_out")
c_out = OutputFileDatasetConfig(name="c_out")
x_out = OutputFileDatasetConfig(name="x_out")

step_a = PythonScriptStep(
    name="a",
    script_name="a.py",
    source_directory="a_src",
    arguments=["--out", a_out, "--log", EXEC_LOG],
)
step_b = PythonScriptStep(
    name="b",
    script_name="b.py",
    source_directory="b_src",
    arguments=["--input", a_out.as_input(name="a_in"), "--out", b_out, "--log", EXEC_LOG],
)
step_c = PythonScriptStep(
    name="c",
    script_name="c.py",
    source_directory="c_src",
    arguments=["--input", b_out.as_input(name="b_in"), "--out", c_out, "--log", EXEC_LOG],
)
step_x = PythonScriptStep(
    name="x",
    script_name="x.py",
    source_directory="x_src",
    arguments=["--out", x_out, "--log", EXEC_LOG],
)

pipeline = Pipeline(workspace=ws, steps=[step_a, step_b, step_c, step_x])
