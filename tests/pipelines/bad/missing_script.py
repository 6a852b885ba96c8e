"""Bad input: script_name does not exist under source_directory (src/ holds only step.py)."""

from azureml.core import Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

prep = PythonScriptStep(name="prep", script_name="step.py", source_directory="src")
train = PythonScriptStep(name="train", script_name="no_such_script.py", source_directory="src")

pipeline = Pipeline(workspace=ws, steps=[prep, train])
