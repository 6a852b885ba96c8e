"""`mlpipe verify DIR --target T`: are the artifacts intact, loadable by the target, and current?"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from .errors import MlpipeError, Problem


def verify(
    out_dir: Path, backend, python: str | None = None, source: str | None = None
) -> list[Problem]:
    entries = _manifest_entries(out_dir, backend)
    problems = _changed_files(out_dir, entries)
    problems += _loader_problems(out_dir, backend, python)
    if source is not None:
        problems += _stale_pipelines(out_dir, entries, source)
    return problems


def _manifest_entries(out_dir: Path, backend) -> dict:
    """The manifest's entries of this target in out_dir (an error when there are none)."""
    from mlpipe.backends.base import read_manifest

    if not out_dir.is_dir():
        raise MlpipeError(
            Problem(str(out_dir), None, "no such folder: give the folder you compiled into")
        )
    entries = {
        k: e
        for k, e in read_manifest(out_dir)["sources"].items()
        if e.get("target") == backend.name
    }
    if not entries:
        raise MlpipeError(
            Problem(
                str(out_dir),
                None,
                f"holds no {backend.name} artifacts written by mlpipe "
                f"(compile with --target {backend.name} first)",
            )
        )
    return entries


def _changed_files(out_dir: Path, entries: dict) -> list[Problem]:
    """Generated files that are missing or differ from what mlpipe wrote."""
    problems = []
    for entry in entries.values():
        for rel, digest in entry.get("sha256", {}).items():
            path = out_dir / rel
            if not path.is_file():
                problems.append(Problem(str(path), None, "missing: compile again"))
            elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                problems.append(
                    Problem(
                        str(path),
                        None,
                        "changed since mlpipe wrote it: compile again "
                        "rather than editing generated files",
                    )
                )
    return problems


def _loader_problems(out_dir: Path, backend, python: str | None) -> list[Problem]:
    """What the target's own loader (run in its interpreter) says about the folder."""
    code = backend.verify_code()
    if code is None:
        return []
    proc = subprocess.run(
        [python or sys.executable, "-c", code, str(out_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    except ValueError:
        found = None
    if found is None:
        return [
            Problem(
                str(out_dir),
                None,
                f"the {backend.name} loader did not run "
                f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}",
            )
        ]
    return [Problem(x.get("file", str(out_dir)), x.get("line"), x["message"]) for x in found]


def _stale_pipelines(out_dir: Path, entries: dict, source: str) -> list[Problem]:
    """Pipelines of `source` (captured now) never compiled here, or changed since."""
    from .capture import capture

    module = source[3:].strip() if source.startswith("-m ") else None  # `-m pkg.mod`
    captured = capture(module=module) if module else capture(source)
    current = {p.name: p.ir_hash() for p in captured.pipelines}
    recorded = {name: h for e in entries.values() for name, h in e.get("pipelines", {}).items()}
    problems = []
    for name, digest in sorted(current.items()):
        if name not in recorded:
            message = f"pipeline {name!r} of {source} was never compiled here: compile it"
        elif recorded[name] != digest:
            message = (
                f"pipeline {name!r} is stale: {source} changed since it was compiled; compile again"
            )
        else:
            continue
        problems.append(Problem(str(out_dir), None, message))
    return problems
