"""Fan-out / fan-in built in a loop, with typed pipeline parameters.

split -> work_0 .. work_3 (each reads split's output, writes its own OutputFileDatasetConfig)
      -> merge (reads all four partial outputs)

Parameters (name, type, default): epochs int 3, lr float 0.1, shuffle bool False, mode str "fast".
They reach the scripts through `arguments` (as str(value)) and through `params`
(as environment variables AML_PARAMETER_<name>), and every output depends on them, so an override
such as epochs=5 is visible in merge's merged.json.

Expected data edges: split -> work_i (i = 0..3), work_i -> merge. No order-only edges.
Every step appends its name to data/executions.log.
"""

import os

from azureml.core import Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

# <datastore root>/executions.log (mlpipe.yaml maps the default datastore to ./data).
EXEC_LOG = os.path.abspath(os.path.join("data", "executions.log"))
N_WORKERS = 4

epochs = PipelineParameter(name="epochs", default_value=3)
lr = PipelineParameter(name="lr", default_value=0.1)
shuffle = PipelineParameter(name="shuffle", default_value=False)
mode = PipelineParameter(name="mode", default_value="fast")

shards = OutputFileDatasetConfig(name="shards")
split = PythonScriptStep(
    name="split",
    script_name="split.py",
    source_directory="split_src",
    arguments=["--parts", N_WORKERS, "--mode", mode, "--out", shards, "--log", EXEC_LOG],
)

workers = []
partials = []
for i in range(N_WORKERS):
    partial = OutputFileDatasetConfig(name=f"partial_{i}")
    worker = PythonScriptStep(
        name=f"work_{i}",
        script_name="work.py",
        source_directory="work_src",
        arguments=[
            "--shards",
            shards.as_input(name="shards"),
            "--index",
            i,
            "--epochs",
            epochs,
            "--lr",
            lr,
            "--out",
            partial,
            "--log",
            EXEC_LOG,
        ],
        params={"shuffle": shuffle, "mode": mode},
    )
    workers.append(worker)
    partials.append(partial)

merged = OutputFileDatasetConfig(name="merged")
merge_args = ["--out", merged, "--epochs", epochs, "--log", EXEC_LOG]
for i, partial in enumerate(partials):
    merge_args += ["--part", partial.as_input(name=f"part_{i}")]

merge = PythonScriptStep(
    name="merge",
    script_name="merge.py",
    source_directory="merge_src",
    arguments=merge_args,
    params={"mode": mode, "shuffle": shuffle},
)

pipeline = Pipeline(workspace=ws, steps=[split, workers, merge])
