"""The API classes outside a capture: the real workspace of a step or a plain script.

The v1 classes have two lives. While `mlpipe` captures a pipeline file they record (nothing is read
or written, except reading registries). Anywhere else — a step script on any target, or a plain
Python script of the project — they act on the workspace's real state: inside a step the pipeline's
datastores come from the run context (no mlpipe.yaml, PyYAML or pydantic needed); in a plain
script, from the project's mlpipe.yaml / zero-setup defaults.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid

from ..runtime import store
from ..runtime.registry import RegistryError, WorkspaceInfo, run_context_data
from . import _session
from .exceptions import UserErrorException


class NotFound(UserErrorException, LookupError):
    """A dataset, model or datastore that is not registered (v1 raises UserErrorException)."""


def capturing() -> bool:
    return _session._active is not None


def step_info() -> WorkspaceInfo | None:
    """The pipeline's workspace when running inside a step (and not capturing)."""
    if capturing():
        return None
    return WorkspaceInfo.from_run_context(run_context_data() or {})


def session_info() -> WorkspaceInfo:
    """The workspace mlpipe.yaml describes (or the zero-setup default) for the current session."""
    cfg = _session.current().config
    return WorkspaceInfo(cfg.name, dict(cfg.datastores), "workspaceblobstore")


def info_of(workspace) -> WorkspaceInfo:
    found = getattr(workspace, "_info", None) if workspace is not None else None
    if isinstance(found, WorkspaceInfo):
        return found
    return step_info() or session_info()


def not_found(exc: RegistryError) -> NotFound:
    return NotFound(str(exc))


# ------------------------------------------------------------------------------ file transfer


def _same_bytes(src: str, dest: str) -> bool:
    if store.is_local(dest):
        path = store.local_path(dest)
        if not os.path.isfile(path) or os.path.getsize(path) != os.path.getsize(src):
            return False
        return store.sha256_file(path) == store.sha256_file(src)
    data = store.read_bytes(dest)
    if data is None:
        return False
    return hashlib.sha256(data).hexdigest() == store.sha256_file(src)


def put_file(src: str, dest: str, overwrite: bool) -> str:
    """Upload one local file; returns "uploaded", "unchanged" or "kept" (exists, no overwrite).

    Identical bytes are never rewritten, so re-applying an upload changes nothing."""
    if _same_bytes(src, dest):
        return "unchanged"
    if not overwrite and store.exists(dest):
        return "kept"
    if store.is_local(dest):
        path = store.local_path(dest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, path)  # readers see the old file or the new one
    else:
        fs, path = store._fs(dest)
        fs.put_file(src, path)
    return "uploaded"


def upload_plan(
    sources: list[str], directory: bool, relative_root: str | None
) -> list[tuple[str, str]]:
    """[(local file, path relative to the target)] of an upload / upload_files call."""
    out: list[tuple[str, str]] = []
    for src in sources:
        src = os.path.abspath(os.path.expanduser(os.fspath(src)))
        if directory or os.path.isdir(src):
            if not os.path.isdir(src):
                raise FileNotFoundError(f"upload: {src} is not a folder")
            for dirpath, dirnames, filenames in os.walk(src):
                dirnames.sort()
                for f in sorted(filenames):
                    path = os.path.join(dirpath, f)
                    base = src if directory else os.path.dirname(src)
                    out.append((path, os.path.relpath(path, base).replace(os.sep, "/")))
            continue
        if not os.path.isfile(src):
            raise FileNotFoundError(f"upload_files: {src} does not exist")
        if relative_root:
            rel = os.path.relpath(src, os.path.abspath(os.path.expanduser(relative_root)))
            if rel.startswith(".."):
                raise ValueError(f"upload_files: {src} is not under relative_root {relative_root}")
        else:
            rel = os.path.basename(src)
        out.append((src, rel.replace(os.sep, "/")))
    return out


def upload(
    ws: WorkspaceInfo,
    datastore: str,
    plan: list[tuple[str, str]],
    target_path: str | None,
    overwrite: bool,
) -> dict[str, list[str]]:
    """Perform an upload plan; returns {"uploaded"|"unchanged"|"kept": [relative paths]}."""
    done: dict[str, list[str]] = {"uploaded": [], "unchanged": [], "kept": []}
    target = (target_path or "").strip("/")
    for src, rel in plan:
        dest_rel = f"{target}/{rel}" if target else rel
        what = put_file(src, ws.location(datastore, dest_rel), overwrite)
        done[what].append(dest_rel)
    return done
