"""mlpipe's authoring API: the Azure ML SDK v1 pipeline classes under their v1 names.

`from mlpipe.api import PythonScriptStep` (or `from mlpipe import ...`) is the native spelling;
`azureml.*` imports are served from the same classes by `mlpipe.azureml`.
"""

from .auth import (
    AbstractAuthentication,
    AzureCliAuthentication,
    InteractiveLoginAuthentication,
    MsiAuthentication,
    ServicePrincipalAuthentication,
    TokenAuthentication,
)
from .data import (
    AbstractDataset,
    DataPath,
    DataPathComputeBinding,
    DataReference,
    Dataset,
    DatasetConsumptionConfig,
    FileDataset,
    OutputFileDatasetConfig,
    OutputTabularDatasetConfig,
    PipelineData,
    TabularDataset,
)
from .environment import (
    DEFAULT_CPU_IMAGE,
    DEFAULT_GPU_IMAGE,
    CondaDependencies,
    DockerConfiguration,
    Environment,
    RunConfiguration,
)
from .exceptions import AzureMLException, UserErrorException
from .model import Model
from .pipeline import (
    CommandStep,
    Experiment,
    Pipeline,
    PipelineDraft,
    PipelineEndpoint,
    PipelineParameter,
    PipelineRun,
    PublishedPipeline,
    PythonScriptStep,
    Schedule,
    ScheduleRecurrence,
    StepRun,
    StepRunOutput,
    StepSequence,
    TimeZone,
)
from .run_config import (
    MpiConfiguration,
    PyTorchConfiguration,
    ScriptRunConfig,
    TensorflowConfiguration,
)
from .unsupported import ALTERNATIVES as _UNSUPPORTED
from .unsupported import make as _make_unsupported
from .widgets import RunDetails
from .workspace import (
    AmlCompute,
    ComputeInstance,
    ComputeTarget,
    ComputeTargetException,
    Datastore,
    Workspace,
)


def __getattr__(name: str):
    if name == "Run":
        from ..runtime.context import Run

        return Run
    if name in _UNSUPPORTED:
        cls = _make_unsupported(name)
        globals()[name] = cls
        return cls
    raise AttributeError(f"module 'mlpipe.api' has no attribute {name!r}")


__all__ = [
    "AbstractAuthentication",
    "AbstractDataset",
    "AzureCliAuthentication",
    "AzureMLException",
    "InteractiveLoginAuthentication",
    "MsiAuthentication",
    "PipelineDraft",
    "RunDetails",
    "ServicePrincipalAuthentication",
    "StepRunOutput",
    "TokenAuthentication",
    "UserErrorException",
    "AmlCompute",
    "CommandStep",
    "ComputeInstance",
    "ComputeTarget",
    "ComputeTargetException",
    "CondaDependencies",
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "DataPath",
    "DataPathComputeBinding",
    "DataReference",
    "Dataset",
    "DatasetConsumptionConfig",
    "Datastore",
    "DockerConfiguration",
    "Environment",
    "Experiment",
    "FileDataset",
    "Model",
    "MpiConfiguration",
    "OutputFileDatasetConfig",
    "OutputTabularDatasetConfig",
    "Pipeline",
    "PipelineData",
    "PipelineEndpoint",
    "PipelineParameter",
    "PipelineRun",
    "PublishedPipeline",
    "PyTorchConfiguration",
    "PythonScriptStep",
    "Run",
    "RunConfiguration",
    "Schedule",
    "ScheduleRecurrence",
    "ScriptRunConfig",
    "StepRun",
    "StepSequence",
    "TabularDataset",
    "TensorflowConfiguration",
    "TimeZone",
    "Workspace",
]
