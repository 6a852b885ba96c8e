"""Checks on a built PipelineIR that do not depend on the target: one place, named reasons."""

from __future__ import annotations

from ..errors import Problem
from ..ir import Origin, PipelineIR
from .schedules import check_recurrence


def _where(origin: Origin | None, displays: dict, fallback: str) -> tuple[str, int | None]:
    if origin is None:
        return fallback, None
    return displays.get(origin.file, origin.file), origin.line


def find_cycle(deps: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of step names (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for up in sorted(deps.get(node, ())):
            if up not in deps:
                continue
            if state.get(up) == 1:
                return stack[stack.index(up) :] + [up]
            if up not in state:
                found = visit(up)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def validate(pipeline: PipelineIR, sess=None) -> list[Problem]:
    displays = getattr(sess, "displays", {}) if sess is not None else {}
    fallback = pipeline.source_file
    problems: list[Problem] = []

    def report(origin, message):
        file, line = _where(origin, displays, fallback)
        problems.append(Problem(file, line, message))

    seen: dict[str, Origin | None] = {}
    for step in pipeline.steps:
        if step.name in seen:
            first = seen[step.name]
            report(
                step.origin,
                f"duplicate step name {step.name!r} (also used at {first}): step names "
                "must be unique in a pipeline; pass a different name=",
            )
        else:
            seen[step.name] = step.origin
    if problems:
        return problems

    names = set(seen)
    for step in pipeline.steps:
        for after in step.run_after:
            if after not in names:
                report(
                    step.origin,
                    f"step {step.name!r} runs after {after!r}, which is not in the pipeline",
                )
    cycle = find_cycle(pipeline.dependencies())
    if cycle:
        # deps point upstream, so reverse to read in execution order
        path = " -> ".join(reversed(cycle))
        report(
            pipeline.step(cycle[0]).origin,
            f"the steps form a cycle ({path}): remove a run_after() or data edge to break it",
        )

    params = {p.name: p for p in pipeline.parameters}
    stores = [d.name for d in pipeline.datastores]
    for sub in pipeline.submissions:
        for key, value in sub.pipeline_parameters.items():
            _check_override(report, sub.origin, params, key, value, "pipeline_parameters", stores)
    for sched in pipeline.schedules:
        if sched.recurrence is not None:
            for message in check_recurrence(sched.recurrence):
                report(sched.origin, f"schedule {sched.name!r}: {message}")
        for key, value in sched.pipeline_parameters.items():
            _check_override(
                report, sched.origin, params, key, value, "Schedule pipeline_parameters", stores
            )
    return problems


def _check_override(report, origin, params, key, value, what, datastores):
    if key not in params:
        known = ", ".join(sorted(params)) or "none"
        report(
            origin, f"{what}: {key!r} is not a parameter of this pipeline (its parameters: {known})"
        )
        return
    from ..runtime.params import coerce

    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    try:
        coerce(key, params[key].type, value, datastores)
    except ValueError as exc:
        report(origin, f"{what}: {exc}")
