"""The workspace behind step scripts and plain scripts: datastores and the dataset registry.

Standard library only (fsspec for remote datastores, pandas / pyarrow only when a table is read), so
a step environment without mlpipe's compiler dependencies can use it.

State (see docs/runtime.md):

    <default datastore>/.mlpipe/datasets/<name>/<version>.json   one write-once file per version

Every writer (`Dataset.register` in a step or a plain script, `register_on_complete`, the
capture-time registrations `mlpipe run` / `mlpipe compile` apply) goes through `DatasetRegistry`,
and a version is a write-once key (`State.add_version`), so concurrent registrations on several
machines each get their own number and none is lost.
"""

from __future__ import annotations

import json
import os
import time

from . import store
from .fingerprint import StatCache, files_fingerprint
from .state import Datastores, State, latest_version_doc, safe_name, version_docs, version_numbers

# A registered dataset's definition: what identifies it besides its name (compared to decide whether
# a registration is new). `paths` items are IR DatasetPath dicts: {kind: datapath, datastore, path}
# or {kind: url, url}.
DEFINITION_KEYS = ("type", "paths", "format", "separator", "header")
FORMATS = ("delimited", "parquet", "json_lines")


class RegistryError(LookupError):
    """A dataset or model that is not registered, or a registration that conflicts."""


class WorkspaceInfo:
    """Where a workspace's data lives: datastore name -> location, the default datastore, state."""

    def __init__(self, name: str, datastores: dict[str, str], default: str = "workspaceblobstore"):
        self.name = name
        self.default = default
        self._datastores = Datastores(
            {
                "datastores": [{"name": n, "url": u} for n, u in sorted(datastores.items())],
                "default_datastore": default,
            }
        )
        self.names = sorted(datastores)

    @classmethod
    def from_ir(cls, ir: dict) -> WorkspaceInfo:
        return cls(
            ir.get("workspace") or "local",
            {d["name"]: d["url"] for d in ir.get("datastores") or []},
            ir.get("default_datastore") or "workspaceblobstore",
        )

    @classmethod
    def from_run_context(cls, data: dict) -> WorkspaceInfo | None:
        """The pipeline's workspace, from the run context JSON the runtime writes for a step."""
        if not data or not data.get("datastores"):
            return None
        return cls(
            data.get("workspace") or "local",
            dict(data["datastores"]),
            data.get("default_datastore") or "workspaceblobstore",
        )

    def url(self, datastore: str) -> str:
        return self._datastores.url(datastore)

    def location(self, datastore: str, path: str = "") -> str:
        return self._datastores.location(datastore, path)

    def state(self) -> State:
        return State(self._datastores)

    def path_location(self, ref: dict) -> str:
        """The location of an IR DatasetPath dict."""
        if ref.get("kind") == "url" or "url" in ref:
            url = ref["url"]
            return store.local_path(url) if store.is_local(url) else url
        return self.location(ref["datastore"], ref.get("path", ""))

    def __repr__(self) -> str:
        return f"WorkspaceInfo({self.name!r}, default={self.default!r})"


def run_context_data() -> dict | None:
    """The current step's run context (None outside a step)."""
    path = os.environ.get("MLPIPE_RUN_CONTEXT")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ------------------------------------------------------------------------------- dataset registry


def definition_of(doc: dict) -> dict:
    out = {k: doc.get(k) for k in DEFINITION_KEYS}
    out["format"] = out["format"] or "delimited"
    out["separator"] = out["separator"] or ","
    out["header"] = True if out["header"] is None else bool(out["header"])
    return out


def _version_number(version) -> int | None:
    """None for the latest; else the version as an int (v1 accepts ints and digit strings)."""
    if version is None or (isinstance(version, str) and version.strip().lower() == "latest"):
        return None
    if isinstance(version, bool):
        raise RegistryError(f"version must be 'latest', an int or a digit string, not {version!r}")
    if isinstance(version, int) or (isinstance(version, str) and version.strip().isdigit()):
        return int(version)
    raise RegistryError(f"version must be 'latest', an int or a digit string, not {version!r}")


def pick_version(kind, name, versions: list[dict], version, registry, hint: str = "") -> dict:
    """The requested version (None / "latest": the newest) of a registry entry, or a clear error.

    `registry.names()` is called only for the error message: it reads every entry.
    """
    number = _version_number(version)
    if not versions:
        known = ", ".join(registry.names()) or "none"
        raise RegistryError(
            f"{kind} {name!r} is not registered in workspace {registry.ws.name!r} "
            f"(registered: {known}){hint}"
        )
    if number is None:
        return versions[-1]
    for doc in versions:
        if doc.get("version") == number:
            return doc
    have = ", ".join(str(d.get("version")) for d in versions)
    raise RegistryError(f"{kind} {name!r} has no version {number} (versions: {have})")


class DatasetRegistry:
    def __init__(self, workspace: WorkspaceInfo, cache_dir: str | None = None):
        self.ws = workspace
        self.state = workspace.state()
        self.root = store.join(self.state.root, "datasets")
        self.stat_cache = StatCache(cache_dir)

    def folder(self, name: str) -> str:
        return store.join(self.root, safe_name(name))

    # ---- reading
    def names(self) -> list[str]:
        found = set()
        for entry in store.list_names(self.root):
            doc = latest_version_doc(store.join(self.root, entry))
            if doc is not None:
                found.add(doc["name"])
        for entry in store.list_names(store.join(self.state.root, "registry")):
            if entry.endswith(".json"):
                doc = store.read_json(store.join(self.state.root, "registry", entry))
                if doc and doc.get("versions"):
                    found.add(doc.get("name") or entry[:-5])
        return sorted(found)

    def _legacy(self, name: str) -> dict[int, dict]:
        """Versions kept by mlpipe before write-once versions (`registry/<name>.json`)."""
        doc = store.read_json(self.state.registry(name)) or {}
        out = {}
        for v in doc.get("versions") or []:
            if isinstance(v, dict) and isinstance(v.get("version"), int):
                out[v["version"]] = _from_legacy(name, v)
        return out

    def versions(self, name: str) -> list[dict]:
        """Every version of `name`, oldest first."""
        found = self._legacy(name) | version_docs(self.folder(name))
        return [found[n] for n in sorted(found)]

    def get(self, name: str, version=None) -> dict:
        hint = f"; register it with dataset.register(ws, {name!r})"
        return pick_version("dataset", name, self.versions(name), version, self, hint)

    def get_by_id(self, dataset_id: str) -> dict:
        name, _, version = str(dataset_id).rpartition(":")
        if name and version.isdigit():
            return self.get(name, int(version))
        for name in self.names():
            for doc in self.versions(name):
                if doc.get("id") == dataset_id:
                    return doc
        raise RegistryError(f"no registered dataset has the id {dataset_id!r}")

    # ---- writing
    def fingerprint(self, definition: dict) -> str | None:
        """Content fingerprint of the files a definition points at (None when unreachable)."""
        try:
            files = store.common_files([self.ws.path_location(p) for p in definition["paths"]])
            return files_fingerprint(files, self.stat_cache)
        except Exception:  # missing data or a store we cannot reach: registered all the same
            return None

    def register(
        self,
        name: str,
        definition: dict,
        *,
        description: str | None = None,
        tags: dict | None = None,
        create_new_version: bool = True,
        source: dict | None = None,
        dedupe: bool = True,
        fingerprint: str | None = None,
    ) -> tuple[dict, bool]:
        """Register a version; returns (version doc, created).

        dedupe: an identical definition with identical content as the latest version returns that
        version instead of a new one (so re-applying a registration is a no-op). Without
        create_new_version, an existing name with a different definition is an error (v1)."""
        definition = definition_of(definition)
        if fingerprint is None:
            fingerprint = self.fingerprint(definition)
        versions = self.versions(name)
        latest = versions[-1] if versions else None
        if latest is not None:
            same = definition_of(latest) == definition
            if same and dedupe and latest.get("fingerprint") == fingerprint:
                return latest, False
            if not create_new_version:
                if same:
                    return latest, False
                raise RegistryError(
                    f"a dataset named {name!r} is already registered (version "
                    f"{latest.get('version')}) with a different definition: pass "
                    "create_new_version=True to add a version"
                )
        entry = dict(
            definition,
            name=name,
            description=description,
            tags={str(k): v for k, v in (tags or {}).items()},
            fingerprint=fingerprint,
            registered=time.time(),
            source=source or {},
        )
        folder = self.folder(name)
        if versions and not version_numbers(folder):
            self._migrate_legacy(name)
        version = self.state.add_version(folder, entry)
        doc = dict(entry, version=version, id=f"{name}:{version}")
        return doc, True

    def _migrate_legacy(self, name: str) -> None:
        """Copy the old single-file versions to write-once keys before numbering a new one."""
        folder = self.folder(name)
        for number, doc in self._legacy(name).items():
            data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
            store.write_once(store.join(folder, f"{number}.json"), data)


def _from_legacy(name: str, v: dict) -> dict:
    return {
        "name": name,
        "version": v["version"],
        "id": f"{name}:{v['version']}",
        "type": "file",
        "paths": [{"kind": "datapath", "datastore": v.get("datastore"), "path": v.get("path", "")}]
        if v.get("datastore")
        else [{"kind": "url", "url": v.get("url", "")}],
        "format": "delimited",
        "separator": ",",
        "header": True,
        "description": v.get("description"),
        "tags": {},
        "fingerprint": v.get("fingerprint"),
        "registered": v.get("registered"),
        "source": {k: v.get(k) for k in ("run_id", "step", "output") if v.get(k)},
    }


# ------------------------------------------------------------------------------ reading the data


def dataset_files(ws: WorkspaceInfo, definition: dict) -> list[tuple[str, str]]:
    """[(location, relative path)] of a dataset definition, v1's layout (common base)."""
    return store.common_files([ws.path_location(p) for p in definition["paths"]])


def download_files(files: list[tuple[str, str]], target: str, overwrite: bool = False) -> list[str]:
    """Copy the files under `target` (relative paths kept); returns the local paths.

    An existing file is an error unless overwrite (v1's download)."""
    out = []
    for loc, rel in files:
        dst = os.path.join(target, *rel.split("/"))
        if os.path.exists(dst) and not overwrite:
            raise FileExistsError(f"{dst} exists: pass overwrite=True to replace it")
        store.fetch_file(loc, dst)
        out.append(os.path.abspath(dst))
    return out


def read_frame(paths: list[str], fmt: str = "delimited", separator=",", header=True):
    """A pandas DataFrame from local files (pandas / pyarrow imported only here)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_pandas_dataframe() needs pandas in the step's environment: add pandas to its "
            "pip_packages / conda_packages (azureml-dataset-runtime[pandas] brought it in v1)"
        ) from None
    frames = []
    for path in paths:
        if fmt == "parquet":
            frames.append(pd.read_parquet(path))
        elif fmt == "json_lines":
            frames.append(pd.read_json(path, lines=True))
        else:
            frames.append(pd.read_csv(path, sep=separator, header=0 if header else None))
    if not frames:
        return pd.DataFrame()
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
