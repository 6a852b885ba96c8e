"""`azureml.*` served from mlpipe, so unmodified v1 scripts run without the Azure SDK.

Importing this package installs an import hook: `azureml` and every `azureml.<path>` resolve to
`mlpipe.azureml.<path>` (the same module objects), whose attributes come from `mlpipe.api` by the
table below. A class name mlpipe does not know becomes a stub that fails with a clear "not supported
yet" error at the user's line when it is used — importing it never fails, so a script that only
imports it still captures.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

SDK_VERSION = "1.62.0"

_CORE = [
    "Workspace",
    "Datastore",
    "Dataset",
    "Experiment",
    "Environment",
    "Run",
    "ScriptRunConfig",
    "ComputeTarget",
    "RunConfiguration",
    "Model",
]
_PIPELINE_CORE = [
    "Pipeline",
    "PipelineData",
    "PipelineParameter",
    "StepSequence",
    "PublishedPipeline",
    "PipelineEndpoint",
    "PipelineDraft",
    "PipelineRun",
    "StepRun",
    "Schedule",
    "ScheduleRecurrence",
    "TimeZone",
]
_RUNCONFIG = [
    "RunConfiguration",
    "DockerConfiguration",
    "MpiConfiguration",
    "PyTorchConfiguration",
    "TensorflowConfiguration",
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "CondaDependencies",
    "Environment",
]

_AUTH = [
    "InteractiveLoginAuthentication",
    "ServicePrincipalAuthentication",
    "AzureCliAuthentication",
    "MsiAuthentication",
    "TokenAuthentication",
    "AbstractAuthentication",
]
_EXCEPTIONS = ["ComputeTargetException", "UserErrorException", "AzureMLException"]

# module path (below azureml) -> names it offers from mlpipe.api
MODULES: dict[str, list[str]] = {
    "": [],
    "core": _CORE + ["VERSION"],
    "core.workspace": ["Workspace"],
    "core.datastore": ["Datastore"],
    "core.dataset": ["Dataset"],
    "core.experiment": ["Experiment"],
    "core.environment": ["Environment", "CondaDependencies", "DEFAULT_CPU_IMAGE"],
    "core.run": ["Run"],
    "core.model": ["Model"],
    "core.script_run_config": ["ScriptRunConfig"],
    "core.authentication": _AUTH,
    "core.compute": ["ComputeTarget", "AmlCompute", "ComputeInstance"],
    "core.compute.amlcompute": ["AmlCompute"],
    "core.compute.compute": ["ComputeTarget"],
    "core.compute_target": ["ComputeTargetException", "ComputeTarget"],
    "core.runconfig": _RUNCONFIG,
    "core.conda_dependencies": ["CondaDependencies"],
    "core.exceptions": _EXCEPTIONS,
    "data": ["OutputFileDatasetConfig", "FileDataset", "TabularDataset"],
    "data.datapath": ["DataPath", "DataPathComputeBinding"],
    "data.data_reference": ["DataReference"],
    "data.output_dataset_config": ["OutputFileDatasetConfig", "OutputTabularDatasetConfig"],
    "data.dataset_consumption_config": ["DatasetConsumptionConfig"],
    "data.file_dataset": ["FileDataset"],
    "data.tabular_dataset": ["TabularDataset"],
    "data.dataset_factory": ["Dataset"],
    "pipeline": [],
    "pipeline.core": _PIPELINE_CORE,
    "pipeline.core.graph": ["PipelineParameter", "PipelineData"],
    "pipeline.core.pipeline": ["Pipeline"],
    "pipeline.core.builder": ["StepSequence", "PipelineData"],
    "pipeline.core.run": ["PipelineRun", "StepRun", "StepRunOutput"],
    "pipeline.core.schedule": ["Schedule", "ScheduleRecurrence", "TimeZone"],
    "pipeline.core.published_pipeline": ["PublishedPipeline"],
    "pipeline.core.pipeline_endpoint": ["PipelineEndpoint"],
    "pipeline.core.pipeline_draft": ["PipelineDraft"],
    "pipeline.core.pipeline_output_dataset": [],
    "pipeline.steps": ["PythonScriptStep", "CommandStep"],
    "pipeline.steps.python_script_step": ["PythonScriptStep"],
    "pipeline.steps.command_step": ["CommandStep"],
    "exceptions": _EXCEPTIONS,
    "train": [],
    "train.estimator": [],
    "train.hyperdrive": [],
    "train.automl": [],
    "widgets": ["RunDetails"],
}

_EXTRA: dict[str, dict[str, object]] = {
    "core": {"VERSION": SDK_VERSION},
}


_EXCEPTION_CLASSES: dict[str, type] = {}


def _canonical(path: str) -> str:
    return "mlpipe.azureml" + ("." + path if path else "")


class _CompatModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        path = self.__dict__["_azureml_path"]
        value = _lookup(path, name)
        setattr(self, name, value)
        return value


def _lookup(path: str, name: str):
    extra = _EXTRA.get(path, {})
    if name in extra:
        return extra[name]
    from .. import api

    if name in MODULES.get(path, ()):
        return getattr(api, name)
    sub = f"{path}.{name}" if path else name
    if sub in MODULES:
        return importlib.import_module(_canonical(sub))
    from ..api import unsupported

    if name in unsupported.ALTERNATIVES:
        return getattr(api, name)
    if name[:1].isupper() and name.endswith(("Exception", "Error")):
        # An exception class: `except X:` must work even when mlpipe never raises it.
        from ..api import exceptions

        cls = exceptions.make(name)
        _EXCEPTION_CLASSES.setdefault(name, cls)
        return _EXCEPTION_CLASSES[name]
    if name[:1].isupper():
        # Any other class: importable, failing clearly at the line that uses it.
        return unsupported.make(name)
    raise AttributeError(f"module 'azureml.{path}' has no attribute {name!r} in mlpipe")


class _Loader(importlib.abc.Loader):
    def __init__(self, target: types.ModuleType | None, path: str):
        self._target = target
        self._path = path

    def create_module(self, spec):
        if self._target is not None:
            return self._target
        mod = _CompatModule(spec.name)
        mod.__dict__["_azureml_path"] = self._path
        mod.__path__ = []  # a package, so `import azureml.core.compute` works
        return mod

    def exec_module(self, module):
        return None


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "azureml" or fullname.startswith("azureml."):
            rel = fullname[len("azureml.") :] if fullname != "azureml" else ""
            canonical = importlib.import_module(_canonical(rel)) if rel else sys.modules[__name__]
            return importlib.machinery.ModuleSpec(
                fullname, _Loader(canonical, rel), is_package=True
            )
        if fullname.startswith(__name__ + "."):
            rel = fullname[len(__name__) + 1 :]
            return importlib.machinery.ModuleSpec(fullname, _Loader(None, rel), is_package=True)
        return None


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def __getattr__(name: str):
    return _lookup("", name)


install()
