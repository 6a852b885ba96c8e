"""Source snapshots: what a step's source_directory holds, hashed and packed deterministically.

The hash covers sorted relative file names and file bytes, minus what the root's `.amlignore` (else
`.gitignore`) excludes, as Azure ML v1 does. mlpipe's own state folders are always left out so a
datastore or cache living inside the source folder never changes the snapshot.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pathspec

from .runtime.fingerprint import _RACY_SECONDS, combine, default_cache_dir
from .runtime.store import sha256_file

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
    """The snapshot hash of `root`. File digests are remembered per folder in the machine-local
    cache (`_DigestManifest`), so re-hashing an unchanged folder reads no file contents and only
    one small cache file; `cache_dir=""` turns that off."""
    root = Path(root)
    manifest = _DigestManifest(cache_dir if cache_dir is not None else default_cache_dir(), root)
    entries = []
    total = 0
    for rel in list_files(root):
        full = os.path.join(root, rel)
        st = os.stat(full)
        entries.append((rel, manifest.sha256(rel, full, st)))
        total += st.st_size
    manifest.save()
    return SnapshotInfo(combine(entries), len(entries), total)


class _DigestManifest:
    """sha256 of a folder's files, kept in ONE cache file per folder (its real path):
    `<cache>/stat/dirs/<sha256 of the path>.json`, {relative path: [size, mtime_ns, ctime_ns, inode,
    digest]}. A file whose stat differs in any of those, or that changed within the last
    _RACY_SECONDS (a same-size rewrite within the timestamp granularity), is hashed again.

    One file read instead of one per source file keeps an unchanged re-hash of thousands of files
    cheap, and a first hash costs one write, not thousands. Lock-free: written with a rename; a lost
    or corrupt manifest only costs a re-hash."""

    VERSION = 1

    def __init__(self, cache_dir: str, root: Path):
        self.path = None
        self.old: dict = {}
        self.new: dict = {}
        self.changed = False
        if not cache_dir:
            return
        real = os.path.realpath(root)
        key = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()
        self.path = os.path.join(cache_dir, "stat", "dirs", f"{key[:40]}.json")
        self.now = time.time()
        self.root = real
        try:
            with open(self.path, encoding="utf-8") as fh:
                doc = json.load(fh)
            if doc.get("version") == self.VERSION and doc.get("root") == real:
                self.old = dict(doc["files"])
        except (OSError, ValueError, KeyError, TypeError):
            self.old = {}

    def sha256(self, rel: str, full: str, st: os.stat_result) -> str:
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        if self.path is None:
            return sha256_file(full)
        old = self.old.get(rel)
        if old is not None and old[:4] == stamp and len(old[4]) == 64:
            self.new[rel] = old
            return old[4]
        digest = sha256_file(full)
        self.changed = True
        racy = self.now - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 < _RACY_SECONDS
        if not racy:
            self.new[rel] = [*stamp, digest]
        return digest

    def save(self) -> None:
        if self.path is None or not (self.changed or len(self.new) != len(self.old)):
            return
        doc = {"version": self.VERSION, "root": self.root, "files": self.new}
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            tmp = f"{self.path}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            pass


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
