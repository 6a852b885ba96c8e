"""Bad input: ParallelRunStep, which mlpipe does not support yet.

Importing it must work; the error belongs to the line that uses it. ParallelRunConfig is built on
the same line so that the line is the same whichever of the two classes mlpipe rejects first.
"""

from azureml.core import Dataset, Environment, Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

ws = Workspace.from_config()
datastore = ws.get_default_datastore()
images = Dataset.File.from_files([(datastore, "images/")]).as_named_input("images")
scores = OutputFileDatasetConfig(name="scores")
env = Environment.get(workspace=ws, name="AzureML-sklearn-0.24-ubuntu18.04-py37-cpu")
settings = dict(
    environment=env,
    entry_script="step.py",
    source_directory="src",
    error_threshold=5,
    output_action="append_row",
    compute_target=ws.compute_targets["cpu-cluster"],
    node_count=2,
    mini_batch_size="10",
)

score = ParallelRunStep(name="score", parallel_run_config=ParallelRunConfig(**settings), inputs=[images], output=scores)  # fmt: skip

pipeline = Pipeline(workspace=ws, steps=[score])
