"""Capture-time side effects: the uploads and dataset registrations a pipeline file makes.

v1 pipeline files (the MLOpsPython pattern) upload a CSV with `datastore.upload_files(...)` and
register it with `Dataset.Tabular.from_delimited_files(...).register(ws, name, ...)` before
building the pipeline; the steps then read it with `Dataset.get_by_name`. On Azure that happened
when the build script ran. mlpipe records them during capture (`PipelineIR.uploads`,
`PipelineIR.registrations`) and applies them where the build script's run corresponds:

- `mlpipe run` applies them before the first step;
- `mlpipe compile` applies them after writing the artifacts, into the datastores the compiled
  pipeline uses (the same `<default datastore>/.mlpipe/` state every runner reads);
- `mlpipe validate` and `mlpipe ir` never write data.

Applying is idempotent: a file whose destination already holds the same bytes is not written, and
a registration whose definition and content match the latest version adds no version, so step
fingerprints (and reuse) do not change. Each action is reported on the console.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import MlpipeError, Problem
from .ir import PipelineIR
from .runtime.registry import DatasetRegistry, RegistryError, WorkspaceInfo


def apply_side_effects(
    pipelines: list[PipelineIR], pipeline_dir: Path, say: Callable[[str], None]
) -> None:
    """Perform every pipeline's recorded uploads, then its dataset registrations."""
    pipelines = [p for p in pipelines if p.uploads or p.registrations]
    if not pipelines:
        return  # the usual case: a compile does not load the local runner's modules
    from .api import _live
    from .local import _ir_dict

    done: set[str] = set()
    for p in pipelines:
        info = WorkspaceInfo.from_ir(_ir_dict(p, pipeline_dir))
        for up in p.uploads:
            key = "upload:" + up.model_dump_json()
            if key in done:
                continue
            done.add(key)
            sources = [_abs(pipeline_dir, f) for f in up.files]
            root = _abs(pipeline_dir, up.relative_root) if up.relative_root else None
            try:
                plan = _live.upload_plan(sources, up.directory, root)
                result = _live.upload(info, up.datastore, plan, up.target_path, up.overwrite)
            except (OSError, ValueError, LookupError) as exc:
                raise _problem(
                    p, up.origin, f"uploading to datastore {up.datastore!r}: {exc}"
                ) from None
            say(_upload_line(up.datastore, up.target_path, result))
        for reg in p.registrations:
            key = "register:" + reg.model_dump_json()
            if key in done:
                continue
            done.add(key)
            try:
                doc, created = DatasetRegistry(info).register(
                    reg.name,
                    reg.dataset.model_dump(mode="json"),
                    description=reg.description,
                    tags=reg.tags,
                    create_new_version=reg.create_new_version,
                    source={"capture": str(reg.origin) if reg.origin else p.source_file},
                )
            except (RegistryError, OSError) as exc:
                raise _problem(p, reg.origin, f"registering dataset {reg.name!r}: {exc}") from None
            state = "registered" if created else "unchanged:"
            say(f"mlpipe: dataset {reg.name!r} {state} version {doc['version']}")


def _abs(base: Path, path: str) -> str:
    return path if os.path.isabs(path) else str((base / path).resolve())


def _upload_line(datastore: str, target: str, result: dict[str, list[str]]) -> str:
    where = f"{datastore}/{target.strip('/')}" if target.strip("/") else datastore
    parts = [f"{len(result['uploaded'])} uploaded"]
    if result["unchanged"]:
        parts.append(f"{len(result['unchanged'])} unchanged")
    if result["kept"]:
        parts.append(f"{len(result['kept'])} kept (exist, overwrite=False)")
    return f"mlpipe: upload to {where}: {', '.join(parts)}"


def _problem(p: PipelineIR, origin, message: str) -> MlpipeError:
    if origin is not None:
        return MlpipeError(Problem(origin.file, origin.line, message))
    return MlpipeError(Problem(p.source_file, None, message))
