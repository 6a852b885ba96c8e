"""What the command line's two front doors share: messages, error handling, capture, compile.

`mlpipe.cli` (the entry point) runs a plain `mlpipe compile ...` itself and hands everything else to
the typer application in `mlpipe.commands`; both call these functions, so a compile behaves the
same either way. Nothing here imports typer, rich or pydantic.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import MlpipeError, Problem
from .runtime.store import StoreError

CAPTURE_TIMEOUT = 300.0

# mlpipe's own targets: pyproject.toml's `mlpipe.backends` entry points, read here without
# importlib.metadata (reading installed distributions' metadata is a noticeable part of a compile's
# start-up); tests/test_cli_fast_path.py checks the two lists agree. Other packages' targets are
# found through their entry points.
OWN_TARGETS = {
    "airflow": ("mlpipe.backends.airflow", "AirflowBackend"),
    "prefect": ("mlpipe.backends.prefect", "PrefectBackend"),
    "kfp": ("mlpipe.backends.kfp", "KfpBackend"),
}


class _Stderr:
    """Messages on stderr. A printable line is written as it is; anything else goes through rich's
    Console (it drops control codes and expands tabs), imported only then: importing rich is a
    noticeable part of every command's start-up."""

    _console = None

    def out(self, text: str, highlight: bool = False) -> None:
        if text.isprintable():
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            return
        if _Stderr._console is None:
            from rich.console import Console

            _Stderr._console = Console(stderr=True, highlight=False, soft_wrap=True)
        _Stderr._console.out(text, highlight=highlight)


err = _Stderr()


def report_problems(problems: list[Problem]) -> None:
    for p in problems:
        err.out(str(p), highlight=False)


def report_warnings(warnings: list[Problem]) -> None:
    for w in warnings:
        where = f"{w.file}:{w.line}" if w.line else w.file
        err.out(f"{where}: warning: {w.message}", highlight=False)


def guarded(fn) -> int:
    """Run a command; bad input becomes `file:line: message` lines. The exit status: 0, or 2 for
    bad input, 1 for an unreachable datastore, 130 when interrupted."""
    try:
        fn()
    except MlpipeError as exc:
        report_problems(exc.problems)
        return 2
    except KeyboardInterrupt:
        err.out("mlpipe: interrupted", highlight=False)
        return 130
    except StoreError as exc:  # a datastore that cannot be reached: one message, no traceback
        err.out(f"mlpipe: error: {exc}", highlight=False)
        return 1
    return 0


def capture_source(target: str | None, module: str | None = None, timeout=CAPTURE_TIMEOUT):
    from .capture import capture

    if (target is None) == (module is None):
        raise MlpipeError("give a pipeline FILE or -m MODULE (one of them)")
    result = capture(target, module=module, timeout=timeout)
    report_warnings(result.warnings)
    return result


def source_of(target: str | None, module: str | None) -> tuple[Path, str]:
    """The folder relative paths of the pipeline start from, and the key naming the source in an
    output folder's manifest."""
    from .capture import resolve_module, split_target

    if module is not None:
        path, _, _, selector = resolve_module(module, Path.cwd())
        return Path.cwd(), str(path) + (f":{selector}" if selector else "")
    source, selector = split_target(target)
    return Path(source).resolve().parent, str(Path(source).resolve()) + (
        f":{selector}" if selector else ""
    )


def apply_side_effects(pipelines, pipeline_dir: Path) -> None:
    """The pipeline file's uploads and dataset registrations (compiler/side_effects.py)."""
    from .side_effects import apply_side_effects as apply

    apply(pipelines, pipeline_dir, lambda line: err.out(line, highlight=False))


def installed_backends() -> dict[str, object]:
    """Every installed target's entry point (mlpipe's own and other packages')."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="mlpipe.backends")}


def backend_class(target: str):
    """The backend class of `target`: mlpipe's own targets first, then any other package's."""
    if target in OWN_TARGETS:
        from importlib import import_module

        module, name = OWN_TARGETS[target]
        return getattr(import_module(module), name)
    available = installed_backends()
    if target not in available:
        raise MlpipeError(
            f"unknown target {target!r}; installed targets: {', '.join(sorted(available))}"
        )
    return available[target].load()


def compile_source(
    target: str,
    output: Path,
    profile: str | None,
    file: str | None,
    module: str | None,
    capture_timeout: float = CAPTURE_TIMEOUT,
    *,
    whole_process: bool = False,
) -> None:
    """`mlpipe compile`: capture FILE (or MODULE), render it for `target` into folder `output`.

    `whole_process`: this compile is the process's only work (`mlpipe compile`, not a caller's
    process). Once the imports are done, gc.freeze() takes what they made (modules, classes,
    pydantic's validators: never garbage) out of the cyclic collector's sight: its full collections
    would otherwise rescan them as the IR grows, ~10 % of a 1000-step compile's CPU."""
    backend = backend_class(target)()
    from mlpipe.backends.base import compile_pipelines

    if whole_process:
        import gc

        gc.freeze()
    result = capture_source(file, module, capture_timeout)
    pipeline_dir, source_key = source_of(file, module)
    done = compile_pipelines(backend, result.pipelines, pipeline_dir, output, profile, source_key)
    report_warnings(done.warnings)
    for rel in done.written:
        if not rel.startswith(".mlpipe/"):
            err.out(f"wrote {output / rel}", highlight=False)
    for rel in done.removed:
        err.out(f"removed stale {output / rel}", highlight=False)
    apply_side_effects(result.pipelines, pipeline_dir)
