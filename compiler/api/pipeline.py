"""`Pipeline`: the steps of one pipeline, and what the file does with it (submit, publish).

The rest of v1's `azureml.pipeline.core` lives beside it (steps, runs, publishing, schedules;
PipelineParameter in data.py); every name stays importable from here, as before the split.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._session import current, fail
from ._v1 import V1Object
from .data import PipelineParameter  # noqa: F401 (re-exported)
from .publishing import (  # noqa: F401 (re-exported)
    _ENDPOINT_BASE,
    PipelineDraft,
    PipelineEndpoint,
    PublishedPipeline,
)
from .runs import PipelineRun, StepRun, StepRunOutput, _submit  # noqa: F401 (re-exported)
from .schedules import Schedule, ScheduleRecurrence, TimeZone  # noqa: F401 (re-exported)
from .steps import (  # noqa: F401 (re-exported)
    CommandStep,
    PythonScriptStep,
    StepSequence,
    _Step,
    compute_name,
    runconfig_of,
    split_command,
)
from .workspace import Experiment  # noqa: F401 (re-exported)

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
        from ..build import pipeline_steps

        return pipeline_steps(self)

    @property
    def graph(self):
        return self

    def validate(self):
        from ..build import pipeline_problems

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

    def _submit_from(self, experiment, options: dict):
        """`Experiment.submit(pipeline, ...)` (published pipelines and endpoints end up here)."""
        return _submit(
            self,
            experiment,
            options.get("pipeline_parameters"),
            options.get("regenerate_outputs", False),
            options.get("continue_on_step_failure", False),
        )

    @property
    def _pipeline(self):
        """The pipeline behind this object, as published pipelines, drafts and runs have one."""
        return self

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
