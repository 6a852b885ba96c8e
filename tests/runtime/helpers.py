"""Build pipeline IR objects directly (no capture front end) for runtime and runner tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from mlpipe.ir import (
    DataPath,
    Dataset,
    DatasetSource,
    Datastore,
    Environment,
    InputArg,
    LiteralArg,
    OutputArg,
    Parameter,
    ParameterArg,
    PipelineIR,
    Snapshot,
    Step,
    StepInput,
    StepOutput,
    StepOutputSource,
)
from mlpipe.snapshot import hash_directory

# A script prologue: record that this step really executed (a side effect the test reads back).
RECORD = textwrap.dedent(
    """\
    import os, sys, json
    def _record(name):
        with open(os.environ["SIDE_LOG"], "a", encoding="utf-8") as fh:
            fh.write(name + "\\n")
    """
)


def lit(value):
    return LiteralArg(value=value)


def par(name: str):
    return ParameterArg(name=name)


def inp(name: str):
    return InputArg(name=name)


def out(name: str):
    return OutputArg(name=name)


def write_source(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def step(
    name: str,
    source_dir: Path,
    script: str = "main.py",
    *,
    arguments=(),
    inputs=(),
    outputs=(),
    base_dir: Path | None = None,
    **kw,
) -> Step:
    info = hash_directory(source_dir)
    src = str(source_dir.relative_to(base_dir)) if base_dir else str(source_dir)
    return Step(
        name=name,
        script=script,
        source_directory=src,
        snapshot=Snapshot(hash=info.hash, files=info.files, bytes=info.bytes),
        arguments=list(arguments),
        inputs=list(inputs),
        outputs=list(outputs),
        **kw,
    )


def output(name: str, destination: str = "dataset/{run-id}/{output-name}", **kw) -> StepOutput:
    return StepOutput(
        name=name,
        kind="output_file_dataset",
        datastore="workspaceblobstore",
        destination=destination,
        **kw,
    )


def from_step(name: str, up: str, up_output: str, mode: str = "mount") -> StepInput:
    return StepInput(name=name, source=StepOutputSource(step=up, output=up_output), mode=mode)


def from_dataset(
    name: str,
    path: str,
    mode: str = "download",
    type_: str = "file",
    datastore="workspaceblobstore",
    **kw,
) -> StepInput:
    return StepInput(
        name=name,
        source=DatasetSource(
            dataset=Dataset(type=type_, paths=[DataPath(datastore=datastore, path=path)], **kw)
        ),
        mode=mode,
    )


def pipeline(
    name: str,
    datastore_dir: Path,
    steps: list[Step],
    *,
    parameters: list[Parameter] = (),
    environments: list[Environment] = (),
    **kw,
) -> PipelineIR:
    return PipelineIR(
        name=name,
        source_file="pipeline.py",
        datastores=[Datastore(name="workspaceblobstore", url=str(datastore_dir))],
        steps=steps,
        parameters=list(parameters),
        environments=list(environments),
        **kw,
    )


def env(key: str, packages: list[str], **kw) -> Environment:
    import hashlib

    content = hashlib.sha256(json.dumps(sorted(packages)).encode()).hexdigest()
    return Environment(key=key, name=key, pip_packages=packages, content_hash=content, **kw)


def executed(side_log: Path) -> list[str]:
    if not side_log.exists():
        return []
    return side_log.read_text(encoding="utf-8").split()


def reset(side_log: Path) -> None:
    side_log.write_text("", encoding="utf-8")
