"""Bad input: HyperDriveStep, which mlpipe does not support yet.

Importing it must work; the error belongs to the line that uses it. (Real code builds the config
with azureml.train.hyperdrive; it is left out so that nothing else can fail first.)
"""

from azureml.core import Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import HyperDriveStep, PythonScriptStep

ws = Workspace.from_config()

prepped = OutputFileDatasetConfig(name="prepped")
prep = PythonScriptStep(
    name="prep", script_name="step.py", source_directory="src", arguments=["--out", prepped]
)
hyperdrive_config = None

tune = HyperDriveStep(
    name="tune", hyperdrive_config=hyperdrive_config, inputs=[prepped.as_input(name="prepped")]
)

pipeline = Pipeline(workspace=ws, steps=[prep, tune])
