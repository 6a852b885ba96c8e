"""Published pipelines, pipeline endpoints and drafts."""

from __future__ import annotations

from ._session import current, fail
from ._v1 import V1Object, _uid
from .runs import PipelineRun, _submit

# Where inert runs, published pipelines and endpoints point: a reserved, unresolvable host, so a
# REST call to it can never reach anything (capture refuses the network anyway).
_ENDPOINT_BASE = (
    "https://mlpipe.invalid/pipelines/v1.0/subscriptions/00000000-0000-0000-0000-000000000000"
    "/resourceGroups/mlpipe/providers/Microsoft.MachineLearningServices/workspaces/local"
)


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

    def _submit_from(self, experiment, options: dict):
        """`Experiment.submit(published_pipeline, ...)`: its pipeline is submitted."""
        return self._pipeline._submit_from(experiment, options)

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
        if _is_pipeline(pipeline):
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
        if _is_pipeline(pipeline):
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

    def _submit_from(self, experiment, options: dict):
        """`Experiment.submit(endpoint, pipeline_version=...)`: that version's pipeline."""
        return self.get_pipeline(options.get("pipeline_version"))._submit_from(experiment, options)

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

    def _submit_from(self, experiment, options: dict):
        """`Experiment.submit(draft)`: the draft's own submission."""
        return self.submit_run()

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


def _is_pipeline(obj) -> bool:
    """A Pipeline is its own `_pipeline` (what published pipelines, drafts and runs hold), so this
    module needs no import of api/pipeline.py, which imports it."""
    return getattr(obj, "_pipeline", None) is obj


def _as_pipeline(obj):
    if _is_pipeline(obj):
        return obj
    if isinstance(obj, PublishedPipeline | PipelineDraft):
        return obj._pipeline
    if isinstance(obj, PipelineRun) and obj._pipeline is not None:
        return obj._pipeline
    raise fail(
        "PipelineDraft needs a Pipeline (or a PublishedPipeline, PipelineDraft or PipelineRun "
        f"from this file), got {type(obj).__name__}"
    )
