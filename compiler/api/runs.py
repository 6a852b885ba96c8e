"""Submissions and the inert runs they return: `PipelineRun`, `StepRun`, `StepRunOutput`."""

from __future__ import annotations

from ._session import current, fail
from ._v1 import V1Object
from .data import (
    AbstractDataset,
    DataPath,
    DatasetConsumptionConfig,
    OutputFileDatasetConfig,
    _Output,
)
from .workspace import Experiment, Workspace

_STATUS = "Finished"  # what inert runs report, so polling loops end


def _step_output_names(step) -> list[str]:
    names = [o.name for o in step._outputs if isinstance(o, _Output) and o.name]
    for a in step._arguments:
        if isinstance(a, OutputFileDatasetConfig) and a.name and a.name not in names:
            names.append(a.name)
    return names


class _PortDataReference:
    def __init__(self, name, run_id, step_name, datastore="workspaceblobstore"):
        self.data_reference_name = name
        self.datastore_name = datastore
        self.path_on_datastore = f"azureml/{run_id}/{step_name}/{name}"
        self.name = name

    def download(self, local_path=None, overwrite=False, show_progress=True):
        current().warn(
            f"step output {self.name!r} is not downloaded during capture (the pipeline has not "
            "run yet)"
        )
        return local_path

    def as_download(self, *args, **kwargs):
        return self

    def as_mount(self, *args, **kwargs):
        return self

    def __repr__(self) -> str:
        return f"PortDataReference({self.datastore_name!r}, {self.path_on_datastore!r})"


class StepRunOutput:
    def __init__(self, name, run_id, step_name):
        self.name = name
        self._ref = _PortDataReference(name, run_id, step_name)

    def get_port_data_reference(self):
        return self._ref

    def download(self, local_path=None, overwrite=False, show_progress=True):
        return self._ref.download(local_path, overwrite, show_progress)


class StepRun(V1Object):
    """A step of an inert pipeline run: nothing ran during capture, so there is nothing to show."""

    def __init__(
        self,
        experiment=None,
        step_run_id=None,
        pipeline_run_id=None,
        node_id=None,
        _service_endpoint=None,
        _is_reused=False,
        _current_node_id=None,
        _reused_run_id=None,
        _reused_node_id=None,
        _reused_pipeline_run_id=None,
        **kwargs,
    ):
        self.experiment = experiment
        self.id = step_run_id or "mlpipe-capture-step-run"
        self.name = node_id or self.id
        self.parent = None
        self.status = _STATUS
        self.properties: dict = {}
        self._outputs: list[str] = []

    @classmethod
    def _of(cls, name, outputs, pipeline_run):
        run = cls(pipeline_run.experiment, f"{pipeline_run.id}_{_path_safe(name)}", pipeline_run.id)
        run.name = name
        run.parent = pipeline_run
        run._outputs = list(outputs)
        return run

    def get_status(self):
        return _STATUS

    def wait_for_completion(self, show_output=False, timeout_seconds=None, raise_on_error=True):
        return {"runId": self.id, "status": _STATUS}

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        return {}

    def get_details(self):
        return {"runId": self.id, "status": _STATUS, "target": "local", "properties": {}}

    def get_details_with_logs(self):
        return {**self.get_details(), "logFiles": {}}

    def get_job_log(self):
        return ""

    def get_stdout_log(self):
        return ""

    def get_stderr_log(self):
        return ""

    def get_output_data(self, name):
        return _PortDataReference(name, self.parent.id if self.parent else self.id, self.name)

    def get_output(self, name):
        return StepRunOutput(name, self.parent.id if self.parent else self.id, self.name)

    def get_outputs(self):
        return {n: self.get_output(n) for n in self._outputs}

    def get_file_names(self):
        return []

    def download_file(self, name, output_file_path=None, _validate_checksum=False):
        current().warn("run files are not downloaded during capture (the pipeline has not run yet)")
        return None

    def download_files(self, *args, **kwargs):
        return self.download_file(None)

    def get_children(self, *args, **kwargs):
        return iter(())

    def log(self, *args, **kwargs):
        return None

    def get_tags(self):
        return {}

    def __repr__(self) -> str:
        return f"StepRun(name={self.name!r}, id={self.id!r}, status={_STATUS!r})"


class PipelineRun(V1Object):
    """What `submit` returns during capture: an inert run; nothing executes until mlpipe runs it.
    `PipelineRun(experiment, run_id)` (v1's constructor) gives the same kind of object."""

    def __init__(self, experiment=None, run_id=None, _service_endpoint=None, **kwargs):
        self.experiment = experiment
        self.id = run_id or "mlpipe-capture-run"
        self.number = 0
        self.status = _STATUS
        self.parent = None
        self.properties: dict = {}
        self.type = "azureml.PipelineRun"
        self._pipeline = None

    @classmethod
    def _started(cls, pipeline, experiment):
        n = len(pipeline._submissions)
        run = cls(experiment, f"{_path_safe(experiment.name)}_{n}")
        run.number = n
        run._pipeline = pipeline
        return run

    @property
    def name(self):
        return self.id

    @property
    def display_name(self):
        return self.id

    def wait_for_completion(self, show_output=True, timeout_seconds=None, raise_on_error=True):
        return _STATUS

    def get_status(self):
        return _STATUS

    def get_details(self):
        return {"runId": self.id, "status": _STATUS, "properties": {}}

    def get_details_with_logs(self):
        return {**self.get_details(), "logFiles": {}}

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        return {}

    def _step_runs(self) -> list[StepRun]:
        if self._pipeline is None:
            return []
        return [
            StepRun._of(s.name, _step_output_names(s), self)
            for s in self._pipeline._flat_with_closure()
        ]

    def get_steps(self):
        return iter(self._step_runs())

    def get_children(self, *args, **kwargs):
        return iter(self._step_runs())

    def find_step_run(self, name):
        found = [r for r in self._step_runs() if r.name == name]
        return found or [StepRun._of(name, [], self)]

    def get_pipeline_runs(self):
        return [self]

    def get_graph(self):
        return self._pipeline

    def get_pipeline_output(self, pipeline_output_name):
        return _PortDataReference(pipeline_output_name, self.id, "pipeline")

    def publish_pipeline(self, name, description=None, version=None, continue_on_step_failure=None):
        if self._pipeline is None:
            raise fail(
                "publish_pipeline() needs a run submitted in this file (mlpipe cannot fetch "
                "runs from Azure)"
            )
        return self._pipeline.publish(name, description, version, continue_on_step_failure)

    def cancel(self):
        return None

    def get_tags(self):
        return {}

    def tag(self, *args, **kwargs):
        return None

    def get_file_names(self):
        return []

    def download_file(self, *args, **kwargs):
        current().warn("run files are not downloaded during capture (the pipeline has not run yet)")
        return None

    def download_files(self, *args, **kwargs):
        return self.download_file()

    def get_portal_url(self):
        return f"https://mlpipe.invalid/runs/{self.id}"

    def __repr__(self) -> str:
        return f"PipelineRun(id={self.id!r}, status={_STATUS!r})"


def _path_safe(name) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "run"


def _override_values(params, what: str) -> dict:
    """pipeline_parameters as the IR keeps them: scalars, DataPath and datasets."""
    from ..ir import DataPath as IrDataPath

    out = {}
    for k, v in (params or {}).items():
        if isinstance(v, DatasetConsumptionConfig) and isinstance(v.dataset, AbstractDataset):
            v = v.dataset
        if isinstance(v, bool | int | float | str):
            out[str(k)] = v
        elif isinstance(v, DataPath):
            out[str(k)] = IrDataPath(datastore=v.datastore_name, path=v.path_on_datastore)
        elif isinstance(v, AbstractDataset):
            out[str(k)] = v._ir()
        else:
            raise fail(
                f"{what}[{k!r}]: mlpipe keeps int, float, bool, str, DataPath and dataset "
                f"values; got {type(v).__name__}"
            )
    return out


def _submit(
    pipeline, experiment, pipeline_parameters, regenerate_outputs, continue_on_step_failure
):
    from ..ir import Submission

    if isinstance(experiment, str):
        experiment = Experiment(pipeline._workspace or Workspace(), experiment)
    if not isinstance(getattr(experiment, "name", None), str) or not experiment.name:
        raise fail("submit() needs an experiment name")
    params = _override_values(pipeline_parameters, "pipeline_parameters")
    sess = current()
    pipeline._submissions.append(
        Submission(
            experiment=experiment.name,
            pipeline_parameters=params,
            regenerate_outputs=bool(regenerate_outputs),
            continue_on_step_failure=bool(continue_on_step_failure),
            origin=sess.origin(),
        )
    )
    run = PipelineRun._started(pipeline, experiment)
    sess.runs = [*getattr(sess, "runs", []), run]
    return run
