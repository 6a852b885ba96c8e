"""Questions about a pipeline's IR that both the compiler and the step runtime ask.

Standard library only, on the IR's JSON form (plain dicts): the runtime reads the IR as JSON and
never imports pydantic, and `mlpipe.ir` answers its own questions by calling these functions, so
the two can never disagree (tests/runtime/test_irquery.py checks them against each other).
"""

from __future__ import annotations


def step_argument_lists(step: dict) -> list[list]:
    """Every argument list of a step: `arguments` and, for a CommandStep, `command`."""
    return [step.get("arguments") or [], step.get("command") or []]


def step_parameter_names(step: dict) -> list[str]:
    """Pipeline parameters a step refers to (arguments, command, params, inputs), sorted."""
    names: set[str] = set()
    for items in step_argument_lists(step):
        for arg in items:
            if arg.get("kind") == "parameter":
                names.add(arg["name"])
    for value in (step.get("params") or {}).values():
        if value.get("kind") == "parameter":
            names.add(value["name"])
    for item in step.get("inputs") or []:
        source = item.get("source") or {}
        if source.get("kind") == "parameter":
            names.add(source["parameter"])
    return sorted(names)
