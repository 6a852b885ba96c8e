"""Pipeline parameters resolved once, for every target: each parameter's type and the values a run
starts with, typed the way the step runtime will read them.

v1's meaning (docs: /work/shared/reference/azureml-v1-semantics.md, "Parameters"):
- the type of a `PipelineParameter` is the type of its `default_value` (int, float, bool, str, a
  DataPath or a dataset; the IR records it as `Parameter.type`);
- `Experiment.submit(pipeline_parameters=...)` and `Schedule.create(pipeline_parameters=...)`
  override values per run; an override is whatever the step runtime's `coerce` accepts for that
  type (`"5"` and `5.0` for an int, `0` / `"true"` for a bool, `2` for a float, ...) and is
  written typed: `5`, `False`, `2.0`. Data parameters keep the form they were given in (a DataPath
  / dataset as its JSON object, or the `<datastore>/<path>` / URL text), validated the same way.

What a target makes of it is formatting only: Airflow `Param`s, the Prefect flow signature and
deployments, KFP input definitions and the deploy document all read `resolve(pipeline)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Origin, PipelineIR, Schedule, Submission
from ..runtime.params import ParameterError, coerce

DATA_TYPES = ("datapath", "dataset")


@dataclass(frozen=True)
class ResolvedParameter:
    name: str
    type: str  # the IR type: string, int, float, bool, datapath, dataset
    # The PipelineParameter's default_value as plain JSON data (a DataPath / dataset as a dict).
    default: object
    origin: Origin | None = None

    @property
    def is_data(self) -> bool:
        return self.type in DATA_TYPES


@dataclass
class Parameters:
    """A pipeline's parameters and the typed overrides of its submissions and schedules."""

    declared: list[ResolvedParameter]
    # One dict per Experiment.submit, in order: {parameter: typed value} (known names only).
    submissions: list[dict[str, object]] = field(default_factory=list)
    # One dict per Schedule.create, in the order of `pipeline.schedules`.
    schedules: list[dict[str, object]] = field(default_factory=list)
    # (origin, message) for every override v1 would refuse (unknown name, wrong value).
    problems: list[tuple[Origin | None, str]] = field(default_factory=list)

    @property
    def submitted(self) -> dict[str, object]:
        """The last submission's overrides: what `mlpipe run` and a deployment start from."""
        return self.submissions[-1] if self.submissions else {}

    def defaults(self) -> dict[str, object]:
        """{name: the PipelineParameter's own default}."""
        return {p.name: p.default for p in self.declared}

    def run_defaults(self, schedule_index: int | None = None) -> dict[str, object]:
        """What a run that names no value gets: the declared default, replaced by the last
        submission's value, replaced by the values of the schedule at `schedule_index` in
        `pipeline.schedules` (scheduled runs carry no values of their own)."""
        values = self.defaults()
        values.update(self.submitted)
        if schedule_index is not None:
            values.update(self.schedules[schedule_index])
        return values


def plain(value) -> object:
    """An IR value as plain JSON data (a DataPath / Dataset model becomes its dict)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def typed_value(name: str, ptype: str, value, datastores=()) -> object:
    """`value` as parameter `name` of type `ptype` holds it (ParameterError when v1 would refuse
    it): scalars converted by the runtime's own coercion; data values checked, kept as given."""
    value = plain(value)
    converted = coerce(name, ptype, value, datastores)
    return value if ptype in DATA_TYPES else converted


def resolve(pipeline: PipelineIR) -> Parameters:
    """Every parameter's type and default, and the typed overrides of every submission and
    schedule; overrides v1 refuses are collected in `problems` and left out."""
    declared = [
        ResolvedParameter(p.name, p.type, plain(p.default), p.origin) for p in pipeline.parameters
    ]
    out = Parameters(declared)
    types = {p.name: p.type for p in declared}
    stores = [d.name for d in pipeline.datastores]
    for sub in pipeline.submissions:
        out.submissions.append(_overrides(out, sub, "pipeline_parameters", types, stores))
    for sched in pipeline.schedules:
        what = "Schedule pipeline_parameters"
        out.schedules.append(_overrides(out, sched, what, types, stores))
    return out


def _overrides(
    out: Parameters, owner: Submission | Schedule, what: str, types: dict, stores: list[str]
) -> dict[str, object]:
    values: dict[str, object] = {}
    for key, value in owner.pipeline_parameters.items():
        if key not in types:
            known = ", ".join(sorted(types)) or "none"
            message = (
                f"{what}: {key!r} is not a parameter of this pipeline (its parameters: {known})"
            )
            out.problems.append((owner.origin, message))
            continue
        try:
            values[key] = typed_value(key, types[key], value, stores)
        except ParameterError as exc:
            out.problems.append((owner.origin, f"{what}: {exc}"))
    return values
