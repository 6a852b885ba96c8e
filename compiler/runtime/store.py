"""Datastore I/O: local paths (and file://) through os/shutil, anything else through fsspec.

Locations are plain strings: an absolute local path or an fsspec URL. fsspec is imported only when a
non-local URL is touched, so a worker whose datastores are all local needs nothing but the stdlib.

Object stores (`s3://` via s3fs, `az://` / `abfs://` via adlfs, ...): credentials and endpoints come
only from the SDKs' standard environment variables. Every remote call goes through `_call`, which
retries transient errors (timeouts, 5xx, throttling) with backoff, reports each retry, and turns
authentication failures and missing packages into one `StoreError` naming the datastore and what to
set or install.
"""

from __future__ import annotations

import glob as _glob
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

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


class StoreError(RuntimeError):
    """A datastore cannot be reached or used; the message says which one and what to do."""


# URL scheme -> the fsspec package serving it, and the environment variables its SDK reads.
_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "adl": "adlfs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
}
_CREDENTIAL_VARS = {
    "s3fs": "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / AWS_SESSION_TOKEN), "
    "AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for a non-AWS endpoint, AWS_DEFAULT_REGION",
    "adlfs": "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with "
    "AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN / AZURE_STORAGE_CLIENT_ID + "
    "AZURE_STORAGE_CLIENT_SECRET + AZURE_STORAGE_TENANT_ID",
    "gcsfs": "GOOGLE_APPLICATION_CREDENTIALS",
}
# Datastore URL -> name (registered by state.Datastores), so messages name the datastore.
_DATASTORE_NAMES: dict[str, str] = {}


# Schemes one fsspec implementation serves alike: adlfs hands back abfs:// paths for az:// URLs.
_SAME_SCHEME = {"abfs": "az", "abfss": "az", "s3a": "s3", "gcs": "gs"}


def _canonical(url: str) -> str:
    proto, sep, rest = url.partition("://")
    return f"{_SAME_SCHEME.get(proto.lower(), proto.lower())}://{rest}" if sep else url


def name_datastore(name: str, url: str) -> None:
    _DATASTORE_NAMES[url.rstrip("/")] = name


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def describe(url: str) -> str:
    """`datastore 'name' (url)` for the datastore holding `url`, else the URL's bucket."""
    best = ""
    key = _canonical(url)
    for base in _DATASTORE_NAMES:
        canon = _canonical(base)
        if (key == canon or key.startswith(canon + "/")) and len(base) > len(best):
            best = base
    if best:
        return f"datastore {_DATASTORE_NAMES[best]!r} ({best})"
    proto, _, rest = url.partition("://")
    return f"datastore {proto}://{rest.split('/', 1)[0]}"


def _credential_error(url: str, detail: str) -> StoreError:
    pkg = _PACKAGES.get(_protocol(url), "")
    where = _CREDENTIAL_VARS.get(pkg, "the storage SDK's standard environment variables")
    return StoreError(
        f"{describe(url)}: access denied or no credentials ({detail}); mlpipe reads credentials "
        f"only from the environment: set {where}"
    )


def _fs(url: str):
    try:
        import fsspec.core
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise StoreError(f"fsspec is needed to reach {url!r}: pip install fsspec") from exc
    proto = _protocol(url)
    try:
        # No listing cache: other machines write the same store, a cached listing would be stale.
        opts = {"use_listings_cache": False} if proto in _PACKAGES else {}
        fs, path = fsspec.core.url_to_fs(url, **opts)
    except ImportError:
        pkg = _PACKAGES.get(proto, f"the fsspec implementation for {proto}://")
        raise StoreError(
            f"{describe(url)}: {proto}:// needs the Python package {pkg!r}, which is not "
            f"installed on this machine: pip install {pkg}"
        ) from None
    except ValueError as exc:  # e.g. adlfs without any account / connection string
        raise _credential_error(url, str(exc).splitlines()[0] if str(exc) else "") from None
    return fs, path


# ----------------------------------------------------------------------- retries / errors

RETRIES = int(os.environ.get("MLPIPE_STORE_RETRIES", "5"))
RETRY_BASE_SECONDS = float(os.environ.get("MLPIPE_STORE_RETRY_SECONDS", "0.5"))
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_TRANSIENT_NAMES = (
    "Timeout",
    "ServiceRequestError",
    "ServiceResponseError",
    "EndpointConnectionError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientPayloadError",
    "IncompleteRead",
    "ReadTimeoutError",
    "HTTPClientError",
)
_AUTH_NAMES = ("NoCredentialsError", "PartialCredentialsError", "ClientAuthenticationError")
# Who hears about retries: the step running in this thread / context (set by the step runtime).
reporter: ContextVar[Callable[[str], None] | None] = ContextVar(
    "mlpipe_store_reporter", default=None
)


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)  # azure-core HttpResponseError
    if isinstance(code, int):
        return code
    resp = getattr(exc, "response", None)  # botocore ClientError
    if isinstance(resp, dict):
        code = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return code if isinstance(code, int) else None
    return None


def _classify(exc: BaseException) -> str | None:
    """'auth', 'transient' or None (permanent), from the exception and its causes."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        name = type(e).__name__
        status = _status(e)
        if name in _AUTH_NAMES or status in (401, 403) or isinstance(e, PermissionError):
            return "auth"
        if status in _TRANSIENT_STATUS or any(n in name for n in _TRANSIENT_NAMES):
            return "transient"
        if isinstance(e, TimeoutError | ConnectionError):
            return "transient"
        text = str(e)
        if any(t in text for t in ("SlowDown", "ServerBusy", "503", "Throttl")):
            return "transient"
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def _short(exc: BaseException) -> str:
    """One line: the exception, plus the HTTP status behind it when a wrapper hid it (s3fs turns
    a 503 into `OSError: [Errno 16] Please retry`)."""
    text = str(exc).strip().splitlines()
    out = f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
    e: BaseException | None = exc
    for _ in range(8):
        if e is None:
            break
        status = _status(e)
        if status is not None:
            return out if str(status) in out else f"{out} (HTTP {status})"
        e = e.__cause__ or e.__context__
    return out


def report(message: str) -> None:
    fn = reporter.get()
    if fn is not None:
        try:
            fn(message)
        except Exception:  # a broken console must not break a transfer
            pass


def _call(url: str, what: str, fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs) against the store holding `url`: transient errors are retried with
    exponential backoff (each retry reported), the rest become one clear StoreError.
    FileNotFoundError / FileExistsError pass through: callers handle them."""
    for attempt in range(RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except (FileNotFoundError, FileExistsError, StoreError):
            raise
        except Exception as exc:
            kind = _classify(exc)
            if kind == "auth":
                raise _credential_error(url, _short(exc)) from None
            if kind != "transient":
                raise StoreError(f"{describe(url)}: {what} failed: {_short(exc)}") from exc
            if attempt == RETRIES:
                raise StoreError(
                    f"{describe(url)}: {what} failed after {attempt + 1} attempts: {_short(exc)}"
                ) from exc
            delay = min(8.0, RETRY_BASE_SECONDS * 2**attempt) * (0.5 + random.random() / 2)
            report(
                f"{describe(url)}: {what}: {_short(exc)}; retry {attempt + 1}/{RETRIES} "
                f"in {delay:.1f}s"
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _write(url: str, what: str, fn: Callable, *args, **kwargs):
    """`_call` for a write: a FileNotFoundError there means the bucket / container is missing."""
    try:
        return _call(url, what, fn, *args, **kwargs)
    except FileNotFoundError as exc:
        raise StoreError(
            f"{describe(url)}: {what} failed: {_short(exc)}; the bucket / container must exist: "
            f"create it, or correct the datastore's URL in mlpipe.yaml"
        ) from None


def _unstrip(fs, path: str) -> str:
    """The URL for a path an fsspec filesystem returned."""
    return fs.unstrip_protocol(path)


def exists(url: str) -> bool:
    if is_local(url):
        return os.path.exists(local_path(url))
    fs, path = _fs(url)
    return _call(url, "checking whether it exists", fs.exists, path)


def isdir(url: str) -> bool:
    if is_local(url):
        return os.path.isdir(local_path(url))
    fs, path = _fs(url)
    return _call(url, "checking for a folder", fs.isdir, path)


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
        return _call(url, f"reading {path}", fs.cat_file, path)
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
    if _is_object_store(fs):
        _write(url, f"writing {path}", fs.pipe_file, path, data)  # one PUT: atomic
        return
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        try:
            fs.makedirs(parent, exist_ok=True)
        except Exception:
            pass
    tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
    _write(url, f"writing {path}", fs.pipe_file, tmp, data)
    _call(url, f"renaming {tmp}", fs.mv, tmp, path)


_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "memory"}


def _is_object_store(fs) -> bool:
    protos = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return bool(set(protos) & _OBJECT_STORES)


def write_once(url: str, data: bytes) -> bool:
    """Create `url` holding `data` unless something is already there; True when this call created it.

    The building block for state that several machines write at once (registry versions, records):
    each writer tries the next key and moves on when another got there first, so nothing is lost.
    Local: a complete temp file hard-linked into place (link fails if the name exists).
    S3 / Azure Blob: the stores' conditional create (`If-None-Match: *` on PutObject / Put Blob),
    so two machines racing for one key get exactly one winner. Other remote filesystems: an
    existence check then a single PUT (a narrow race, documented in docs/runtime.md).
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
    if _protocol(url) in _PACKAGES and _PACKAGES[_protocol(url)] in ("s3fs", "adlfs"):
        try:
            _write(url, f"creating {path}", fs.pipe_file, path, data, mode="create")
        except FileExistsError:
            return False
        except StoreError as exc:
            # s3fs reports some failed If-None-Match as EINVAL: look for the 412 in the causes.
            e: BaseException | None = exc.__cause__
            while e is not None:
                if _status(e) == 412 or "PreconditionFailed" in str(e):
                    return False
                e = e.__cause__ or e.__context__
            raise
        return True
    if _call(url, "checking whether it exists", fs.exists, path):
        return False
    _write(url, f"writing {path}", fs.pipe_file, path, data)
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
        entries = _call(url, "listing", fs.ls, path.rstrip("/"), detail=False)
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
    if _call(url, "checking whether it exists", fs.exists, path):
        _call(url, f"removing {path}", fs.rm, path, recursive=True)


# ----------------------------------------------------------------------------------- listing


def _glob_base(pattern: str) -> str:
    """The directory part of a glob pattern before its first wildcard."""
    head = GLOB_CHARS.split(pattern, 1)[0]
    if "/" in head or os.sep in head:
        return head[: max(head.rfind("/"), head.rfind(os.sep))] or "/"
    return ""


# mlpipe's own state folder, half-published outputs and output manifests are never part of a dataset.
MANIFEST = ".mlpipe-output.json"
_HIDDEN = re.compile(r"^(\.mlpipe|\.mlpipe-output\.json|\..+\.mlpipe-[0-9a-f]+\.(partial|old))$")


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
    found: dict[str, dict] = {}  # path -> listing info (its signature is kept: no HEAD per file)
    if GLOB_CHARS.search(path):
        base = _glob_base(path)
        matches = _call(url, "listing", fs.glob, path, detail=True)
        for m, info in sorted(matches.items()):
            if info.get("type") == "directory":
                found.update(_find(url, fs, m))
            else:
                found[m] = info
        if not found:
            raise FileNotFoundError(f"no files match {url}")
    else:
        found = _find(url, fs, path)
        if found and set(found) != {path.rstrip("/")}:  # find() of a file gives the file
            base = path.rstrip("/")
        else:
            try:
                info = _call(url, "reading file info", fs.info, path)
            except FileNotFoundError:
                raise FileNotFoundError(f"not found: {url}") from None
            base = path.rsplit("/", 1)[0] if "/" in path else ""
            found = {path: info}
    base_s = base.rstrip("/")
    out = []
    for f in sorted(found):
        rel = (
            f[len(base_s) :].lstrip("/")
            if base_s and f.startswith(base_s)
            else f.rsplit("/", 1)[-1]
        )
        if _hidden(rel):
            continue
        loc = _unstrip(fs, f)
        _remember_signature(loc, found[f])
        out.append((loc, rel))
    return (_unstrip(fs, base_s) if base_s else url), out


def _find(url: str, fs, path: str) -> dict[str, dict]:
    """The files under a remote folder with their listing info ({} when it is not a folder)."""
    try:
        found = _call(url, "listing", fs.find, path.rstrip("/"), detail=True)
    except FileNotFoundError:
        return {}
    return {p: i for p, i in found.items() if i.get("type") != "directory"}


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


# Files moved per bulk call (a transient failure retries one chunk) and at once within a chunk.
TRANSFER_CHUNK = 1000
TRANSFER_BATCH = int(os.environ.get("MLPIPE_TRANSFER_BATCH", "32"))


def fetch_file(src: str, dst: str) -> None:
    """Copy a file at a location to a local path."""
    fetch_files([(src, dst)])


def _bulk(fs, op: str):
    method = getattr(fs, op)
    if getattr(fs, "async_impl", False):
        return lambda a, b: method(a, b, batch_size=TRANSFER_BATCH)
    return method


def _grouped(pairs: list[tuple[str, str]], remote_index: int):
    """Remote sides of [(a, b)] grouped by filesystem: {id: (fs, first url, [remote paths], [local])}."""
    groups: dict[int, tuple] = {}
    # One url_to_fs per bucket / container, not per file (~0.1 ms each: 5,000 files, 0.7 s of CPU).
    # Chained URLs (`a::b`) carry options per URL: resolved one by one.
    by_bucket: dict[str, object] = {}
    for pair in pairs:
        url = pair[remote_index]
        bucket = "/".join(url.split("/", 3)[:3])
        fs = by_bucket.get(bucket) if "::" not in url else None
        if fs is None:
            fs, path = _fs(url)
            if "::" not in url:
                by_bucket[bucket] = fs
        else:
            path = fs._strip_protocol(url)
        group = groups.setdefault(id(fs), (fs, url, [], []))
        group[2].append(path)
        group[3].append(pair[1 - remote_index])
    return groups.values()


def fetch_files(pairs: list[tuple[str, str]]) -> None:
    """Copy files [(location, local path)] here; remote ones many at a time (fsspec bulk get)."""
    remote = []
    made: set[str] = set()  # a folder of 5,000 files is made once, not checked 5,000 times
    for src, dst in pairs:
        folder = os.path.dirname(dst) or "."
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        if is_local(src):
            shutil.copyfile(local_path(src), dst)
        else:
            remote.append((src, dst))
    for fs, url, rpaths, lpaths in _grouped(remote, 0):
        get = _bulk(fs, "get")
        for i in range(0, len(rpaths), TRANSFER_CHUNK):
            chunk = slice(i, i + TRANSFER_CHUNK)
            n = len(rpaths[chunk])
            _call(url, f"downloading {n} file(s)", get, rpaths[chunk], lpaths[chunk])


def put_files(pairs: list[tuple[str, str]]) -> None:
    """Upload local files [(local path, location)], many at a time (fsspec bulk put)."""
    for fs, url, rpaths, lpaths in _grouped(pairs, 1):
        put = _bulk(fs, "put")
        for i in range(0, len(rpaths), TRANSFER_CHUNK):
            chunk = slice(i, i + TRANSFER_CHUNK)
            n = len(rpaths[chunk])
            _write(url, f"uploading {n} file(s)", put, lpaths[chunk], rpaths[chunk])


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
    _publish_remote(files, dest)


def _publish_remote(files: list[tuple[str, str]], dest: str) -> None:
    """Object stores have no rename: an output is complete when its manifest exists.

    The old manifest is withdrawn first (from then on nobody takes the folder as a complete output),
    the files are uploaded in place, then the manifest (the file list) is written, then files of the
    replaced output that the new one lacks are removed. A publisher killed at any point leaves no
    manifest, so no reader and no reuse lookup ever takes a partial upload as complete.
    """
    fs, path = _fs(dest)
    path = path.rstrip("/")
    manifest = f"{path}/{MANIFEST}"
    try:
        _call(dest, "withdrawing the replaced output's manifest", fs.rm_file, manifest)
    except FileNotFoundError:
        pass
    before = set(_find(dest, fs, path))
    put_files([(src, _unstrip(fs, f"{path}/{rel}")) for src, rel in files])
    doc = {
        "mlpipe_output": 1,
        "files": {rel: os.path.getsize(src) for src, rel in sorted(files, key=lambda f: f[1])},
        "published": time.time(),
    }
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")
    _write(dest, "writing the output manifest", fs.pipe_file, manifest, data)
    stale = sorted(before - {f"{path}/{rel}" for _, rel in files} - {manifest})
    if stale:
        try:
            _call(dest, f"removing {len(stale)} replaced file(s)", fs.rm, stale)
        except (FileNotFoundError, StoreError) as exc:  # the new output is complete already
            report(f"{describe(dest)}: could not remove replaced files: {exc}")


def output_complete(url: str) -> bool:
    """Whether a published output is there and complete (remote: its manifest exists)."""
    if is_local(url):
        return os.path.exists(local_path(url))
    return exists(join(url, MANIFEST))


def output_files(url: str) -> list[tuple[str, str]]:
    """The files of a published output [(location, relative path)]; remote: exactly those its
    manifest lists. FileNotFoundError when the output is missing or was never completed."""
    if is_local(url):
        try:
            return resolve_files(url)[1]
        except FileNotFoundError:
            return []
    doc = read_json(join(url, MANIFEST))
    if doc is None or not isinstance(doc.get("files"), dict):
        raise FileNotFoundError(
            f"{url} is not a complete output (no {MANIFEST}): the step writing it did not finish "
            f"publishing"
        )
    return [(join(url, rel), rel) for rel in sorted(doc["files"])]


# Signatures seen in listings (location -> signature), so fingerprinting a remote folder costs one
# listing, not a HEAD request per file. Bounded: cleared when it grows large.
_SIGNATURES: dict[str, str] = {}


def _content_signature(info: dict) -> str | None:
    """Size + a content checksum the store keeps (Azure's Content-MD5, S3's ETag: both stay the
    same when identical bytes are uploaded again, unlike Azure's ETag or any modification time)."""
    size = info.get("size")
    settings = info.get("content_settings") or {}
    md5 = (
        settings.get("content_md5")
        if isinstance(settings, dict)
        else getattr(settings, "content_md5", None)
    )
    if md5:
        return f"size={size};md5={bytes(md5).hex()}"
    for key in ("md5", "md5Hash", "crc32c", "ETag"):
        if info.get(key):
            return f"size={size};{key}={str(info[key]).strip(chr(34))}"
    return None


def _remember_signature(location: str, info: dict) -> None:
    sig = _content_signature(info)
    if sig is not None:
        if len(_SIGNATURES) > 200_000:
            _SIGNATURES.clear()
        _SIGNATURES[location] = sig


def remote_signature(url: str) -> str:
    """A change signature of a remote file: size + a content checksum the store keeps (from the
    folder listing when we have it), else size + etag / modification time, else a content hash."""
    sig = _SIGNATURES.pop(url, None)
    if sig is not None:
        return "remote:" + sig
    fs, path = _fs(url)
    info = _call(url, "reading file info", fs.info, path)
    sig = _content_signature(info)
    if sig is not None:
        return "remote:" + sig
    parts = [f"size={info.get('size')}"]
    for key in ("etag", "LastModified", "last_modified", "mtime", "updated", "created"):
        if info.get(key) is not None:
            parts.append(f"{key}={info[key]}")
            break
    if len(parts) == 1:
        data = _call(url, f"reading {path}", fs.cat_file, path)
        parts.append("sha256=" + hashlib.sha256(data).hexdigest())
    return "remote:" + ";".join(parts)
