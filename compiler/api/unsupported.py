"""v1 classes mlpipe does not support yet: importable, and failing clearly where they are used."""

from __future__ import annotations

from ..errors import NotSupportedError
from ._session import current

# class name -> what to use instead ("" when mlpipe has no equivalent yet)
ALTERNATIVES = {
    "ParallelRunStep": "a fan-out of PythonScriptStep steps built in a loop, each on a slice of the data",
    "ParallelRunConfig": "a fan-out of PythonScriptStep steps built in a loop",
    "HyperDriveStep": "a fan-out of PythonScriptStep steps, one per hyperparameter set, plus a step comparing them",
    "HyperDriveConfig": "a fan-out of PythonScriptStep steps, one per hyperparameter set",
    "AutoMLStep": "a PythonScriptStep that trains with a library such as FLAML or scikit-learn",
    "AutoMLConfig": "a PythonScriptStep that trains with a library such as FLAML or scikit-learn",
    "AutoMLPipelineBuilder": "PythonScriptStep steps",
    "DatabricksStep": "a PythonScriptStep, or the orchestrator's own Databricks operator",
    "DataTransferStep": "a PythonScriptStep that copies with fsspec between the datastores",
    "AdlaStep": "",
    "KustoStep": "",
    "AzureBatchStep": "",
    "ModuleStep": "PythonScriptStep",
    "Module": "PythonScriptStep",
    "NotebookRunnerStep": "a PythonScriptStep running the notebook's code exported as a script",
    "SynapseSparkStep": "",
    "EstimatorStep": "PythonScriptStep (or CommandStep with a ScriptRunConfig)",
    "MpiStep": "CommandStep(runconfig=ScriptRunConfig(..., distributed_job_config=MpiConfiguration(...)))",
    "Estimator": "ScriptRunConfig",
    "RScriptStep": "CommandStep(command=['Rscript', 'script.R'])",
}


def make(name: str) -> type:
    alternative = ALTERNATIVES.get(name, "")

    def __init__(self, *args, **kwargs):
        hint = (
            f"; use {alternative} instead" if alternative else "; there is no mlpipe equivalent yet"
        )
        raise NotSupportedError(f"{name} is not supported yet{hint}", current().origin())

    return type(name, (), {"__init__": __init__, "__doc__": f"Not supported yet: {name}."})
