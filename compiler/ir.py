"""The neutral intermediate representation of a captured pipeline.

Plain data only: every model round-trips through JSON exactly, and nothing here imports the rest of
mlpipe except `mlpipe.runtime.irquery` (stdlib only): questions both the compiler and the step
runtime ask of an IR are answered there once. Front ends build it, passes check and complete it, backends and the runtime read it.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from .runtime.irquery import step_parameter_names

SCHEMA_VERSION = "1"

Scalar = bool | int | float | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Origin(_Model):
    """Where the user's code created an object: path relative to the pipeline file's folder.

    For a notebook, `file` names the cell too (`nb.ipynb:cell 3`) and `line` counts within it."""

    file: str
    line: int

    def __str__(self) -> str:
        if _CELL.search(self.file):
            return f"{self.file}:line {self.line}"
        return f"{self.file}:{self.line}"


_CELL = re.compile(r"\.ipynb:cell \d+$")


# ----------------------------------------------------------------------------------------- data


class DataPath(_Model):
    """A path inside a named datastore."""

    kind: Literal["datapath"] = "datapath"
    datastore: str
    path: str = ""


class UrlPath(_Model):
    """A path given as a URL (http(s), s3://, abfs://, file://...)."""

    kind: Literal["url"] = "url"
    url: str


DatasetPath = Annotated[DataPath | UrlPath, Field(discriminator="kind")]


class Dataset(_Model):
    """A FileDataset or TabularDataset definition (lazy: nothing is read at capture)."""

    type: Literal["file", "tabular"]
    paths: list[DatasetPath]
    separator: str = ","
    header: bool = True
    # How a tabular dataset's files are read (Dataset.Tabular.from_*_files).
    format: Literal["delimited", "parquet", "json_lines"] = "delimited"
    registered_name: str | None = None
    registered_version: int | None = None


class DatasetSource(_Model):
    kind: Literal["dataset"] = "dataset"
    dataset: Dataset


class StepOutputSource(_Model):
    """Data produced by another step of the same pipeline."""

    kind: Literal["step_output"] = "step_output"
    step: str
    output: str


class DataPathSource(_Model):
    kind: Literal["datapath"] = "datapath"
    path: DataPath


class ParameterSource(_Model):
    """Data whose location is a pipeline parameter (DataPath / dataset default, overridable)."""

    kind: Literal["parameter"] = "parameter"
    parameter: str


InputSource = Annotated[
    DatasetSource | StepOutputSource | DataPathSource | ParameterSource,
    Field(discriminator="kind"),
]

InputMode = Literal["download", "mount", "direct"]


class TabularFormat(_Model):
    """How a step output consumed as a tabular dataset (`read_delimited_files`) is parsed."""

    separator: str = ","
    header: bool = True


class StepInput(_Model):
    name: str
    source: InputSource
    mode: InputMode = "mount"
    path_on_compute: str | None = None
    overwrite: bool = False
    # Set when a step output is consumed as a tabular dataset (mode "direct").
    tabular: TabularFormat | None = None


OutputMode = Literal["mount", "upload"]


class StepOutput(_Model):
    """An OutputFileDatasetConfig or PipelineData the step writes into."""

    name: str
    kind: Literal["output_file_dataset", "pipeline_data"]
    datastore: str
    # Path inside the datastore; may contain {run-id} and {output-name}.
    destination: str
    mode: OutputMode = "mount"
    register_as: str | None = None
    register_description: str | None = None
    source_globs: list[str] | None = None
    overwrite: bool = False


# ------------------------------------------------------------------------------------ arguments


class LiteralArg(_Model):
    kind: Literal["literal"] = "literal"
    value: Scalar


class ParameterArg(_Model):
    kind: Literal["parameter"] = "parameter"
    name: str


class InputArg(_Model):
    """Becomes the local path of the step's input with this name."""

    kind: Literal["input"] = "input"
    name: str


class OutputArg(_Model):
    """Becomes the local path of the step's output with this name."""

    kind: Literal["output"] = "output"
    name: str


Argument = Annotated[LiteralArg | ParameterArg | InputArg | OutputArg, Field(discriminator="kind")]


# ----------------------------------------------------------------------- pipeline-level objects


class Parameter(_Model):
    name: str
    type: Literal["string", "int", "float", "bool", "datapath", "dataset"]
    default: Scalar | DataPath | Dataset
    origin: Origin | None = None


class Datastore(_Model):
    name: str
    # A local absolute path or an fsspec URL. Never credentials: those come from the environment.
    url: str
    type: str = "local"
    origin: Origin | None = None


class KubernetesPlacement(_Model):
    """Where pods go: per compute target, and workspace-wide defaults on the pipeline."""

    default_image: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, str]] = Field(default_factory=list)
    image_pull_secrets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    priority_class: str | None = None
    # Kubernetes field names (runAsUser, fsGroup, ...): the container's and the pod's
    security_context: dict[str, int | bool] = Field(default_factory=dict)
    pod_security_context: dict[str, int | bool | str | list[int]] = Field(default_factory=dict)
    # PersistentVolumeClaims: {name, claim, mount_path | datastore, sub_path?}
    volumes: list[dict[str, str]] = Field(default_factory=list)
    # single keys of secrets / config maps: {secret | config_map, key, env}
    env_from: list[dict[str, str]] = Field(default_factory=list)


class ImageSettings(_Model):
    """mlpipe.yaml `images:`: the registry the step images of `mlpipe images` are pushed to."""

    registry: str
    base_image: str | None = None
    exclude_newer: str | None = None


class Compute(_Model):
    name: str
    type: str = "amlcompute"
    vm_size: str | None = None
    vm_priority: str = "dedicated"
    cpu: float | None = None
    memory_gib: float | None = None
    gpu_count: int = 0
    gpu_type: str | None = None
    min_nodes: int = 0
    max_nodes: int = 4
    kubernetes: KubernetesPlacement = Field(default_factory=KubernetesPlacement)
    origin: Origin | None = None


class Environment(_Model):
    """A step's software environment. `key` identifies it in the pipeline (name + content)."""

    key: str
    name: str
    version: str | None = None
    curated: bool = False
    docker_image: str | None = None
    dockerfile: str | None = None
    python_version: str | None = None
    conda_packages: list[str] = Field(default_factory=list)
    pip_packages: list[str] = Field(default_factory=list)
    user_managed: bool = False
    env_vars: dict[str, str] = Field(default_factory=dict)
    content_hash: str = ""
    origin: Origin | None = None


class Snapshot(_Model):
    """The step's source directory as hashed at capture time."""

    hash: str
    files: int
    bytes: int


class Step(_Model):
    name: str
    kind: Literal["python_script", "command"] = "python_script"
    script: str | None = None
    # CommandStep: the argv to run (items like `arguments`); None for a python_script step.
    command: list[Argument] | None = None
    # Relative to the pipeline file's folder when inside it, else absolute.
    source_directory: str
    snapshot: Snapshot
    arguments: list[Argument] = Field(default_factory=list)
    inputs: list[StepInput] = Field(default_factory=list)
    outputs: list[StepOutput] = Field(default_factory=list)
    # `params`: reach the script as AML_PARAMETER_<name> environment variables.
    params: dict[str, LiteralArg | ParameterArg] = Field(default_factory=dict)
    env_vars: dict[str, str] = Field(default_factory=dict)
    compute: str | None = None
    environment: str | None = None
    allow_reuse: bool = True
    version: str | None = None
    run_after: list[str] = Field(default_factory=list)
    node_count: int = 1
    max_run_duration_seconds: int | None = None
    retries: int = 0
    origin: Origin | None = None

    def input(self, name: str) -> StepInput:
        for item in self.inputs:
            if item.name == name:
                return item
        raise KeyError(name)

    def output(self, name: str) -> StepOutput:
        for item in self.outputs:
            if item.name == name:
                return item
        raise KeyError(name)

    def parameter_names(self) -> list[str]:
        """Pipeline parameters this step's arguments, command, params or inputs refer to, sorted
        (the runtime's own answer: one implementation for both)."""
        fields = {"arguments", "command", "params", "inputs"}
        return step_parameter_names(self.model_dump(mode="json", include=fields))


class Recurrence(_Model):
    frequency: Literal["Minute", "Hour", "Day", "Week", "Month"]
    interval: int = 1
    start_time: str | None = None
    time_zone: str | None = None
    hours: list[int] = Field(default_factory=list)
    minutes: list[int] = Field(default_factory=list)
    week_days: list[str] = Field(default_factory=list)
    time_of_day: str | None = None


class DatastoreTrigger(_Model):
    datastore: str
    path_on_datastore: str | None = None
    polling_interval_minutes: int = 5
    # v1 `data_path_parameter_name`: the DataPath parameter that receives the changed blob's path.
    data_path_parameter: str | None = None


# A run-time value for a parameter: a scalar, or a DataPath / dataset for those parameter types.
ParameterValue = Scalar | DataPath | Dataset


class Schedule(_Model):
    name: str
    description: str | None = None
    experiment_name: str | None = None
    recurrence: Recurrence | None = None
    datastore_trigger: DatastoreTrigger | None = None
    pipeline_parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    # False when the capture left the schedule disabled (`schedule.disable()`).
    active: bool = True
    origin: Origin | None = None


class Submission(_Model):
    experiment: str
    pipeline_parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    regenerate_outputs: bool = False
    continue_on_step_failure: bool = False
    origin: Origin | None = None


class Publication(_Model):
    name: str
    description: str | None = None
    version: str | None = None
    endpoint: str | None = None
    origin: Origin | None = None


class DatastoreUpload(_Model):
    """`Datastore.upload` / `upload_files` seen during capture: recorded, never performed then."""

    datastore: str
    target_path: str = ""
    # Relative to the pipeline file's folder when inside it, else absolute.
    files: list[str] = Field(default_factory=list)
    # `upload(src_dir)`: `files` holds one folder whose contents go to target_path.
    directory: bool = False
    relative_root: str | None = None
    overwrite: bool = False
    origin: Origin | None = None


class DatasetRegistration(_Model):
    """`dataset.register(ws, name, ...)` seen during capture: recorded, applied (written to the
    dataset registry) by `mlpipe run` / `mlpipe compile`, never by `validate` / `ir`."""

    name: str
    dataset: Dataset
    description: str | None = None
    tags: dict[str, Scalar] = Field(default_factory=dict)
    create_new_version: bool = False
    origin: Origin | None = None


class PipelineIR(_Model):
    schema_version: Literal["1"] = SCHEMA_VERSION
    name: str
    description: str | None = None
    # The pipeline file's name; every Origin.file and source_directory is relative to its folder.
    source_file: str
    default_datastore: str = "workspaceblobstore"
    workspace: str = "local"
    parameters: list[Parameter] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    datastores: list[Datastore] = Field(default_factory=list)
    computes: list[Compute] = Field(default_factory=list)
    environments: list[Environment] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    submissions: list[Submission] = Field(default_factory=list)
    publications: list[Publication] = Field(default_factory=list)
    # Datastore uploads the capture saw (in order); a runner may stage them before running.
    uploads: list[DatastoreUpload] = Field(default_factory=list)
    # Dataset registrations the capture saw (in order), applied after the uploads.
    registrations: list[DatasetRegistration] = Field(default_factory=list)
    continue_on_step_failure: bool = False
    # mlpipe.yaml `kubernetes:` defaults (default image, namespace, ...) for the kubernetes profiles.
    kubernetes: KubernetesPlacement = Field(default_factory=KubernetesPlacement)
    # mlpipe.yaml `images:`; when set, the kubernetes profiles and KFP run mlpipe's step images.
    images: ImageSettings | None = None
    origin: Origin | None = None

    # ---- lookups
    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def datastore(self, name: str) -> Datastore:
        for d in self.datastores:
            if d.name == name:
                return d
        raise KeyError(name)

    def compute(self, name: str) -> Compute:
        for c in self.computes:
            if c.name == name:
                return c
        raise KeyError(name)

    def environment(self, key: str) -> Environment:
        for e in self.environments:
            if e.key == key:
                return e
        raise KeyError(key)

    def environment_of(self, step: Step) -> Environment | None:
        """The step's Environment; None when it has none (or names one not captured)."""
        return next((e for e in self.environments if e.key == step.environment), None)

    # ---- graph
    def dependencies(self) -> dict[str, set[str]]:
        """{step: set of upstream steps}, from data edges and explicit run_after edges."""
        deps: dict[str, set[str]] = {}
        for s in self.steps:
            up = set(s.run_after)
            up |= {i.source.step for i in s.inputs if isinstance(i.source, StepOutputSource)}
            up.discard(s.name)
            deps[s.name] = up
        return deps

    def topological_order(self) -> list[str]:
        """Steps in dependency order; ties keep definition order. Raises ValueError on a cycle."""
        deps = self.dependencies()
        position = {s.name: i for i, s in enumerate(self.steps)}
        downstream: dict[str, list[str]] = {n: [] for n in deps}
        missing = {n: 0 for n in deps}
        for name, ups in deps.items():
            for up in ups:
                if up in downstream:
                    downstream[up].append(name)
                    missing[name] += 1
        ready = [(position[n], n) for n, k in missing.items() if k == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for down in downstream[name]:
                missing[down] -= 1
                if missing[down] == 0:
                    heapq.heappush(ready, (position[down], down))
        if len(order) != len(deps):
            raise ValueError("cycle among steps: " + ", ".join(sorted(set(deps) - set(order))))
        return order

    # ---- identity
    def canonical_json(self) -> str:
        return canonical_text(self.model_dump(mode="json"))

    def ir_hash(self) -> str:
        return hash_doc(self.model_dump(mode="json"))


def canonical_text(doc: dict) -> str:
    """The canonical text of an IR's JSON form (`PipelineIR.model_dump(mode="json")`)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def hash_doc(doc: dict) -> str:
    """`PipelineIR.ir_hash()` of an IR already dumped to its JSON form."""
    return hashlib.sha256(canonical_text(doc).encode()).hexdigest()


def schema() -> dict:
    return PipelineIR.model_json_schema()
