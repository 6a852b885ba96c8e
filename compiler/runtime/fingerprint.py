"""Content fingerprints: canonical JSON hashing, per-file sha256 with a machine-local stat cache."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

from . import store

# Bump when the fingerprint's composition changes, so old cache entries stop matching.
FINGERPRINT_VERSION = 1
# Files modified this recently are always hashed: a same-size rewrite within the filesystem's
# timestamp granularity would otherwise look unchanged (git's "racy" problem).
_RACY_SECONDS = 2.0


def default_cache_dir() -> str:
    """The machine's mlpipe cache (stat and slice caches). Here, not in step.py: the compiler's
    snapshot hashing needs it without importing the step runner."""
    return os.environ.get("MLPIPE_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "mlpipe"
    )


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_json(obj) -> str:
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


def combine(entries: list[tuple[str, str]]) -> str:
    """Hash of a file listing [(relative path, digest)], order-independent."""
    h = hashlib.sha256()
    for rel, digest in sorted(entries):
        h.update(rel.encode("utf-8"))
        h.update(b"\0")
        h.update(digest.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


class StatCache:
    """sha256 of local files keyed by (real path, size, mtime_ns); one small file per entry.

    Lock-free: entries are written with a rename, and a lost or corrupt entry only costs a rehash.
    """

    def __init__(self, cache_dir: str | None):
        self.root = os.path.join(cache_dir, "stat") if cache_dir else None

    def _entry(self, path: str, st: os.stat_result) -> str | None:
        if self.root is None:
            return None
        key = hashlib.sha256(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
        return os.path.join(self.root, key[:2], key[2:])

    def sha256(self, path: str) -> str:
        path = os.path.realpath(path)
        st = os.stat(path)
        entry = self._entry(path, st)
        racy = time.time() - st.st_mtime_ns / 1e9 < _RACY_SECONDS
        if entry is not None and not racy:
            try:
                with open(entry, encoding="ascii") as fh:
                    digest = fh.read().strip()
                if len(digest) == 64:
                    return digest
            except OSError:
                pass
        digest = store.sha256_file(path)
        if entry is not None and not racy:
            try:
                os.makedirs(os.path.dirname(entry), exist_ok=True)
                tmp = f"{entry}.{uuid.uuid4().hex[:8]}.tmp"
                with open(tmp, "w", encoding="ascii") as fh:
                    fh.write(digest)
                os.replace(tmp, entry)
            except OSError:
                pass
        return digest


def file_signature(location: str, stat_cache: StatCache) -> str:
    """Content identity of one file: sha256 locally, size + etag/mtime remotely."""
    if store.is_local(location):
        return stat_cache.sha256(store.local_path(location))
    return store.remote_signature(location)


def file_entries(files: list[tuple[str, str]], stat_cache: StatCache) -> list[tuple[str, str]]:
    """[(relative path, content identity)] of a resolved file listing [(location, relative path)]."""
    return [(rel, file_signature(loc, stat_cache)) for loc, rel in files]


def files_fingerprint(files: list[tuple[str, str]], stat_cache: StatCache) -> str:
    """Fingerprint of a resolved file listing [(location, relative path)]."""
    return combine(file_entries(files, stat_cache))


def local_tree_fingerprint(files: list[tuple[str, str]]) -> str:
    """Content hash of files a step wrote [(local path, relative path)] (always real sha256)."""
    return combine([(rel, store.sha256_file(path)) for path, rel in files])
