"""Source snapshots: what a step's source_directory holds, hashed and packed deterministically.

The hash covers sorted relative file names and file bytes, minus what the root's `.amlignore` (else
`.gitignore`) excludes, as Azure ML v1 does. mlpipe's own state folders are always left out so a
datastore or cache living inside the source folder never changes the snapshot.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pathspec

from .runtime.fingerprint import StatCache, combine
from .runtime.step import default_cache_dir

ALWAYS_IGNORED_DIRS = frozenset({".mlpipe", ".git", "__pycache__", ".ipynb_checkpoints"})


@dataclass(frozen=True)
class SnapshotInfo:
    hash: str
    files: int
    bytes: int


def _ignore_spec(root: Path) -> pathspec.PathSpec | None:
    for name in (".amlignore", ".gitignore"):
        f = root / name
        if f.is_file():
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
            return pathspec.PathSpec.from_lines("gitwildmatch", lines)
    return None


def list_files(root: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the files a snapshot of `root` holds, sorted."""
    root = Path(root)
    spec = _ignore_spec(root)
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        keep = []
        for d in dirnames:
            if d in ALWAYS_IGNORED_DIRS:
                continue
            if spec is not None and spec.match_file(rel_dir + d + "/"):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rel = rel_dir + f
            if spec is not None and spec.match_file(rel):
                continue
            full = os.path.join(dirpath, f)
            if os.path.isfile(full):
                out.append(rel)
    out.sort()
    return out


def hash_directory(root: str | os.PathLike, cache_dir: str | None = None) -> SnapshotInfo:
    """The snapshot hash of `root`. File digests are remembered by (path, size, mtime) in the
    machine-local stat cache, so re-hashing an unchanged folder reads no file contents."""
    root = Path(root)
    stat_cache = StatCache(cache_dir if cache_dir is not None else default_cache_dir())
    entries = []
    total = 0
    for rel in list_files(root):
        full = str(root / rel)
        entries.append((rel, stat_cache.sha256(full)))
        total += os.path.getsize(full)
    return SnapshotInfo(combine(entries), len(entries), total)


def pack(root: str | os.PathLike) -> tuple[SnapshotInfo, bytes]:
    """A deterministic .tar.gz of the snapshot (fixed mtimes, owners and modes) and its info."""
    root = Path(root)
    buf = io.BytesIO()
    entries = []
    total = 0
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in list_files(root):
                full = root / rel
                data = full.read_bytes()
                entries.append((rel, hashlib.sha256(data).hexdigest()))
                total += len(data)
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                info.mtime = 0
                info.mode = 0o755 if os.access(full, os.X_OK) else 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    return SnapshotInfo(combine(entries), len(entries), total), buf.getvalue()


def write_snapshot(root: str | os.PathLike, store_dir: str | os.PathLike) -> SnapshotInfo:
    """Pack `root` into `store_dir/<hash>.tar.gz` (content-addressed, written atomically)."""
    info, data = pack(root)
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    target = store / f"{info.hash}.tar.gz"
    if not target.exists():
        tmp = store / f".{info.hash}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return info
