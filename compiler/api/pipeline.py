"""Steps, pipelines, parameters, submissions, publications and schedules."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import NotSupportedError
from ._session import current, fail
from .data import AbstractDataset, DataPath
from .environment import RunConfiguration
from .workspace import ComputeTarget

# ------------------------------------------------------------------------------------ parameters


class PipelineParameter:
    def __init__(self, name, default_value):
        if not isinstance(name, str) or not name.strip():
            raise fail("PipelineParameter needs a non-empty name")
        if isinstance(default_value, bool):
            kind = "bool"
        elif isinstance(default_value, int):
            kind = "int"
        elif isinstance(default_value, float):
            kind = "float"
        elif isinstance(default_value, str):
            if "\n" in default_value or "\r" in default_value:
                raise fail(
                    f"PipelineParameter {name!r}: a string default_value cannot contain a "
                    "newline; pass multi-line text through a file instead"
                )
            kind = "string"
        elif isinstance(default_value, DataPath):
            kind = "datapath"
        elif isinstance(default_value, AbstractDataset):
            kind = "dataset"
        else:
            raise fail(
                f"PipelineParameter {name!r}: default_value must be an int, float, bool, str, "
                f"DataPath or dataset, not {type(default_value).__name__}"
            )
        self.name = name
        self.default_value = default_value
        self.type = kind
        self.origin = current().origin()

    def __repr__(self) -> str:
        return f"PipelineParameter(name={self.name!r}, default_value={self.default_value!r})"

    def __str__(self) -> str:
        return str(self.default_value)


# ----------------------------------------------------------------------------------------- steps


class _Step:
    def __init__(
        self,
        name,
        *,
        script_name=None,
        command=None,
        arguments=None,
        compute_target=None,
        runconfig=None,
        inputs=None,
        outputs=None,
        params=None,
        source_directory=None,
        allow_reuse=True,
        version=None,
        hash_paths=None,
    ):
        sess = current()
        self._seq = sess.next_seq()
        self.origin = sess.origin()
        if not isinstance(name, str) or not name.strip():
            raise fail("a step needs a non-empty name (or a script_name to default it from)")
        self.name = name
        self.script_name = script_name
        self._command = command
        self._arguments = list(arguments or [])
        self._inputs = list(inputs or [])
        self._outputs = list(outputs or [])
        self._params = dict(params or {})
        self._runconfig = runconfig
        self._compute = compute_target
        self._source_directory = source_directory
        self.allow_reuse = bool(allow_reuse)
        self._version = None if version is None else str(version)
        self._run_after: list[_Step] = []
        self._cwd = Path(os.getcwd())
        sess.steps.append(self)
        if hash_paths:
            sess.warn("hash_paths is deprecated and ignored: the whole source_directory is hashed")
        for bad in (self._arguments, self._inputs, self._outputs):
            if not isinstance(bad, list):
                raise fail("arguments, inputs and outputs must be lists")
        if not isinstance(allow_reuse, bool):
            raise fail("allow_reuse must be True or False")

    def run_after(self, step):
        if not isinstance(step, _Step):
            raise fail(f"run_after() needs a step, got {type(step).__name__}")
        self._run_after.append(step)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class PythonScriptStep(_Step):
    def __init__(
        self,
        script_name,
        name=None,
        arguments=None,
        compute_target=None,
        runconfig=None,
        runconfig_pipeline_params=None,
        inputs=None,
        outputs=None,
        params=None,
        source_directory=None,
        allow_reuse=True,
        version=None,
        hash_paths=None,
    ):
        if not isinstance(script_name, str) or not script_name:
            raise fail(
                "PythonScriptStep needs script_name, the script to run inside source_directory"
            )
        super().__init__(
            name if name is not None else script_name,
            script_name=script_name,
            arguments=arguments,
            compute_target=compute_target,
            runconfig=runconfig,
            inputs=inputs,
            outputs=outputs,
            params=params,
            source_directory=source_directory,
            allow_reuse=allow_reuse,
            version=version,
            hash_paths=hash_paths,
        )
        if runconfig_pipeline_params:
            current().warn(
                "runconfig_pipeline_params is ignored: set the values on the RunConfiguration"
            )


class CommandStep(_Step):
    def __init__(
        self,
        command=None,
        name=None,
        compute_target=None,
        runconfig=None,
        runconfig_pipeline_params=None,
        inputs=None,
        outputs=None,
        params=None,
        source_directory=None,
        allow_reuse=True,
        version=None,
    ):
        from .run_config import ScriptRunConfig

        if isinstance(runconfig, ScriptRunConfig):
            src = runconfig
            if command is None:
                command = src.command if src.command else ["python", src.script, *src.arguments]
            source_directory = source_directory or src.source_directory
            compute_target = compute_target or src.compute_target
            runconfig = src.run_config
        if command is None:
            raise fail("CommandStep needs a command (a string or a list)")
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, list) or not command:
            raise fail("CommandStep command must be a non-empty string or list")
        super().__init__(
            name if name is not None else "command_step",
            command=command,
            compute_target=compute_target,
            runconfig=runconfig,
            inputs=inputs,
            outputs=outputs,
            params=params,
            source_directory=source_directory,
            allow_reuse=allow_reuse,
            version=version,
        )


class StepSequence:
    """Steps (or lists of steps) that run one after another."""

    def __init__(self, steps=None):
        if not steps:
            raise fail("StepSequence needs a list of steps")
        self._steps = list(steps)
        self.origin = current().origin()


# -------------------------------------------------------------------------------------- pipeline


class Pipeline:
    def __init__(
        self,
        workspace,
        steps,
        description=None,
        default_datastore=None,
        default_source_directory=None,
        resolve_closure=True,
        _workflow_provider=None,
        _service_endpoint=None,
        **kwargs,
    ):
        sess = current()
        self.origin = sess.origin()
        self._seq = sess.next_seq()
        self._workspace = workspace
        self._steps_arg = steps
        self.description = description
        self._default_datastore = default_datastore.name if default_datastore is not None else None
        self._default_source_directory = default_source_directory
        self._resolve_closure = resolve_closure
        self._cwd = Path(os.getcwd())
        self._submissions: list = []
        self._publications: list = []
        self._schedules: list = []
        self._flat, self._order_edges = _flatten(steps)
        sess.pipelines.append(self)

    @property
    def graph(self):
        return self

    def validate(self):
        from ..capture import pipeline_problems

        return [p.message for p in pipeline_problems(self)]

    def publish(self, name=None, description=None, version=None, continue_on_step_failure=None):
        pub = PublishedPipeline(self, name or "published_pipeline", description, version)
        self._publications.append(pub)
        current().publications.append(pub)
        return pub

    def submit(
        self,
        experiment_name,
        pipeline_parameters=None,
        continue_on_step_failure=False,
        regenerate_outputs=False,
        parent_run_id=None,
        credential_passthrough=None,
        **kwargs,
    ):
        return _submit(
            self, experiment_name, pipeline_parameters, regenerate_outputs, continue_on_step_failure
        )

    def service_endpoint(self):
        return "https://localhost/mlpipe"

    def __repr__(self) -> str:
        return f"Pipeline(steps={len(self._flat)})"


def _flatten(steps):
    """Steps in listing order, and the order edges StepSequence implies."""
    flat: list[_Step] = []
    listed: set[int] = set()
    edges: list[tuple[_Step, _Step]] = []

    def members(item) -> list[_Step]:
        if isinstance(item, _Step):
            if id(item) not in listed:
                listed.add(id(item))
                flat.append(item)
            return [item]
        if isinstance(item, StepSequence):
            previous: list[_Step] = []
            everything: list[_Step] = []
            for element in item._steps:
                current_members = members(element)
                for before in previous:
                    for after in current_members:
                        edges.append((before, after))
                previous = current_members
                everything.extend(current_members)
            return everything
        if isinstance(item, list | tuple):
            out: list[_Step] = []
            for element in item:
                out.extend(members(element))
            return out
        raise fail(
            f"a pipeline's steps must be steps, lists of steps or StepSequence objects; "
            f"got {type(item).__name__}"
        )

    if isinstance(steps, _Step | StepSequence):
        steps = [steps]
    if not isinstance(steps, list | tuple) or not steps:
        raise fail("Pipeline needs steps=[...] with at least one step")
    members(steps)
    return flat, edges


# --------------------------------------------------------------------------- submit and runs


class _RunStatus(str):
    pass


class StepRun:
    def __init__(self, step_name, pipeline_run):
        self.name = step_name
        self.id = f"{pipeline_run.id}_{step_name}"
        self._pipeline_run = pipeline_run
        self.parent = pipeline_run
        self.status = "Finished"

    def get_status(self):
        return "Finished"

    def wait_for_completion(self, show_output=False, timeout_seconds=None, raise_on_error=True):
        return {"status": "Finished", "runId": self.id}

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        return {}

    def get_details(self):
        return {"runId": self.id, "status": "Finished", "target": "local"}

    def get_details_with_logs(self):
        return self.get_details()

    def get_output_data(self, name):
        return _PortData(name)

    def get_outputs(self):
        return {}

    def get_file_names(self):
        return []

    def download_file(self, name, output_file_path=None, _validate_checksum=False):
        return None

    def download_files(self, *a, **k):
        return None

    def get_children(self, *a, **k):
        return iter(())


class _PortData:
    def __init__(self, name):
        self.name = name
        self.path_on_datastore = name
        self.datastore_name = "workspaceblobstore"

    def download(self, local_path, overwrite=False, show_progress=True):
        current().warn("step outputs are not downloaded during capture")
        return local_path


class PipelineRun:
    """What `submit` returns during capture: an inert run; nothing executes until mlpipe runs it."""

    def __init__(self, pipeline, experiment):
        self._pipeline = pipeline
        self.experiment = experiment
        self.id = f"mlpipe-capture-{experiment.name}-{len(pipeline._submissions)}"
        self.number = len(pipeline._submissions)
        self.status = "NotStarted"

    def wait_for_completion(self, show_output=True, timeout_seconds=None, raise_on_error=True):
        return "Finished"

    def get_status(self):
        return "Finished"

    def get_details(self):
        return {"runId": self.id, "status": "Finished"}

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        return {}

    def get_steps(self):
        return iter(StepRun(s.name, self) for s in self._pipeline._flat)

    def get_children(self, *a, **k):
        return self.get_steps()

    def find_step_run(self, name):
        return [StepRun(name, self)]

    def get_pipeline_runs(self):
        return [self]

    def get_graph(self):
        return self._pipeline

    def publish_pipeline(self, name, description=None, version=None, continue_on_step_failure=None):
        return self._pipeline.publish(name, description, version, continue_on_step_failure)

    def cancel(self):
        return None

    def get_tags(self):
        return {}

    def tag(self, *a, **k):
        return None

    def get_portal_url(self):
        return "https://localhost/mlpipe"

    def __repr__(self) -> str:
        return f"PipelineRun(id={self.id!r})"


def _submit(
    pipeline, experiment, pipeline_parameters, regenerate_outputs, continue_on_step_failure
):
    from ..ir import Submission
    from .workspace import Workspace

    if isinstance(experiment, str):
        experiment = Experiment(pipeline._workspace or Workspace(), experiment)
    params = {}
    for k, v in (pipeline_parameters or {}).items():
        if isinstance(v, bool | int | float | str):
            params[str(k)] = v
        else:
            raise fail(
                f"pipeline_parameters[{k!r}]: mlpipe keeps int, float, bool and str overrides; "
                f"got {type(v).__name__}"
            )
    pipeline._submissions.append(
        Submission(
            experiment=experiment.name,
            pipeline_parameters=params,
            regenerate_outputs=bool(regenerate_outputs),
            continue_on_step_failure=bool(continue_on_step_failure),
            origin=current().origin(),
        )
    )
    return PipelineRun(pipeline, experiment)


class Experiment:
    def __init__(
        self,
        workspace,
        name,
        _skip_name_validation=False,
        _id=None,
        _archived_time=None,
        _create_in_cloud=True,
        _experiment_dto=None,
        **kwargs,
    ):
        self.workspace = workspace
        self.name = name

    def submit(self, config, tags=None, **kwargs):
        if isinstance(config, PublishedPipeline):
            config = config._pipeline
        if isinstance(config, PipelineEndpoint):
            config = config._default()._pipeline
        if not isinstance(config, Pipeline):
            raise NotSupportedError(
                f"Experiment.submit({type(config).__name__}) is not supported: mlpipe captures pipelines "
                "(submit a Pipeline built from PythonScriptStep / CommandStep)",
                current().origin(),
            )
        return _submit(
            config,
            self,
            kwargs.get("pipeline_parameters"),
            kwargs.get("regenerate_outputs", False),
            kwargs.get("continue_on_step_failure", False),
        )

    def get_runs(self, *a, **k):
        return iter(())

    @staticmethod
    def list(workspace, *a, **k):
        return list(workspace.experiments.values())


# ---------------------------------------------------------------------------- published pipelines


class PublishedPipeline:
    def __init__(self, pipeline, name, description=None, version=None):
        from ..ir import Publication

        self._pipeline = pipeline
        self.name = name
        self.description = description
        self.version = version
        self.id = f"mlpipe-published-{name}-{len(current().publications)}"
        self.endpoint = f"https://localhost/mlpipe/pipelines/{self.id}"
        self.status = "Active"
        self.graph_id = self.id
        self._ir = Publication(
            name=name,
            description=description,
            version=None if version is None else str(version),
            origin=current().origin(),
        )

    @staticmethod
    def get(workspace, id, _workflow_provider=None, _service_endpoint=None):
        for pub in current().publications:
            if pub.id == id:
                return pub
        raise fail(f"no pipeline with id {id!r} was published in this file")

    @staticmethod
    def list(workspace, active_only=True, _service_endpoint=None):
        return list(current().publications)

    def submit(
        self,
        workspace,
        experiment_name,
        pipeline_parameters=None,
        _workflow_provider=None,
        _service_endpoint=None,
        parent_run_id=None,
        continue_on_step_failure=None,
    ):
        return _submit(
            self._pipeline,
            experiment_name,
            pipeline_parameters,
            False,
            bool(continue_on_step_failure),
        )

    def enable(self):
        self.status = "Active"

    def disable(self):
        self.status = "Disabled"

    def __repr__(self) -> str:
        return f"PublishedPipeline(name={self.name!r}, id={self.id!r})"


class PipelineEndpoint:
    def __init__(self, name, pipelines):
        self.name = name
        self._pipelines = pipelines
        self.id = f"mlpipe-endpoint-{name}"
        self.endpoint = f"https://localhost/mlpipe/endpoints/{name}"
        self.default_version = str(len(pipelines) - 1)

    @staticmethod
    def publish(
        workspace, name, description, pipeline, _workflow_provider=None, _service_endpoint=None
    ):
        if isinstance(pipeline, Pipeline):
            pipeline = pipeline.publish(name, description)
        pipeline._ir.endpoint = name
        ep = PipelineEndpoint(name, [pipeline])
        _endpoints()[name] = ep
        return ep

    @staticmethod
    def get(workspace, id=None, name=None, _workflow_provider=None, _service_endpoint=None):
        eps = _endpoints()
        key = name or id
        for ep in eps.values():
            if key in (ep.name, ep.id):
                return ep
        raise fail(f"no PipelineEndpoint {key!r} was published in this file")

    @staticmethod
    def list(workspace, active_only=True, _workflow_provider=None, _service_endpoint=None):
        return list(_endpoints().values())

    def add(self, pipeline):
        pipeline._ir.endpoint = self.name
        self._pipelines.append(pipeline)

    def add_default(self, pipeline):
        self.add(pipeline)
        self.default_version = str(len(self._pipelines) - 1)

    def set_default_version(self, version):
        self.default_version = str(version)

    def get_default_version(self):
        return self.default_version

    def _default(self):
        return self._pipelines[int(self.default_version)]

    def get_pipeline(self, version=None):
        return self._pipelines[int(self.default_version if version is None else version)]

    def list_pipelines(self, active_only=True):
        return list(self._pipelines)

    def list_versions(self):
        return [{"version": str(i), "pipelineId": p.id} for i, p in enumerate(self._pipelines)]

    def submit(
        self, experiment_name, pipeline_parameters=None, parent_run_id=None, pipeline_version=None
    ):
        return self.get_pipeline(pipeline_version).submit(
            None, experiment_name, pipeline_parameters
        )

    def enable(self):
        return None

    def disable(self):
        return None


def _endpoints() -> dict:
    sess = current()
    if not hasattr(sess, "endpoints"):
        sess.endpoints = {}
    return sess.endpoints


# ------------------------------------------------------------------------------------- schedules


class TimeZone:
    UTC = "UTC"
    CoordinatedUniversalTime = "UTC"
    PacificStandardTime = "America/Los_Angeles"
    EasternStandardTime = "America/New_York"
    CentralEuropeStandardTime = "Europe/Budapest"
    WEuropeStandardTime = "Europe/Berlin"
    GMTStandardTime = "Europe/London"


class ScheduleRecurrence:
    def __init__(
        self,
        frequency,
        interval,
        start_time=None,
        time_zone=None,
        hours=None,
        minutes=None,
        week_days=None,
        time_of_day=None,
    ):
        freq = str(frequency).capitalize()
        if freq not in ("Minute", "Hour", "Day", "Week", "Month"):
            raise fail(
                f"ScheduleRecurrence frequency must be Minute, Hour, Day, Week or Month, not {frequency!r}"
            )
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise fail("ScheduleRecurrence interval must be a positive integer")
        self.frequency = freq
        self.interval = interval
        self.start_time = start_time
        self.time_zone = time_zone
        self.hours = list(hours or [])
        self.minutes = list(minutes or [])
        self.week_days = list(week_days or [])
        self.time_of_day = time_of_day

    def _ir(self):
        from ..ir import Recurrence

        start = self.start_time
        if start is not None and not isinstance(start, str):
            start = start.isoformat()
        tz = self.time_zone
        return Recurrence(
            frequency=self.frequency,
            interval=self.interval,
            start_time=start,
            time_zone=None if tz is None else str(tz),
            hours=[int(h) for h in self.hours],
            minutes=[int(m) for m in self.minutes],
            week_days=[str(d) for d in self.week_days],
            time_of_day=self.time_of_day,
        )


class Schedule:
    def __init__(self, name, pipeline, ir):
        self.name = name
        self.id = f"mlpipe-schedule-{name}"
        self._pipeline = pipeline
        self._ir = ir
        self.status = "Active"
        self.pipeline_id = None
        self.recurrence = ir.recurrence

    @staticmethod
    def create(
        workspace,
        name,
        pipeline_id=None,
        experiment_name=None,
        recurrence=None,
        description=None,
        pipeline_parameters=None,
        wait_for_provisioning=False,
        wait_timeout=3600,
        datastore=None,
        polling_interval=5,
        data_path_parameter_name=None,
        continue_on_step_failure=None,
        path_on_datastore=None,
        _workflow_provider=None,
        _service_endpoint=None,
        pipeline_endpoint_id=None,
    ):
        from ..ir import DatastoreTrigger
        from ..ir import Schedule as IrSchedule

        sess = current()
        pipeline = None
        for pub in sess.publications:
            if pub.id == pipeline_id:
                pipeline = pub._pipeline
        for ep in _endpoints().values():
            if ep.id == pipeline_endpoint_id:
                pipeline = ep._default()._pipeline
        if pipeline is None:
            raise fail(
                f"Schedule.create: pipeline_id {pipeline_id!r} does not name a pipeline published "
                "in this file; pass published_pipeline.id"
            )
        if recurrence is None and datastore is None:
            raise fail("Schedule.create needs recurrence=ScheduleRecurrence(...) or datastore=...")
        params = {str(k): v for k, v in (pipeline_parameters or {}).items()}
        ir = IrSchedule(
            name=name,
            description=description,
            experiment_name=experiment_name,
            recurrence=recurrence._ir() if recurrence is not None else None,
            datastore_trigger=DatastoreTrigger(
                datastore=datastore.name,
                path_on_datastore=path_on_datastore,
                polling_interval_minutes=int(polling_interval),
            )
            if datastore is not None
            else None,
            pipeline_parameters=params,
            origin=sess.origin(),
        )
        sched = Schedule(name, pipeline, ir)
        sched.pipeline_id = pipeline_id
        pipeline._schedules.append(sched)
        sess.schedules.append(sched)
        return sched

    @staticmethod
    def list(
        workspace,
        active_only=True,
        pipeline_id=None,
        _workflow_provider=None,
        _service_endpoint=None,
        pipeline_endpoint_id=None,
    ):
        return [s for s in current().schedules if pipeline_id in (None, s.pipeline_id)]

    @staticmethod
    def get(workspace, id, _workflow_provider=None, _service_endpoint=None):
        for s in current().schedules:
            if s.id == id or s.name == id:
                return s
        raise fail(f"no schedule {id!r} was created in this file")

    @staticmethod
    def get_schedules_for_pipeline_id(
        workspace, pipeline_id, _workflow_provider=None, _service_endpoint=None
    ):
        return Schedule.list(workspace, pipeline_id=pipeline_id)

    def enable(self, wait_for_provisioning=False, wait_timeout=3600):
        self.status = "Active"

    def disable(self, wait_for_provisioning=False, wait_timeout=3600):
        self.status = "Disabled"

    def update(
        self,
        name=None,
        description=None,
        recurrence=None,
        pipeline_parameters=None,
        status=None,
        wait_for_provisioning=False,
        wait_timeout=3600,
        datastore=None,
        polling_interval=None,
        data_path_parameter_name=None,
        continue_on_step_failure=None,
        path_on_datastore=None,
    ):
        if recurrence is not None:
            self._ir.recurrence = recurrence._ir()
        if pipeline_parameters is not None:
            self._ir.pipeline_parameters = dict(pipeline_parameters)
        if description is not None:
            self._ir.description = description

    def get_last_pipeline_run(self):
        return None


def compute_name(compute) -> str | None:
    if compute is None:
        return None
    if isinstance(compute, ComputeTarget):
        return compute.name
    if isinstance(compute, str):
        return compute
    if isinstance(compute, tuple) and compute and isinstance(compute[0], str):
        return compute[0]
    raise fail(
        f"compute_target must be a ComputeTarget, a name or a (name, type) tuple; got "
        f"{type(compute).__name__}"
    )


def runconfig_of(step) -> RunConfiguration | None:
    return step._runconfig
