"""Why a step ran: compare its fingerprint's parts with the newest completed run of the same step.

Two kinds of state make this cheap (both under `<default datastore>/.mlpipe/`):

- `history/<pipeline>/<step>/<n>.json`: one small pointer per completed or reused run of the step
  (`{run_id, status, fingerprint, finished}`), n = 1, 2, ... as write-once keys, so concurrent
  writers each get their own number and none overwrites another's. `latest` beside them holds the
  highest n a writer saw; it is only a hint (a racing writer may leave it lower), so readers probe
  the next numbers until one is missing. Finding the newest run reads two or three small files,
  however many runs there are.
- `manifests/<digest>.json`: `{"files": {relative path: digest}}` of a file listing whose combined
  hash is `<digest>` (a source snapshot hash, or an input's content fingerprint). Content
  addressed, written once by the first step that runs with it; they name the files that changed.

The step record keeps the fingerprint's parts (`fingerprint_parts`, the document the fingerprint
hashes) and `environment_packages`; a reason compares two records' parts. Nothing here runs on the
reused path except writing the pointer.
"""

from __future__ import annotations

import hashlib
import json
import tarfile

from . import store
from .fingerprint import combine
from .state import State, safe_name

HINT = "latest"
MAX_NAMES = 3  # files named per change before "(+N more)"
MAX_CHANGES = 6  # changes named per reason before "(+N more changes)"


# ----------------------------------------------------------------------------- history pointer


def history_folder(state: State, pipeline: str | None, step: str) -> str:
    return store.join(state.root, "history", safe_name(pipeline or "_"), safe_name(step))


def _hint(folder: str) -> int | None:
    data = store.read_bytes(store.join(folder, HINT))
    try:
        return int(data.decode("ascii").strip()) if data else None
    except (ValueError, UnicodeDecodeError):
        return None


def _highest(folder: str) -> int:
    """The highest version number: from the hint plus probing, or one listing without a hint."""
    n = _hint(folder)
    if n is None:
        names = store.list_names(folder)
        return max(
            (int(x[:-5]) for x in names if x.endswith(".json") and x[:-5].isdigit()), default=0
        )
    while store.exists(store.join(folder, f"{n + 1}.json")):
        n += 1
    return n


def newest(folder: str) -> dict | None:
    """The newest pointer in the folder, or None."""
    n = _highest(folder)
    return store.read_json(store.join(folder, f"{n}.json")) if n else None


def add_pointer(folder: str, entry: dict) -> int:
    """Store `entry` as the next write-once version; returns its number."""
    n = _hint(folder)
    n = (n if n is not None else _highest(folder)) + 1
    data = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
    while not store.write_once(store.join(folder, f"{n}.json"), data):
        n += 1
    try:  # only a hint: readers probe past it, so losing a race here costs one probe
        store.write_bytes_atomic(store.join(folder, HINT), str(n).encode("ascii"))
    except OSError:
        pass
    return n


# ----------------------------------------------------------------------------------- manifests


def manifest_url(state: State, digest: str) -> str:
    return store.join(state.root, "manifests", f"{digest}.json")


def save_manifest(state: State, digest: str, entries: list[tuple[str, str]]) -> None:
    """Keep the listing behind `digest` (once; the name is its content's hash)."""
    if digest and not store.exists(manifest_url(state, digest)):
        _put_manifest(state, digest, entries)


def _put_manifest(state: State, digest: str, entries: list[tuple[str, str]]) -> None:
    doc = {"files": dict(sorted(entries))}
    store.write_once(manifest_url(state, digest), (json.dumps(doc, sort_keys=True) + "\n").encode())


def load_manifest(state: State, digest: str | None) -> dict | None:
    if not digest:
        return None
    doc = store.read_json(manifest_url(state, digest))
    files = (doc or {}).get("files")
    return files if isinstance(files, dict) else None


def archive_entries(path: str) -> list[tuple[str, str]]:
    """(relative path, sha256) of the files in a snapshot .tar.gz: what its hash combines."""
    out = []
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                fh = tar.extractfile(member)
                out.append((member.name, hashlib.sha256(fh.read()).hexdigest()))
    return out


def save_snapshot_manifest(state: State, digest: str | None, archive: str) -> None:
    if not digest or store.exists(manifest_url(state, digest)):
        return
    entries = archive_entries(archive)
    if combine(entries) == digest:  # a different packing would name the wrong files
        _put_manifest(state, digest, entries)  # checked above: one request less on a store


# ------------------------------------------------------------------------------------- reasons


def _names(paths: list[str]) -> str:
    shown = ", ".join(paths[:MAX_NAMES])
    return shown + (f" (+{len(paths) - MAX_NAMES} more)" if len(paths) > MAX_NAMES else "")


def changed_files(old: dict | None, new: dict | None) -> list[str] | None:
    """Paths added, removed or changed between two manifests; None when one is unknown."""
    if old is None or new is None:
        return None
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _argument_changes(old: list, new: list) -> list[str]:
    if len(old) != len(new):
        return [f"arguments changed ({len(old)} → {len(new)} items)"]
    idx = [str(i + 1) for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    if not idx:
        return []
    return [
        f"argument {idx[0]} changed" if len(idx) == 1 else f"arguments {', '.join(idx)} changed"
    ]


def _parameter_changes(old: dict, new: dict) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(f"parameter {name} added: {_short(new[name])}")
        elif name not in new:
            out.append(f"parameter {name} no longer used")
        elif old[name] != new[name]:
            out.append(f"parameter {name}: {_short(old[name])} → {_short(new[name])}")
    return out


def _package_changes(old: list | None, new: list | None) -> str:
    old_set, new_set = set(old or []), set(new or [])
    items = [f"+ {p}" for p in sorted(new_set - old_set)]
    items += [f"- {p}" for p in sorted(old_set - new_set)]
    if not items:
        return "environment changed"
    shown = ", ".join(items[:MAX_NAMES])
    more = len(items) - MAX_NAMES
    return "environment changed: " + shown + (f" (+{more} more)" if more > 0 else "")


def _input_changes(old: list, new: list, upstream: dict, manifest) -> list[str]:
    old_by = {i.get("name"): i for i in old}
    new_by = {i.get("name"): i for i in new}
    out = []
    for name, cur in new_by.items():
        prev = old_by.get(name)
        if prev is None:
            out.append(f"input {name} added")
            continue
        how = [
            k for k in sorted(set(cur) | set(prev)) if k != "content" and cur.get(k) != prev.get(k)
        ]
        if how:
            out.append(f"input {name} changed ({', '.join(how)})")
        if cur.get("content") == prev.get("content"):
            continue
        if name in upstream:
            out.append(f"output of upstream step {upstream[name]} changed")
            continue
        files = changed_files(manifest(prev.get("content")), manifest(cur.get("content")))
        out.append(f"input {name} changed" + (f": {_names(files)}" if files else ""))
    out += [f"input {name} removed" for name in old_by if name not in new_by]
    return out


_SIMPLE = (  # part, how a change reads
    ("compute", "compute"),
    ("node_count", "node_count"),
    ("version", "step version"),
    ("allow_reuse", "allow_reuse"),
)


def differences(old: dict, new: dict, manifest, upstream: dict) -> list[str]:
    """What differs between two records' fingerprint parts, most telling first.

    `old` / `new`: {"parts", "packages"}; `manifest(digest)` loads a listing; `upstream` maps an
    input name to the step whose output it is.
    """
    a, b = old.get("parts") or {}, new.get("parts") or {}
    out: list[str] = []
    if a.get("mlpipe_fingerprint") != b.get("mlpipe_fingerprint"):
        out.append("mlpipe's fingerprint format changed")
    if a.get("script") != b.get("script"):
        out.append(f"script changed: {a.get('script')} → {b.get('script')}")
    if a.get("kind") != b.get("kind") or a.get("command") != b.get("command"):
        out.append("command changed")
    if a.get("snapshot") != b.get("snapshot"):
        files = changed_files(manifest(a.get("snapshot")), manifest(b.get("snapshot")))
        out.append("source changed" + (f": {_names(files)}" if files else ""))
    out += _parameter_changes(a.get("parameters") or {}, b.get("parameters") or {})
    out += _argument_changes(a.get("arguments") or [], b.get("arguments") or [])
    if a.get("params") != b.get("params"):
        keys = sorted(
            k
            for k in set(a.get("params") or {}) | set(b.get("params") or {})
            if (a.get("params") or {}).get(k) != (b.get("params") or {}).get(k)
        )
        out.append(f"params changed: {_names(keys)}")
    if a.get("env_vars") != b.get("env_vars"):
        out.append("environment variables changed")
    if a.get("environment") != b.get("environment"):
        out.append(_package_changes(old.get("packages"), new.get("packages")))
    out += [
        f"{label} changed: {a.get(k)} → {b.get(k)}" for k, label in _SIMPLE if a.get(k) != b.get(k)
    ]
    out += _input_changes(a.get("inputs") or [], b.get("inputs") or [], upstream, manifest)
    if a.get("outputs") != b.get("outputs"):
        out.append("outputs changed")
    return out


def explain(changes: list[str]) -> str:
    if not changes:
        return "fingerprint changed"
    more = len(changes) - MAX_CHANGES
    return "; ".join(changes[:MAX_CHANGES]) + (f" (+{more} more changes)" if more > 0 else "")


def environment_packages(env: dict | None) -> list[str] | None:
    """What an environment installs, as the items a reason names (+ pandas==2.3)."""
    if env is None:
        return None
    items = list(env.get("pip_packages") or [])
    items += [f"conda {p}" for p in env.get("conda_packages") or []]
    if env.get("docker_image"):
        items.append(f"image {env['docker_image']}")
    if env.get("dockerfile"):
        items.append("dockerfile " + hashlib.sha256(env["dockerfile"].encode()).hexdigest()[:12])
    return sorted(items)
