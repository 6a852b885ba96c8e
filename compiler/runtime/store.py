"""Datastore I/O: local paths (and file://) through os/shutil, anything else through fsspec.

Locations are plain strings: an absolute local path or an fsspec URL. fsspec is imported only when a
non-local URL is touched, so a worker whose datastores are all local needs nothing but the stdlib.
"""

from __future__ import annotations

import glob as _glob
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

GLOB_CHARS = re.compile(r"[*?\[]")
# Atomic writes use rename; fsync (durability across power loss) costs tens of ms per file on some
# filesystems, so it is opt-in. A torn state file reads as missing (never as a reusable entry).
_FSYNC = os.environ.get("MLPIPE_FSYNC") == "1"


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> str:
    if url.startswith("file://"):
        url = url[len("file://") :]
    return os.path.abspath(os.path.expanduser(url))


def join(url: str, *parts: str) -> str:
    """Join path parts onto a location; parts are POSIX relative paths (leading '/' ignored)."""
    out = url
    for part in parts:
        part = (part or "").strip("/")
        if not part:
            continue
        if is_local(out):
            out = os.path.join(local_path(out), *part.split("/"))
        else:
            out = out.rstrip("/") + "/" + part
    return local_path(out) if is_local(out) else out


def _fs(url: str):
    try:
        import fsspec.core
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise RuntimeError(f"fsspec is needed to reach {url!r}: pip install fsspec") from exc
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def _unstrip(fs, path: str) -> str:
    """The URL for a path an fsspec filesystem returned."""
    return fs.unstrip_protocol(path)


def exists(url: str) -> bool:
    if is_local(url):
        return os.path.exists(local_path(url))
    fs, path = _fs(url)
    return fs.exists(path)


def isdir(url: str) -> bool:
    if is_local(url):
        return os.path.isdir(local_path(url))
    fs, path = _fs(url)
    return fs.isdir(path)


def read_bytes(url: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    if is_local(url):
        try:
            with open(local_path(url), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
    fs, path = _fs(url)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def read_json(url: str) -> dict | None:
    data = read_bytes(url)
    if data is None:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write a file so readers see the old content or the new one, never a partial one."""
    if is_local(url):
        path = local_path(url)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            if _FSYNC:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        return
    fs, path = _fs(url)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        try:
            fs.makedirs(parent, exist_ok=True)
        except Exception:  # object stores have no real directories
            pass
    if fs.protocol in ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "memory") or (
        isinstance(fs.protocol, tuple)
        and set(fs.protocol) & {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "memory"}
    ):
        fs.pipe_file(path, data)  # a single PUT is atomic on object stores
        return
    tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
    fs.pipe_file(tmp, data)
    fs.mv(tmp, path)


def write_once(url: str, data: bytes) -> bool:
    """Create `url` holding `data` unless something is already there; True when this call created it.

    The building block for state that several machines write at once (registry versions, records):
    each writer tries the next key and moves on when another got there first, so nothing is lost.
    Local: a complete temp file hard-linked into place (link fails if the name exists).
    Remote: an existence check then a single PUT (object stores' conditional writes replace this).
    """
    if is_local(url):
        path = local_path(url)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            if _FSYNC:
                fh.flush()
                os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True
    fs, path = _fs(url)
    if fs.exists(path):
        return False
    fs.pipe_file(path, data)
    return True


def list_names(url: str) -> list[str]:
    """The names directly inside a folder location, sorted; empty when it does not exist."""
    if is_local(url):
        try:
            return sorted(os.listdir(local_path(url)))
        except (FileNotFoundError, NotADirectoryError):
            return []
    fs, path = _fs(url)
    try:
        entries = fs.ls(path.rstrip("/"), detail=False)
    except FileNotFoundError:
        return []
    return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries})


def write_json_atomic(url: str, obj) -> None:
    write_bytes_atomic(url, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def remove_tree(url: str) -> None:
    if is_local(url):
        path = local_path(url)
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        return
    fs, path = _fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


# ----------------------------------------------------------------------------------- listing


def _glob_base(pattern: str) -> str:
    """The directory part of a glob pattern before its first wildcard."""
    head = GLOB_CHARS.split(pattern, 1)[0]
    if "/" in head or os.sep in head:
        return head[: max(head.rfind("/"), head.rfind(os.sep))] or "/"
    return ""


# mlpipe's own state folder and half-published outputs are never part of a dataset.
_HIDDEN = re.compile(r"^(\.mlpipe|\..+\.mlpipe-[0-9a-f]+\.(partial|old))$")


def _hidden(rel: str) -> bool:
    return any(_HIDDEN.match(part) for part in rel.replace(os.sep, "/").split("/"))


def _walk_local(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _HIDDEN.match(d))
        for f in sorted(filenames):
            yield os.path.join(dirpath, f)


def resolve_files(url: str) -> tuple[str, list[tuple[str, str]]]:
    """Resolve a dataset path (file, folder or glob) to (base, [(file location, relative path)]).

    A folder gives its files relative to the folder; a file gives itself relative to its parent; a
    glob gives every match (folders expanded) relative to the part of the pattern before the glob.
    Raises FileNotFoundError when nothing is there.
    """
    if is_local(url):
        path = local_path(url)
        has_glob = bool(GLOB_CHARS.search(url))
        if has_glob:
            base = _glob_base(path) or os.getcwd()
            matches = sorted(_glob.glob(path, recursive=True))
            files: list[str] = []
            for m in matches:
                if _hidden(os.path.relpath(m, base)):
                    continue
                if os.path.isdir(m):
                    files.extend(_walk_local(m))
                elif os.path.isfile(m):
                    files.append(m)
            if not files:
                raise FileNotFoundError(f"no files match {url}")
        elif os.path.isdir(path):
            base = path
            files = list(_walk_local(path))
        elif os.path.isfile(path):
            base = os.path.dirname(path)
            files = [path]
        else:
            raise FileNotFoundError(f"not found: {url}")
        seen: dict[str, None] = dict.fromkeys(files)
        return base, [(f, os.path.relpath(f, base).replace(os.sep, "/")) for f in seen]
    fs, path = _fs(url)
    if GLOB_CHARS.search(path):
        base = _glob_base(path)
        found: list[str] = []
        for m in sorted(fs.glob(path)):
            if fs.isdir(m):
                found.extend(sorted(fs.find(m)))
            else:
                found.append(m)
        if not found:
            raise FileNotFoundError(f"no files match {url}")
    elif fs.isdir(path):
        base = path.rstrip("/")
        found = sorted(fs.find(path))
    elif fs.exists(path):
        base = path.rsplit("/", 1)[0] if "/" in path else ""
        found = [path]
    else:
        raise FileNotFoundError(f"not found: {url}")
    base_s = base.rstrip("/")
    out = []
    for f in dict.fromkeys(found):
        rel = (
            f[len(base_s) :].lstrip("/")
            if base_s and f.startswith(base_s)
            else f.rsplit("/", 1)[-1]
        )
        if _hidden(rel):
            continue
        out.append((_unstrip(fs, f), rel))
    return (_unstrip(fs, base_s) if base_s else url), out


def common_files(locations: list[str]) -> list[tuple[str, str]]:
    """Files of several dataset paths, relative to their common base (v1's dataset layout)."""
    resolved = [resolve_files(u) for u in locations]
    if len(resolved) == 1:
        return resolved[0][1]
    bases = [b for b, _ in resolved]
    if all(is_local(b) for b in bases):
        common = os.path.commonpath([local_path(b) for b in bases])
        out = [
            (f, os.path.relpath(f, common).replace(os.sep, "/"))
            for _, fs in resolved
            for f, _r in fs
        ]
    else:
        prefix = os.path.commonprefix([b.rstrip("/") + "/" for b in bases])
        prefix = prefix[: prefix.rfind("/") + 1]
        out = []
        for base, files in resolved:
            extra = base.rstrip("/")[len(prefix) :].strip("/")
            for f, rel in files:
                out.append((f, f"{extra}/{rel}" if extra else rel))
    seen: dict[str, tuple[str, str]] = {}
    for f, rel in out:
        seen.setdefault(rel, (f, rel))
    return sorted(seen.values(), key=lambda x: x[1])


# ----------------------------------------------------------------------------------- copying


def fetch_file(src: str, dst: str) -> None:
    """Copy a file at a location to a local path."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    if is_local(src):
        shutil.copyfile(local_path(src), dst)
        return
    fs, path = _fs(src)
    fs.get_file(path, dst)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def file_lock(path: str):
    """An exclusive lock held on `path` (created if needed) by this process, released on exit.
    Without fcntl (Windows) it does not lock."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a+") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _publish_lock(dest_path: str):
    # Kept outside the datastore so publishing leaves nothing beside the output; flock only
    # coordinates processes of one machine, which is who shares a local datastore path.
    key = hashlib.sha256(os.path.realpath(dest_path).encode("utf-8")).hexdigest()[:32]
    return file_lock(os.path.join(tempfile.gettempdir(), "mlpipe-locks", f"{key}.lock"))


def publish_tree(files: list[tuple[str, str]], dest: str) -> None:
    """Publish local files [(local path, relative path)] as the folder `dest`, replacing it.

    Local: the folder is assembled in a hidden sibling and renamed into place, so readers never see a
    half-written output. Remote: the old folder is removed and every file is uploaded; the caller only
    records the output (cache entry) after this returns.
    """
    if is_local(dest):
        dest_path = local_path(dest).rstrip(os.sep)
        parent = os.path.dirname(dest_path)
        os.makedirs(parent, exist_ok=True)
        tag = uuid.uuid4().hex[:10]
        tmp = os.path.join(parent, f".{os.path.basename(dest_path)}.mlpipe-{tag}.partial")
        os.makedirs(tmp)
        try:
            for src, rel in files:
                target = os.path.join(tmp, *rel.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                try:
                    os.link(src, target)  # same filesystem: no copy
                except OSError:
                    shutil.copy2(src, target)
            old = None
            with _publish_lock(dest_path):  # two runs publishing one fixed destination
                if os.path.lexists(dest_path):
                    old = os.path.join(parent, f".{os.path.basename(dest_path)}.mlpipe-{tag}.old")
                    os.rename(dest_path, old)
                os.rename(tmp, dest_path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            if os.path.isdir(old) and not os.path.islink(old):
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.unlink(old)
        return
    fs, path = _fs(dest)
    path = path.rstrip("/")
    if fs.exists(path):
        fs.rm(path, recursive=True)
    try:
        fs.makedirs(path, exist_ok=True)
    except Exception:
        pass
    for src, rel in files:
        fs.put_file(src, f"{path}/{rel}")


def remote_signature(url: str) -> str:
    """A cheap change signature of a remote file: size + etag/md5/mtime (content hash as fallback)."""
    fs, path = _fs(url)
    info = fs.info(path)
    parts = [str(info.get("size"))]
    for key in (
        "ETag",
        "etag",
        "md5",
        "content_md5",
        "crc32c",
        "LastModified",
        "last_modified",
        "mtime",
        "updated",
        "created",
    ):
        if info.get(key) is not None:
            parts.append(f"{key}={info[key]}")
    if len(parts) == 1:
        parts.append("sha256=" + hashlib.sha256(fs.cat_file(path)).hexdigest())
    return "remote:" + ";".join(parts)
