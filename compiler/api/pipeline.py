"""Steps, pipelines, parameters, submissions, publications and schedules."""

from __future__ import annotations

import math
import os
import shlex
import uuid
from pathlib import Path

from ..errors import NotSupportedError
from ._session import current, fail
from ._v1 import V1Object
from .data import AbstractDataset, DataPath
from .environment import RunConfiguration
from .workspace import ComputeTarget

# ------------------------------------------------------------------------------------ parameters


def _uncarriable(text: str) -> str | None:
    """Why `text` cannot reach a step's argv (or the IR's JSON), or None."""
    if "\x00" in text:
        return "contains a NUL character, which no command line can carry"
    if any("\ud800" <= c <= "\udfff" for c in text):
        return "contains a lone surrogate (not valid Unicode text), which cannot be encoded"
    return None


def _check_text(value, what: str) -> None:
    if isinstance(value, str):
        why = _uncarriable(value)
        if why is not None:
            raise fail(f"{what} {value!r} {why}")


class PipelineParameter(V1Object):
    def __init__(self, name, default_value):
        if not isinstance(name, str) or not name.strip():
            raise fail("PipelineParameter needs a non-empty name")
        _check_text(name, "PipelineParameter name")
        _check_text(default_value, f"PipelineParameter {name!r}: default_value")
        if isinstance(default_value, bool):
            kind = "bool"
        elif isinstance(default_value, int):
            kind = "int"
        elif isinstance(default_value, float):
            if not math.isfinite(default_value):
                raise fail(
                    f"PipelineParameter {name!r}: default_value {default_value!r} is not a finite "
                    "number, which no run could pass back as a value; use a finite default"
                )
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


class _Step(V1Object):
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
        _check_text(name, "step name")
        for value in [*self._arguments, *(command or [])]:
            _check_text(value, f"step {name!r}: argument")
        for key, value in self._params.items():
            _check_text(key, f"step {name!r}: params name")
            _check_text(value, f"step {name!r}: params value")
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

        exact = False  # a script + arguments: the arguments reach the script as they are
        if isinstance(runconfig, ScriptRunConfig):
            src = runconfig
            if command is None:
                if src.command:
                    command = [*src.command, *src.arguments]
                else:
                    command = ["python", src.script, *src.arguments]
                    exact = True
            source_directory = source_directory or src.source_directory
            compute_target = compute_target or src.compute_target
            runconfig = src.run_config
        if command is None:
            raise fail("CommandStep needs a command (a string or a list)")
        if isinstance(command, tuple):
            command = list(command)
        if isinstance(command, str):
            command = [command]
        if not isinstance(command, list) or not command:
            raise fail("CommandStep command must be a non-empty string or list")
        if not exact:
            command = split_command(command)
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


_SHELL_OPERATORS = {"&&", "||", "|", ";", ">", ">>", "<", "2>", "2>&1", "&", "|&"}


def split_command(command: list) -> list:
    """v1 joins a command list with spaces and hands it to a shell, so a string item such as
    'python train.py --epochs 30' holds several arguments: split string items like a POSIX shell
    would (an item naming an existing path is kept whole). Data and parameter items stay single
    arguments. mlpipe runs commands without a shell, so shell syntax is refused."""
    out: list = []
    for item in command:
        if not isinstance(item, str) or not any(c.isspace() for c in item):
            out.append(item)
            continue
        if os.path.exists(item):
            out.append(item)
            continue
        try:
            words = shlex.split(item)
        except ValueError as exc:
            raise fail(f"CommandStep command item {item!r} cannot be split: {exc}") from None
        bad = [w for w in words if w in _SHELL_OPERATORS or w.startswith(("$(", "`"))]
        if bad:
            raise fail(
                f"CommandStep command uses shell syntax ({bad[0]!r}); mlpipe runs commands "
                "without a shell: put the commands in a script and run that instead, e.g. "
                "command=['bash', 'run.sh']"
            )
        out.extend(words)
    return out


class StepSequence(V1Object):
    """Steps (or lists of steps) that run one after another."""

    def __init__(self, steps=None):
        if not steps:
            raise fail("StepSequence needs a list of steps")
        self._steps = list(steps)
        self.origin = current().origin()


# -------------------------------------------------------------------------------------- pipeline


class Pipeline(V1Object):
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
        self._continue_on_step_failure = False
        self._flat, self._order_edges = _flatten(steps)
        # v1 builds the graph here: later run_after() calls and steps created afterwards do not
        # change this pipeline (notebooks often reuse steps for a second pipeline).
        self._known_steps = len(sess.steps)
        self._run_after = {id(s): list(s._run_after) for s in sess.steps}
        sess.pipelines.append(self)

    def _set_experiment_name(self, name=None):
        """A v1 internal some templates (MLOpsPython) touch; it changes nothing mlpipe keeps."""
        return None

    def _run_after_of(self, step) -> list:
        return self._run_after.get(id(step), step._run_after)

    def _flat_with_closure(self) -> list:
        from ..capture import pipeline_steps

        return pipeline_steps(self)

    @property
    def graph(self):
        return self

    def validate(self):
        from ..capture import pipeline_problems

        return [p.message for p in pipeline_problems(self)]

    def publish(self, name=None, description=None, version=None, continue_on_step_failure=None):
        pub = PublishedPipeline(self, name or "published_pipeline", description, version)
        if continue_on_step_failure:
            self._continue_on_step_failure = True
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
        return _ENDPOINT_BASE

    def load_yaml(self, *args, **kwargs):
        raise fail("Pipeline.load_yaml is not supported: build the pipeline in Python")

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

# Where inert runs, published pipelines and endpoints point: a reserved, unresolvable host, so a
# REST call to it can never reach anything (capture refuses the network anyway).
_ENDPOINT_BASE = (
    "https://mlpipe.invalid/pipelines/v1.0/subscriptions/00000000-0000-0000-0000-000000000000"
    "/resourceGroups/mlpipe/providers/Microsoft.MachineLearningServices/workspaces/local"
)
_STATUS = "Finished"  # what inert runs report, so polling loops end


def _uid(kind: str, *parts) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mlpipe:" + kind + ":" + ":".join(map(str, parts))))


def _step_output_names(step) -> list[str]:
    from .data import OutputFileDatasetConfig, _Output

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
    from .data import DatasetConsumptionConfig

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
    from .workspace import Workspace

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


class Experiment(V1Object):
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
        self.id = _uid("experiment", name)
        self.archived_time = None
        self.tags: dict = {}

    def submit(self, config, tags=None, **kwargs):
        version = kwargs.get("pipeline_version")
        if isinstance(config, PipelineDraft):
            return config.submit_run()
        if isinstance(config, PipelineEndpoint):
            config = config.get_pipeline(version)
        if isinstance(config, PublishedPipeline):
            config = config._pipeline
        if not isinstance(config, Pipeline):
            raise NotSupportedError(
                f"Experiment.submit({type(config).__name__}) is not supported: mlpipe captures "
                "pipelines (submit a Pipeline built from PythonScriptStep / CommandStep)",
                current().origin(),
            )
        return _submit(
            config,
            self,
            kwargs.get("pipeline_parameters"),
            kwargs.get("regenerate_outputs", False),
            kwargs.get("continue_on_step_failure", False),
        )

    def get_runs(self, *args, **kwargs):
        runs = getattr(current(), "runs", [])
        return iter([r for r in reversed(runs) if r.experiment.name == self.name])

    def archive(self):
        return None

    def reactivate(self, new_name=None):
        return None

    def tag(self, key, value=None):
        self.tags[key] = value

    def get_docs_url(self):
        return "https://mlpipe.invalid/docs"

    @staticmethod
    def list(workspace, experiment_name=None, view_type=None, tags=None):
        found = list(workspace.experiments.values())
        if experiment_name is not None:
            found = [e for e in found if e.name == experiment_name]
        return found

    def __repr__(self) -> str:
        return f"Experiment(Name: {self.name}, Workspace: {getattr(self.workspace, 'name', None)})"


# ---------------------------------------------------------------------------- published pipelines


class PublishedPipeline(V1Object):
    def __init__(self, pipeline, name, description=None, version=None):
        from ..ir import Publication

        sess = current()
        self._pipeline = pipeline
        self.name = name
        self.description = description
        self.version = version
        self.id = _uid("published", len(sess.publications), name)
        self.graph_id = _uid("graph", len(sess.publications), name)
        self.endpoint = f"{_ENDPOINT_BASE}/PipelineRuns/PipelineSubmit/{self.id}"
        self.status = "Active"
        self.continue_on_step_failure = False
        self._ir = Publication(
            name=name,
            description=description,
            version=None if version is None else str(version),
            origin=sess.origin(),
        )

    @property
    def total_run_steps(self):
        return len(self._pipeline._flat_with_closure())

    @staticmethod
    def get(workspace, id, _workflow_provider=None, _service_endpoint=None):
        for pub in current().publications:
            if pub.id == id:
                return pub
        raise fail(f"no pipeline with id {id!r} was published in this file")

    @staticmethod
    def list(workspace, active_only=True, _service_endpoint=None):
        return [p for p in current().publications if not active_only or p.status == "Active"]

    @staticmethod
    def get_all(workspace, active_only=True, _service_endpoint=None):
        return PublishedPipeline.list(workspace, active_only)

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

    def get_graph(self, _workflow_provider=None):
        return self._pipeline

    def get_step_names(self, _workflow_provider=None):
        return [s.name for s in self._pipeline._flat_with_closure()]

    def enable(self):
        self.status = "Active"

    def disable(self):
        self.status = "Disabled"

    def save(self, path=None, _workflow_provider=None):
        return None

    def __repr__(self) -> str:
        return f"PublishedPipeline(Name: {self.name}, Id: {self.id}, Status: {self.status})"


class _EndpointVersion:
    def __init__(self, version, pipeline):
        self.version = version
        self.pipeline = pipeline
        self.pipeline_id = pipeline.id

    def __repr__(self) -> str:
        return f"PipelineVersion(version={self.version!r}, pipeline_id={self.pipeline_id!r})"


class PipelineEndpoint(V1Object):
    """Versions of published pipelines behind one name (kept in the IR as each publication's
    `endpoint`)."""

    def __init__(self, name, pipelines, description=None):
        self.name = name
        self.description = description
        self._pipelines = list(pipelines)
        self.id = _uid("endpoint", name)
        self.endpoint = f"{_ENDPOINT_BASE}/PipelineRuns/PipelineEndpointSubmit/Id/{self.id}"
        self.swaggerurl = f"{_ENDPOINT_BASE}/PipelineEndpoints/{self.id}/swagger.json"
        self.default_version = "0"
        self.status = "Active"
        for p in self._pipelines:
            p._ir.endpoint = name

    @staticmethod
    def publish(
        workspace, name, description, pipeline, _workflow_provider=None, _service_endpoint=None
    ):
        if isinstance(pipeline, Pipeline):
            pipeline = pipeline.publish(name, description)
        if not isinstance(pipeline, PublishedPipeline):
            raise fail("PipelineEndpoint.publish needs a Pipeline or a PublishedPipeline")
        eps = _endpoints()
        if name in eps:
            eps[name].add_default(pipeline)
            return eps[name]
        ep = PipelineEndpoint(name, [pipeline], description)
        eps[name] = ep
        return ep

    @staticmethod
    def get(workspace, id=None, name=None, _workflow_provider=None, _service_endpoint=None):
        key = name or id
        for ep in _endpoints().values():
            if key in (ep.name, ep.id):
                return ep
        raise fail(f"no PipelineEndpoint {key!r} was published in this file")

    @staticmethod
    def list(workspace, active_only=True, _workflow_provider=None, _service_endpoint=None):
        return [e for e in _endpoints().values() if not active_only or e.status == "Active"]

    @staticmethod
    def get_all(workspace, active_only=True, _workflow_provider=None, _service_endpoint=None):
        return PipelineEndpoint.list(workspace, active_only)

    def _version_of(self, pipeline) -> str:
        for i, p in enumerate(self._pipelines):
            if p is pipeline:
                return str(i)
        return ""

    def add(self, pipeline):
        if isinstance(pipeline, Pipeline):
            pipeline = pipeline.publish(self.name, self.description)
        if not self._version_of(pipeline):
            pipeline._ir.endpoint = self.name
            self._pipelines.append(pipeline)

    def add_default(self, pipeline):
        self.add(pipeline)
        self.set_default(pipeline)

    def set_default(self, pipeline):
        self.add(pipeline)
        self.default_version = self._version_of(pipeline)

    def set_default_version(self, version):
        if not 0 <= int(version) < len(self._pipelines):
            raise fail(f"PipelineEndpoint {self.name!r} has no version {version!r}")
        self.default_version = str(version)

    def get_default_version(self):
        return self.default_version

    def _default(self):
        return self._pipelines[int(self.default_version)]

    def get_pipeline(self, version=None):
        v = self.default_version if version is None else str(version)
        if not v.isdigit() or int(v) >= len(self._pipelines):
            raise fail(f"PipelineEndpoint {self.name!r} has no version {version!r}")
        return self._pipelines[int(v)]

    def list_pipelines(self, active_only=True):
        return [p for p in self._pipelines if not active_only or p.status == "Active"]

    def list_versions(self):
        return [_EndpointVersion(str(i), p) for i, p in enumerate(self._pipelines)]

    def set_name(self, name):
        eps = _endpoints()
        eps.pop(self.name, None)
        self.name = name
        eps[name] = self
        for p in self._pipelines:
            p._ir.endpoint = name

    def submit(
        self, experiment_name, pipeline_parameters=None, parent_run_id=None, pipeline_version=None
    ):
        return self.get_pipeline(pipeline_version).submit(
            None, experiment_name, pipeline_parameters
        )

    def enable(self):
        self.status = "Active"

    def disable(self):
        self.status = "Disabled"

    def archive(self):
        self.status = "Disabled"

    def reactivate(self, name):
        self.status = "Active"

    def __repr__(self) -> str:
        return f"PipelineEndpoint(Name: {self.name}, Id: {self.id}, Status: {self.status})"


def _endpoints() -> dict:
    return current().endpoints


# ---------------------------------------------------------------------------------- drafts


class PipelineDraft(V1Object):
    """A mutable pipeline that can be submitted and published (v1 `PipelineDraft`)."""

    def __init__(self, pipeline, name, description, experiment_name, params, cont, tags, props):
        sess = current()
        self.id = _uid("draft", len(sess.drafts), name)
        self.name = name
        self.description = description
        self.experiment_name = experiment_name
        self.pipeline_parameters = dict(params or {})
        self.continue_on_step_failure = bool(cont)
        self.tags = dict(tags or {})
        self.properties = dict(props or {})
        self._pipeline = _as_pipeline(pipeline)
        self.last_submitted_pipeline_run_id = None

    @staticmethod
    def create(
        workspace,
        pipeline,
        name=None,
        description=None,
        experiment_name=None,
        pipeline_parameters=None,
        continue_on_step_failure=None,
        tags=None,
        properties=None,
        _service_endpoint=None,
        **kwargs,
    ):
        draft = PipelineDraft(
            pipeline,
            name or "pipeline_draft",
            description,
            experiment_name or name or "pipeline_draft",
            pipeline_parameters,
            continue_on_step_failure,
            tags,
            properties,
        )
        current().drafts.append(draft)
        return draft

    @staticmethod
    def get(workspace, id, _service_endpoint=None):
        for d in current().drafts:
            if d.id == id:
                return d
        raise fail(f"no PipelineDraft with id {id!r} was created in this file")

    @staticmethod
    def list(workspace, tags=None, _service_endpoint=None):
        return [
            d for d in current().drafts if all(d.tags.get(k) == v for k, v in (tags or {}).items())
        ]

    def update(
        self,
        pipeline=None,
        name=None,
        description=None,
        experiment_name=None,
        tags=None,
        pipeline_parameters=None,
        continue_on_step_failure=None,
    ):
        if pipeline is not None:
            self._pipeline = _as_pipeline(pipeline)
        for attr, value in (
            ("name", name),
            ("description", description),
            ("experiment_name", experiment_name),
        ):
            if value is not None:
                setattr(self, attr, value)
        if tags is not None:
            self.tags = dict(tags)
        if pipeline_parameters is not None:
            self.pipeline_parameters = dict(pipeline_parameters)
        if continue_on_step_failure is not None:
            self.continue_on_step_failure = bool(continue_on_step_failure)

    def submit_run(self, workspace=None):
        run = _submit(
            self._pipeline,
            self.experiment_name,
            self.pipeline_parameters,
            False,
            self.continue_on_step_failure,
        )
        self.last_submitted_pipeline_run_id = run.id
        return run

    def publish(self, workspace=None):
        return self._pipeline.publish(
            self.name, self.description, None, self.continue_on_step_failure
        )

    def get_graph(self, _workflow_provider=None):
        return self._pipeline

    def delete(self, workspace=None):
        drafts = current().drafts
        if self in drafts:
            drafts.remove(self)

    def save(self, path=None, _workflow_provider=None):
        return None

    def __repr__(self) -> str:
        return f"PipelineDraft(Name: {self.name}, Id: {self.id})"


def _as_pipeline(obj):
    if isinstance(obj, Pipeline):
        return obj
    if isinstance(obj, PublishedPipeline | PipelineDraft):
        return obj._pipeline
    if isinstance(obj, PipelineRun) and obj._pipeline is not None:
        return obj._pipeline
    raise fail(
        "PipelineDraft needs a Pipeline (or a PublishedPipeline, PipelineDraft or PipelineRun "
        f"from this file), got {type(obj).__name__}"
    )


# ------------------------------------------------------------------------------------- schedules


class TimeZone:
    UTC = "UTC"
    CoordinatedUniversalTime = "UTC"
    PacificStandardTime = "America/Los_Angeles"
    MountainStandardTime = "America/Denver"
    CentralStandardTime = "America/Chicago"
    EasternStandardTime = "America/New_York"
    CentralEuropeStandardTime = "Europe/Budapest"
    WEuropeStandardTime = "Europe/Berlin"
    GMTStandardTime = "Europe/London"
    IndiaStandardTime = "Asia/Kolkata"
    ChinaStandardTime = "Asia/Shanghai"
    TokyoStandardTime = "Asia/Tokyo"
    AUSEasternStandardTime = "Australia/Sydney"


class ScheduleRecurrence(V1Object):
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

    def validate(self):
        return None

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


class Schedule(V1Object):
    def __init__(self, name, pipeline, ir, recurrence=None):
        sess = current()
        self.name = name
        self.id = _uid("schedule", len(sess.schedules), name)
        self._pipeline = pipeline
        self._ir = ir
        self.pipeline_id = None
        self.pipeline_endpoint_id = None
        self.recurrence = recurrence
        self.description = ir.description
        trigger = ir.datastore_trigger
        self.datastore_name = trigger.datastore if trigger else None
        self.polling_interval = trigger.polling_interval_minutes if trigger else None
        self.path_on_datastore = trigger.path_on_datastore if trigger else None
        self.data_path_parameter_name = trigger.data_path_parameter if trigger else None

    @property
    def status(self):
        return "Active" if self._ir.active else "Disabled"

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
        sess = current()
        pipeline = None
        for pub in sess.publications:
            if pipeline_id is not None and pub.id == pipeline_id:
                pipeline = pub._pipeline
        for ep in _endpoints().values():
            if pipeline_endpoint_id is not None and ep.id == pipeline_endpoint_id:
                pipeline = ep._default()._pipeline
        if pipeline is None:
            if pipeline_endpoint_id is not None:
                raise fail(
                    f"Schedule: pipeline_endpoint_id {pipeline_endpoint_id!r} does not name a "
                    "PipelineEndpoint published in this file; pass pipeline_endpoint.id"
                )
            raise fail(
                f"Schedule.create: pipeline_id {pipeline_id!r} does not name a pipeline published "
                "in this file; pass published_pipeline.id"
            )
        if recurrence is None and datastore is None:
            raise fail("Schedule.create needs recurrence=ScheduleRecurrence(...) or datastore=...")
        if recurrence is not None and not isinstance(recurrence, ScheduleRecurrence):
            raise fail("Schedule recurrence must be a ScheduleRecurrence")
        ir = _schedule_ir(
            name,
            description,
            experiment_name,
            recurrence,
            datastore,
            path_on_datastore,
            polling_interval,
            data_path_parameter_name,
            pipeline_parameters,
        )
        sched = Schedule(name, pipeline, ir, recurrence)
        sched.pipeline_id = pipeline_id
        sched.pipeline_endpoint_id = pipeline_endpoint_id
        pipeline._schedules.append(sched)
        sess.schedules.append(sched)
        return sched

    @staticmethod
    def create_for_pipeline_endpoint(
        workspace,
        name,
        pipeline_endpoint_id,
        experiment_name,
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
    ):
        return Schedule.create(
            workspace,
            name,
            experiment_name=experiment_name,
            recurrence=recurrence,
            description=description,
            pipeline_parameters=pipeline_parameters,
            datastore=datastore,
            polling_interval=polling_interval,
            data_path_parameter_name=data_path_parameter_name,
            continue_on_step_failure=continue_on_step_failure,
            path_on_datastore=path_on_datastore,
            pipeline_endpoint_id=pipeline_endpoint_id,
        )

    @staticmethod
    def list(
        workspace,
        active_only=True,
        pipeline_id=None,
        _workflow_provider=None,
        _service_endpoint=None,
        pipeline_endpoint_id=None,
    ):
        return [
            s
            for s in current().schedules
            if pipeline_id in (None, s.pipeline_id)
            and pipeline_endpoint_id in (None, s.pipeline_endpoint_id)
            and (not active_only or s._ir.active)
        ]

    @staticmethod
    def get_all(workspace, active_only=True, pipeline_id=None, **kwargs):
        return Schedule.list(workspace, active_only, pipeline_id)

    @staticmethod
    def get(workspace, id, _workflow_provider=None, _service_endpoint=None):
        for s in current().schedules:
            if s.id == id:
                return s
        for s in current().schedules:
            if s.name == id:
                return s
        raise fail(f"no schedule {id!r} was created in this file")

    @staticmethod
    def get_schedules_for_pipeline_id(
        workspace, pipeline_id, _workflow_provider=None, _service_endpoint=None
    ):
        return Schedule.list(workspace, active_only=False, pipeline_id=pipeline_id)

    @staticmethod
    def get_schedules_for_pipeline_endpoint_id(
        workspace, pipeline_endpoint_id, _workflow_provider=None, _service_endpoint=None
    ):
        return Schedule.list(
            workspace, active_only=False, pipeline_endpoint_id=pipeline_endpoint_id
        )

    def enable(self, wait_for_provisioning=False, wait_timeout=3600):
        self._ir.active = True

    def disable(self, wait_for_provisioning=False, wait_timeout=3600):
        self._ir.active = False

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
        if name is not None:
            self.name = self._ir.name = name
        if description is not None:
            self.description = self._ir.description = description
        if recurrence is not None:
            self.recurrence = recurrence
            self._ir.recurrence = recurrence._ir()
        if pipeline_parameters is not None:
            self._ir.pipeline_parameters = _override_values(
                pipeline_parameters, "Schedule pipeline_parameters"
            )
        if status is not None:
            if str(status) not in ("Active", "Disabled"):
                raise fail(f"Schedule status must be 'Active' or 'Disabled', not {status!r}")
            self._ir.active = str(status) == "Active"
        trigger = self._ir.datastore_trigger
        if trigger is not None:
            if datastore is not None:
                trigger.datastore = datastore.name
                self.datastore_name = datastore.name
            if polling_interval is not None:
                trigger.polling_interval_minutes = int(polling_interval)
                self.polling_interval = int(polling_interval)
            if path_on_datastore is not None:
                trigger.path_on_datastore = path_on_datastore
                self.path_on_datastore = path_on_datastore
            if data_path_parameter_name is not None:
                trigger.data_path_parameter = data_path_parameter_name
                self.data_path_parameter_name = data_path_parameter_name

    def get_last_pipeline_run(self):
        return None

    def get_pipeline_runs(self):
        return []

    def __repr__(self) -> str:
        return f"Schedule(Name: {self.name}, Id: {self.id}, Status: {self.status})"


def _schedule_ir(
    name,
    description,
    experiment_name,
    recurrence,
    datastore,
    path_on_datastore,
    polling_interval,
    data_path_parameter_name,
    pipeline_parameters,
):
    from ..ir import DatastoreTrigger
    from ..ir import Schedule as IrSchedule
    from .workspace import Datastore

    if not isinstance(name, str) or not name:
        raise fail("Schedule needs a name")
    trigger = None
    if datastore is not None:
        if not isinstance(datastore, Datastore):
            raise fail("Schedule datastore= must be a Datastore")
        trigger = DatastoreTrigger(
            datastore=datastore.name,
            path_on_datastore=path_on_datastore,
            polling_interval_minutes=int(polling_interval or 5),
            data_path_parameter=data_path_parameter_name,
        )
    return IrSchedule(
        name=name,
        description=description,
        experiment_name=experiment_name,
        recurrence=recurrence._ir() if recurrence is not None else None,
        datastore_trigger=trigger,
        pipeline_parameters=_override_values(pipeline_parameters, "Schedule pipeline_parameters"),
        origin=current().origin(),
    )


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
