"""The `mlpipe` command line: every command, as a typer application.

`mlpipe.cli.main` (the entry point) runs a plain `mlpipe compile` without it (typer builds its
parameter converters at every start); what both share is in `mlpipe.cli_common`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .cli_common import (
    CAPTURE_TIMEOUT,
    apply_side_effects,
    capture_source,
    compile_source,
    err,
    guarded,
    installed_backends,
    report_problems,
    source_of,
)
from .errors import MlpipeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Compile Azure ML SDK v1 pipelines to Airflow, Prefect and Kubeflow Pipelines, "
    "or run them on this machine.",
)


def _version(value: bool):
    if value:
        print(f"mlpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
):
    pass


FileArg = Annotated[
    str | None,
    typer.Argument(help="Pipeline .py / .ipynb file, or FILE:NAME (or give -m MODULE)"),
]
ModuleOpt = Annotated[
    str | None,
    typer.Option(
        "-m",
        "--module",
        help="Capture MODULE[:NAME] as `python -m MODULE` runs it from the current directory",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--capture-timeout",
        help="Seconds the pipeline file may take to build its pipeline (0: no limit)",
    ),
]


def _guard(fn) -> None:
    """Run a command; bad input becomes `file:line: message` lines and exit status 2."""
    code = guarded(fn)
    if code:
        raise typer.Exit(code)


def _dumps_ir(pipelines) -> str:
    if len(pipelines) == 1:
        return pipelines[0].model_dump_json(indent=2) + "\n"
    return "[\n" + ",\n".join(p.model_dump_json(indent=2) for p in pipelines) + "\n]\n"


@app.command("ir")
def ir_cmd(
    file: FileArg = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the JSON here")
    ] = None,
    module: ModuleOpt = None,
    capture_timeout: TimeoutOpt = CAPTURE_TIMEOUT,
):
    """Capture FILE and print its IR as JSON (a list when it builds several pipelines)."""

    def go():
        text = _dumps_ir(capture_source(file, module, capture_timeout).pipelines)
        if output is None:
            sys.stdout.write(text)
        else:
            from mlpipe.backends.base import atomic_write

            atomic_write(output, text.encode("utf-8"))

    _guard(go)


@app.command("validate")
def validate_cmd(
    file: FileArg = None,
    module: ModuleOpt = None,
    capture_timeout: TimeoutOpt = CAPTURE_TIMEOUT,
):
    """Capture FILE and run every check; writes nothing."""

    def go():
        result = capture_source(file, module, capture_timeout)
        for p in result.pipelines:
            err.out(
                f"{p.name}: {len(p.steps)} steps, {len(p.parameters)} parameters: ok",
                highlight=False,
            )

    _guard(go)


@app.command("compile")
def compile_cmd(
    target: Annotated[str, typer.Option("--target", "-t", help="airflow, prefect or kfp")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder")],
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="local (the default: steps as processes on the workers) or kubernetes (a pod "
            "per step)",
        ),
    ] = None,
    file: FileArg = None,
    module: ModuleOpt = None,
    capture_timeout: TimeoutOpt = CAPTURE_TIMEOUT,
):
    """Compile FILE for an orchestrator into folder -o."""
    _guard(lambda: compile_source(target, output, profile, file, module, capture_timeout))


@app.command("images")
def images_cmd(
    target: Annotated[str, typer.Option("--target", "-t", help="airflow, prefect or kfp")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder of the build contexts")],
    file: FileArg = None,
    module: ModuleOpt = None,
    capture_timeout: TimeoutOpt = CAPTURE_TIMEOUT,
):
    """Write a build context (Dockerfile + pinned requirements + the step runtime) per step
    environment, for the kubernetes profiles and KFP; images.txt lists `<image> <folder>`."""

    def go():
        from .images import write_images

        result = capture_source(file, module, capture_timeout)
        source_key = source_of(file, module)[1]
        specs, folders = write_images(result.pipelines, output, target, source_key)
        for spec, folder in zip(specs, folders, strict=True):
            err.out(f"wrote {output / folder} for {spec.ref}", highlight=False)
        err.out(f"wrote {output / 'images.txt'}", highlight=False)

    _guard(go)


@app.command("run")
def run_cmd(
    file: FileArg = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Override a pipeline parameter: NAME=VALUE (repeatable)"
        ),
    ] = None,
    regenerate_outputs: Annotated[
        bool, typer.Option("--regenerate-outputs", help="Run every step, reusing nothing")
    ] = False,
    isolate_steps: Annotated[
        bool,
        typer.Option(
            "--isolate-steps",
            help="Each step as on its own machine: a fresh HOME, TMPDIR and cache per step "
            "(also $MLPIPE_ISOLATE_STEPS=1)",
        ),
    ] = False,
    module: ModuleOpt = None,
    capture_timeout: TimeoutOpt = CAPTURE_TIMEOUT,
):
    """Run the pipeline on this machine (steps in parallel, with v1 step reuse)."""

    def go():
        from .local import run_pipeline

        result = capture_source(file, module, capture_timeout)
        overrides = {}
        for item in param or []:
            if "=" not in item:
                raise MlpipeError(f"--param {item!r}: write NAME=VALUE")
            k, v = item.split("=", 1)
            overrides[k] = v
        pipeline_dir = source_of(file, module)[0]
        failed = False
        for p in result.pipelines:
            known = {x.name for x in p.parameters}
            unknown = sorted(set(overrides) - known)
            if unknown and len(result.pipelines) == 1:
                raise MlpipeError(
                    f"--param: {', '.join(unknown)} is not a parameter of pipeline {p.name!r} "
                    f"(its parameters: {', '.join(sorted(known)) or 'none'})"
                )
            mine = {k: v for k, v in overrides.items() if k in known}
            apply_side_effects([p], pipeline_dir)
            outcome = run_pipeline(
                p,
                pipeline_dir,
                params=mine,
                regenerate_outputs=regenerate_outputs or None,
                isolate_steps=isolate_steps or None,
            )
            failed = failed or not getattr(outcome, "ok", True)
        if failed:
            raise typer.Exit(1)

    _guard(go)


@app.command("graph")
def graph_cmd(
    file: FileArg = None,
    format: Annotated[str, typer.Option("--format", "-f", help="mermaid, dot or png")] = "mermaid",
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    module: ModuleOpt = None,
    capture_timeout: TimeoutOpt = CAPTURE_TIMEOUT,
):
    """Draw the pipeline's steps and data edges."""

    def go():
        from .graph import render_graph

        if format not in ("mermaid", "dot", "png"):
            raise MlpipeError(f"unknown --format {format!r}: use mermaid, dot or png")
        pipelines = capture_source(file, module, capture_timeout).pipelines
        data = render_graph(pipelines, format)
        if output is None:
            if format == "png":
                raise MlpipeError("--format png needs -o FILE.png")
            sys.stdout.write(data.decode() if isinstance(data, bytes) else data)
        else:
            from mlpipe.backends.base import atomic_write

            atomic_write(output, data if isinstance(data, bytes) else data.encode())

    _guard(go)


@app.command("migrate")
def migrate_cmd(
    path: Annotated[Path, typer.Argument(help="A file or a folder of pipeline and step scripts")],
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff; change nothing")
    ] = False,
):
    """Rewrite azureml.* imports and references to mlpipe (libcst codemod, formatting kept)."""

    def go():
        from .migrate import run_migrate

        code = run_migrate(path, diff=diff, out=sys.stdout, err=err)
        if code:
            raise typer.Exit(code)

    _guard(go)


@app.command("lint")
def lint_cmd(file: Annotated[Path, typer.Argument(help="Pipeline file to check (not executed)")]):
    """Warn about v1 reuse traps (static analysis, nothing is executed)."""

    def go():
        from .lint import run_lint

        code = run_lint(file, out=sys.stdout, err=err)
        if code:
            raise typer.Exit(code)

    _guard(go)


@app.command("verify")
def verify_cmd(
    folder: Annotated[Path, typer.Argument(help="A folder mlpipe compiled into")],
    target: Annotated[str, typer.Option("--target", "-t", help="airflow, prefect or kfp")],
    python: Annotated[
        str | None, typer.Option("--python", help="Interpreter that has the orchestrator installed")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Pipeline file (or '-m MODULE'): also say whether the artifacts are stale",
        ),
    ] = None,
):
    """Load the artifacts with the target's own loader; report damage and staleness."""

    def go():
        from .verify import verify

        available = installed_backends()
        if target not in available:
            raise MlpipeError(
                f"unknown target {target!r}; installed targets: {', '.join(sorted(available))}"
            )
        problems = verify(folder, available[target].load()(), python, source)
        if problems:
            report_problems(problems)
            raise typer.Exit(1)
        err.out(f"{folder}: {target} artifacts load and are current", highlight=False)

    _guard(go)


# --------------------------------------------------------------------- run history (runs, show, report)


def _history_roots(
    file: str | None, module: str | None = None
) -> tuple[list[str], set[str] | None]:
    """Where the runs are kept: the state of FILE's (or MODULE's) pipelines, else of the project
    in this folder."""
    from .runs import state_root_here, state_roots

    if file is None and module is None:
        return [state_root_here(Path.cwd())], None
    pipelines = capture_source(file, module).pipelines
    roots = state_roots(pipelines, source_of(file, module)[0])
    return list(roots), set().union(*roots.values())


HistoryFile = Annotated[
    str | None,
    typer.Argument(help="Pipeline file (default: the project in the current folder)"),
]


@app.command("runs")
def runs_cmd(
    file: HistoryFile = None,
    module: ModuleOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most N runs (0: all)")] = 0,
):
    """List the project's runs, newest first: runner, start, duration, status, step counts."""

    def go():
        from .runs import format_runs, list_runs

        roots, names = _history_roots(file, module)
        runs = sorted(
            (r for root in roots for r in list_runs(root, names)),
            key=lambda r: (r.started or 0.0, r.run_id),
            reverse=True,
        )
        runs = runs[:limit] if limit > 0 else runs
        if as_json:
            sys.stdout.write(json.dumps([r.summary() for r in runs], indent=2) + "\n")
        else:
            sys.stdout.write(format_runs(runs, roots))

    _guard(go)


@app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix)")],
    file: HistoryFile = None,
    module: ModuleOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
):
    """Show a run's steps: result, why each ran, duration, metrics, outputs, logs."""

    def go():
        from .runs import find_run, format_run, step_details

        found = find_run(_history_roots(file, module)[0], run)
        if as_json:
            doc = {**found.summary(), "steps": step_details(found)}
            sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        else:
            sys.stdout.write(format_run(found))

    _guard(go)


@app.command("report")
def report_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write")],
    file: HistoryFile = None,
    module: ModuleOpt = None,
):
    """Write a self-contained HTML report of a run: graph, timeline, reasons, metrics, outputs."""

    def go():
        from mlpipe.backends.base import atomic_write

        from .report import render_report
        from .runs import find_run

        found = find_run(_history_roots(file, module)[0], run)
        atomic_write(output, render_report(found).encode("utf-8"))
        err.out(f"wrote {output}", highlight=False)

    _guard(go)


@app.command("schema")
def schema_cmd():
    """Print the IR's JSON schema."""
    from .ir import PipelineIR

    sys.stdout.write(json.dumps(PipelineIR.model_json_schema(), indent=2, sort_keys=True) + "\n")
