"""Checks on a built PipelineIR that do not depend on the target: one place, named reasons."""

from __future__ import annotations

from ..errors import Problem
from ..ir import Origin, PipelineIR
from .parameters import resolve as resolve_parameters
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

    for sched in pipeline.schedules:
        if sched.recurrence is not None:
            for message in check_recurrence(sched.recurrence):
                report(sched.origin, f"schedule {sched.name!r}: {message}")
    # Submission and schedule overrides: judged as the runtime will judge them (passes/parameters).
    for origin, message in resolve_parameters(pipeline).problems:
        report(origin, message)
    return problems
