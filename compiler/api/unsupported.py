"""v1 classes mlpipe does not support yet: importable, and failing clearly where they are used.

Step types are also found before anything runs (`find_unsupported_steps`), so a file that builds
one fails naming the step type even when something else in it (a datastore only Azure knows, a
compute that cannot be attached) would have stopped the capture first.
"""

from __future__ import annotations

import ast

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
    "DataTransferStep": "a PythonScriptStep that copies with fsspec between the datastores, or an OutputFileDatasetConfig destination on the target datastore",
    "AdlaStep": "",
    "KustoStep": "a PythonScriptStep that queries Kusto with the azure-kusto-data client",
    "AzureBatchStep": "a CommandStep running the executable",
    "ModuleStep": "PythonScriptStep",
    "Module": "PythonScriptStep",
    "NotebookRunnerStep": "a PythonScriptStep running the notebook's code exported as a script",
    "SynapseSparkStep": "",
    "EstimatorStep": "PythonScriptStep (or CommandStep with a ScriptRunConfig)",
    "MpiStep": "CommandStep(runconfig=ScriptRunConfig(..., distributed_job_config=MpiConfiguration(...)))",
    "Estimator": "ScriptRunConfig",
    "RScriptStep": "CommandStep(command=['Rscript', 'script.R'])",
}

# The v1 step types (and step builders) a pipeline cannot contain in mlpipe.
STEP_TYPES = frozenset(
    {
        "ParallelRunStep",
        "AutoMLStep",
        "HyperDriveStep",
        "DatabricksStep",
        "DataTransferStep",
        "AdlaStep",
        "KustoStep",
        "AzureBatchStep",
        "ModuleStep",
        "NotebookRunnerStep",
        "SynapseSparkStep",
        "EstimatorStep",
        "MpiStep",
        "AutoMLPipelineBuilder",
        "RScriptStep",
    }
)


def message(name: str) -> str:
    alternative = ALTERNATIVES.get(name, "")
    hint = f"; use {alternative} instead" if alternative else "; there is no mlpipe equivalent yet"
    return f"{name} is not supported yet{hint}"


def make(name: str) -> type:
    known = name in ALTERNATIVES

    def __init__(self, *args, **kwargs):
        error = NotSupportedError(message(name), current().origin())
        # A class mlpipe knows nothing about (a model registry, a web service...) used after the
        # pipeline was submitted cannot change what was captured: capture only warns then.
        error.harmless_after_submit = not known
        raise error

    return type(name, (), {"__init__": __init__, "__doc__": f"Not supported yet: {name}."})


def find_unsupported_steps(sources: list[str]) -> list[tuple[int, int, str]]:
    """(source index, line, class name) of every call that builds an unsupported step type,
    where the name comes from an `azureml` import (or is reached through an azureml module)."""
    trees = []
    for text in sources:
        try:
            trees.append(ast.parse(text))
        except (SyntaxError, ValueError):
            trees.append(None)
    names: dict[str, str] = {}  # local name -> the unsupported azureml step type it is bound to
    modules: set[str] = set()  # local names bound to an azureml module
    for tree in trees:
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "azureml":
                for alias in node.names:
                    if alias.name in STEP_TYPES:
                        names[alias.asname or alias.name] = alias.name
                    else:
                        modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "azureml":
                        modules.add(alias.asname or alias.name.split(".")[0])
    found = []
    for index, tree in enumerate(trees):
        for node in ast.walk(tree) if tree is not None else ():
            if not isinstance(node, ast.Call):
                continue
            step = _called_step(node.func, names, modules)
            if step is not None:
                found.append((index, node.lineno, step))
    return sorted(set(found))


def _called_step(func, names: dict[str, str], modules: set[str]) -> str | None:
    if isinstance(func, ast.Name) and func.id in names:
        return names[func.id]
    if isinstance(func, ast.Attribute):
        # azureml.pipeline.steps.DataTransferStep(...) / steps.DataTransferStep(...)
        if func.attr in STEP_TYPES and _root(func.value) in modules:
            return func.attr
        # AutoMLPipelineBuilder.get_many_models_train_steps(...)
        if isinstance(func.value, ast.Name) and func.value.id in names:
            return names[func.value.id]
    return None


def _root(node) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None
