"""The `mlpipe` entry point.

Every command is a typer application (`mlpipe.commands`). Starting it costs a compile ~0.1 s of
CPU: importing typer and building a pydantic converter for each parameter of the command, at
every start. `mlpipe compile` in CI is the command run most often, with the same few options, so
`main` runs a plain compile itself (the same `compile_source` the typer command calls) and hands
anything else — `--help`, an unknown or repeated option, a value it does not read exactly as typer
would — to typer, which then parses, reports and exits as always.
"""

from __future__ import annotations

import sys

# Options of `mlpipe compile` that take a value -> compile_source's parameter.
_COMPILE_OPTIONS = {
    "-t": "target",
    "--target": "target",
    "-o": "output",
    "--output": "output",
    "--profile": "profile",
    "-m": "module",
    "--module": "module",
    "--capture-timeout": "capture_timeout",
}


def plain_compile(argv: list[str]) -> dict | None:
    """compile_source's arguments when `argv` is `compile` with nothing but its value options (each
    at most once, `-t kfp` or `--target=kfp`) and at most one FILE; else None (typer parses it)."""
    if not argv or argv[0] != "compile":
        return None
    found: dict[str, str] = {}
    words = iter(argv[1:])
    for word in words:
        if not word.startswith("-"):
            key, value = "file", word
        else:
            name, eq, value = word.partition("=")
            if not eq:
                value = next(words, None)
            elif not name.startswith("--"):
                return None  # `-t=kfp`: click reads the value as "=kfp"
            key = _COMPILE_OPTIONS.get(name)
            if key is None or value is None or value.startswith("-"):
                return None
        if key in found or not value:
            return None
        found[key] = value
    if "target" not in found or "output" not in found:
        return None
    timeout = found.pop("capture_timeout", None)
    args: dict = {"profile": None, "file": None, "module": None, **found}
    if timeout is not None:
        digits = timeout.replace(".", "", 1)
        if not (digits.isascii() and digits.isdigit()):
            return None  # typer's float parsing decides (and words its error)
        args["capture_timeout"] = float(timeout)
    from pathlib import Path

    args["output"] = Path(args["output"])
    return args


def main() -> None:
    args = plain_compile(sys.argv[1:])
    if args is None:
        from .commands import app

        app()
        return
    from .cli_common import compile_source, guarded

    code = guarded(lambda: compile_source(**args, whole_process=True))
    if code:
        sys.exit(code)


def __getattr__(name: str):
    # `from mlpipe.cli import app` (tests, embedding) still finds the typer application.
    if name == "app":
        from .commands import app

        return app
    raise AttributeError(f"module 'mlpipe.cli' has no attribute {name!r}")


if __name__ == "__main__":
    main()
