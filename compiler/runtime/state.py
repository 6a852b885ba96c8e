"""Where mlpipe keeps run state: `<default datastore>/.mlpipe/` (runs, cache, registry, snapshots).

Keeping it in the default datastore means every runner that shares the datastore (the local runner, an
Airflow worker, a Prefect worker, a KFP pod with the datastore mounted) sees the same records and cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from contextlib import contextmanager

from . import store

STATE_DIR = ".mlpipe"


class StepError(RuntimeError):
    """A problem running a step that is not the script's own failure (missing data, snapshot...)."""


# File names stay far below the usual 255-byte limit, with room for suffixes and temp names.
SAFE_NAME_MAX = 150


def path_chars(text: str) -> str:
    """`text` with every character a path may not hold replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def safe_name(text: str) -> str:
    """A path-safe version of a run id or step name (a short hash keeps it unique when changed)."""
    out = path_chars(text)
    if out != text or out in ("", ".", "..") or len(out) > SAFE_NAME_MAX:
        out = f"{out[:SAFE_NAME_MAX]}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"
    return out


def datastore_env_var(name: str) -> str:
    return "MLPIPE_DATASTORE_" + re.sub(r"\W", "_", name.upper())


class Datastores:
    """Datastore name -> location, from the IR, overridable by MLPIPE_DATASTORE_<NAME>."""

    def __init__(self, ir: dict):
        self._urls = {d["name"]: d["url"] for d in ir.get("datastores") or []}
        self.default = ir.get("default_datastore") or "workspaceblobstore"

    def url(self, name: str) -> str:
        url = os.environ.get(datastore_env_var(name)) or self._urls.get(name)
        if not url:
            raise StepError(
                f"unknown datastore {name!r}: declare it in mlpipe.yaml (datastores:) or set "
                f"{datastore_env_var(name)} to its path or URL"
            )
        if store.is_local(url):
            return store.local_path(url)
        store.name_datastore(name, url)  # so store errors name the datastore
        return url.rstrip("/")

    def location(self, datastore: str, path: str) -> str:
        return store.join(self.url(datastore), path)


def pin_keys(bundle: str | None, runtime: str | None) -> list[str]:
    """The names a run's pinned version is recorded under: `ir-<16 hex of the IR hash>` (the
    bundle `<pipeline>.<hash>.json` beside a DAG / flow file, or `<IR hash>.json` staged for
    pods) and `runtime-<hash>` (the shipped runtime `.mlpipe/runtime/<hash>/`)."""
    keys = []
    if bundle:
        stem = bundle[: -len(".json")] if bundle.endswith(".json") else bundle
        keys.append("ir-" + stem.rsplit(".", 1)[-1][:16])
    if runtime:
        keys.append("runtime-" + runtime)
    return keys


class State:
    def __init__(self, datastores: Datastores):
        self.root = store.join(datastores.url(datastores.default), STATE_DIR)

    def snapshots(self) -> str:
        return store.join(self.root, "snapshots")

    def run_dir(self, run_id: str) -> str:
        return store.join(self.root, "runs", safe_name(run_id))

    def step_record(self, run_id: str, step: str) -> str:
        return store.join(self.run_dir(run_id), "steps", safe_name(step) + ".json")

    def step_log(self, run_id: str, step: str, stream: str) -> str:
        return store.join(self.run_dir(run_id), "logs", f"{safe_name(step)}.{stream}.log")

    def pins(self, version: str) -> str:
        """The runs that pinned a compiled version (PIN_KEYS): `pins/<version>/<run>.json`,
        which a recompile reads before it removes that version's files (backends/base.py)."""
        return store.join(self.root, "pins", safe_name(version))

    def record_pins(self, run_id: str, versions: list[str]) -> None:
        """Called once per run, by the task that recorded its version.json."""
        doc = json.dumps({"run_id": run_id, "at": time.time()}).encode("utf-8")
        for version in versions:
            store.write_once(store.join(self.pins(version), safe_name(run_id) + ".json"), doc)

    def run_record(self, run_id: str) -> str:
        return store.join(self.run_dir(run_id), "run.json")

    def cache_entry(self, fingerprint: str) -> str:
        return store.join(self.root, "cache", fingerprint + ".json")

    def registry(self, dataset: str) -> str:
        """The single-file registry of mlpipe before write-once versions (read for old state)."""
        return store.join(self.root, "registry", safe_name(dataset) + ".json")

    def dataset_versions(self, dataset: str) -> str:
        """The folder of a registered dataset's write-once versions `<n>.json` (registry.py)."""
        return store.join(self.root, "datasets", safe_name(dataset))

    def model_versions(self, model: str) -> str:
        """The folder of a registered model's versions, files and edits (models.py)."""
        return store.join(self.root, "models", safe_name(model))

    @contextmanager
    def lock(self, url: str):
        """An exclusive lock next to a local state file. Remote stores need none: everything
        several machines write there is a write-once key or a single-PUT whole file."""
        if not store.is_local(url):
            yield
            return
        with store.file_lock(store.local_path(url) + ".lock"):
            yield

    def add_version(self, folder: str, entry: dict) -> int:
        """Store `entry` as the next version `<folder>/<n>.json` (n = 1, 2, ...) and return n.

        Versions are write-once keys: concurrent writers (other processes or machines) each end up
        with their own number, and none overwrites another's.
        """
        version = max(version_numbers(folder), default=0) + 1
        while True:
            doc = dict(entry, version=version)
            data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
            if store.write_once(store.join(folder, f"{version}.json"), data):
                return version
            version += 1


def version_numbers(folder: str) -> list[int]:
    """The version numbers written by `State.add_version` under folder, ascending."""
    return sorted(
        int(n[:-5]) for n in store.list_names(folder) if n.endswith(".json") and n[:-5].isdigit()
    )


def version_docs(folder: str) -> dict[int, dict]:
    """Every readable version doc under folder, by number."""
    out = {}
    for n in version_numbers(folder):
        doc = store.read_json(store.join(folder, f"{n}.json"))
        if doc is not None:
            out[n] = doc
    return out


def latest_version_doc(folder: str) -> dict | None:
    for n in reversed(version_numbers(folder)):
        doc = store.read_json(store.join(folder, f"{n}.json"))
        if doc is not None:
            return doc
    return None
