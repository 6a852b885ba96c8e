"""The model registry: `Model.register`, `Model.list`, `get_model_path`... for steps and scripts.

Standard library only (+ fsspec for remote datastores; MLflow only when MLFLOW_TRACKING_URI is set).

State, under `<default datastore>/.mlpipe/models/<name>/`:

    files/<key>/...              the model's files, uploaded first under a fresh key, never changed
    <version>.json               write-once version doc (State.add_version), pointing at files/<key>
    edits/<version>/<t>-<id>.json  append-only tag / property edits, applied in name order

A version doc is written only after its files are complete, so a visible version is whole; two
registrations of one name at once each get their own version; concurrent tag edits are separate
files, so none is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

from . import store
from .registry import WorkspaceInfo, pick_version
from .state import latest_version_doc, safe_name, version_docs


class ModelRegistry:
    def __init__(self, workspace: WorkspaceInfo):
        self.ws = workspace
        self.state = workspace.state()
        self.root = store.join(self.state.root, "models")

    def folder(self, name: str) -> str:
        return store.join(self.root, safe_name(name))

    # ------------------------------------------------------------------------------ writing
    def register(
        self,
        name: str,
        model_path: str,
        *,
        tags: dict | None = None,
        properties: dict | None = None,
        description: str | None = None,
        datasets: list | None = None,
        framework: str | None = None,
        framework_version: str | None = None,
        run: dict | None = None,
        extra: dict | None = None,
    ) -> dict:
        """Upload `model_path` (a file or a folder) and add a version of `name`; returns its doc."""
        _check_name(name)
        src = os.path.abspath(os.path.expanduser(os.fspath(model_path)))
        if not os.path.exists(src):
            raise FileNotFoundError(f"model_path {model_path!r} does not exist")
        entry_name = os.path.basename(src.rstrip(os.sep)) or "model"
        key = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}"
        files_url = store.join(self.folder(name), "files", key)
        listing = _local_files(src, entry_name)
        _store_copies(listing, files_url)
        entry = {
            "name": name,
            "description": description,
            "tags": _str_keys(tags),
            "properties": _str_keys(properties),
            "datasets": [list(d) if isinstance(d, list | tuple) else d for d in datasets or []],
            "framework": framework,
            "framework_version": framework_version,
            "created": time.time(),
            "files": {
                "key": key,
                "entry": entry_name,
                "is_dir": os.path.isdir(src),
                "list": sorted(rel for _, rel in listing),
                "bytes": sum(os.path.getsize(p) for p, _ in listing),
            },
            "run": run or {},
            **(extra or {}),
        }
        version = self.state.add_version(self.folder(name), entry)
        return self._resolved(dict(entry, version=version))

    def edit(self, name: str, version: int, op: str, value) -> None:
        """Append a tag / property edit (op: add_tags, remove_tags, add_properties)."""
        self.get(name, version)  # exists?
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        url = store.join(self.folder(name), "edits", str(version), f"{stamp}.json")
        data = json.dumps({"op": op, "value": value, "time": time.time()}, sort_keys=True)
        store.write_once(url, (data + "\n").encode("utf-8"))

    # ------------------------------------------------------------------------------ reading
    def names(self) -> list[str]:
        out = []
        for entry in store.list_names(self.root):
            doc = latest_version_doc(store.join(self.root, entry))
            if doc is not None:
                out.append(doc["name"])
        return sorted(out)

    def versions(self, name: str) -> list[dict]:
        docs = version_docs(self.folder(name))
        return [self._resolved(d) for _, d in sorted(docs.items()) if d.get("name") == name]

    def get(self, name: str, version=None) -> dict:
        return pick_version("model", name, self.versions(name), version, self)

    def list(self, name=None, tags=None, properties=None, run_id=None, latest=False) -> list[dict]:
        """Versions matching every filter, newest first per name (v1's order)."""
        out = []
        for n in [name] if name else self.names():
            docs = [d for d in self.versions(n) if _matches(d, tags, properties, run_id)]
            docs.sort(key=lambda d: d["version"], reverse=True)
            out.extend(docs[:1] if latest else docs)
        return out

    def _resolved(self, doc: dict) -> dict:
        """The version doc with its edits applied and `id` / `url` filled in."""
        doc = dict(doc)
        doc["tags"] = dict(doc.get("tags") or {})
        doc["properties"] = dict(doc.get("properties") or {})
        doc["id"] = f"{doc['name']}:{doc['version']}"
        edits = store.join(self.folder(doc["name"]), "edits", str(doc["version"]))
        for entry in store.list_names(edits):
            if not entry.endswith(".json"):
                continue
            edit = store.read_json(store.join(edits, entry))
            if edit:
                _apply_edit(doc, edit)
        doc["url"] = store.join(self.folder(doc["name"]), "files", doc["files"]["key"])
        return doc

    # ------------------------------------------------------------------------------ files
    def download(self, doc: dict, target_dir: str, exist_ok: bool = False) -> str:
        """Copy the model's files into target_dir; returns the path of its file or folder."""
        target_dir = os.path.abspath(os.path.expanduser(os.fspath(target_dir)))
        entry = os.path.join(target_dir, doc["files"]["entry"])
        if os.path.exists(entry):
            if not exist_ok:
                raise FileExistsError(f"{entry} exists: pass exist_ok=True to replace it")
            if os.path.isdir(entry) and not os.path.islink(entry):
                shutil.rmtree(entry)
            else:
                os.unlink(entry)
        for rel in doc["files"]["list"]:
            store.fetch_file(store.join(doc["url"], rel), os.path.join(target_dir, *rel.split("/")))
        return entry


def _store_copies(listing: list[tuple[str, str]], url: str) -> None:
    """Copy the files to a fresh location. Copies, never hard links (publish_tree links when it
    can): a script that rewrites its model file afterwards must not change a registered version."""
    if not store.is_local(url):
        fs, path = store._fs(url)
        for src, rel in listing:
            fs.put_file(src, f"{path.rstrip('/')}/{rel}")
        return
    dest = store.local_path(url)
    tmp = f"{dest}.{uuid.uuid4().hex[:12]}.partial"
    for src, rel in listing:
        target = os.path.join(tmp, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(src, target)
    os.makedirs(tmp, exist_ok=True)
    os.rename(tmp, dest)  # the key is new: nothing to replace


def _check_name(name) -> None:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise ValueError("model_name must be a non-empty string of at most 255 characters")


def _str_keys(d) -> dict:
    return {str(k): v for k, v in (d or {}).items()}


def _local_files(src: str, entry_name: str) -> list[tuple[str, str]]:
    if os.path.isfile(src):
        return [(src, entry_name)]
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            out.append((path, f"{entry_name}/{rel}"))
    return out


def _apply_edit(doc: dict, edit: dict) -> None:
    op, value = edit.get("op"), edit.get("value")
    if op == "add_tags" and isinstance(value, dict):
        doc["tags"].update(value)
    elif op == "remove_tags" and isinstance(value, list):
        for key in value:
            doc["tags"].pop(key, None)
    elif op == "add_properties" and isinstance(value, dict):
        for key, val in value.items():
            doc["properties"].setdefault(key, val)  # add-only: the first value stays
    elif op == "set" and isinstance(value, dict):
        doc.update({k: v for k, v in value.items() if k in ("description", "mlflow")})


def _matches(doc: dict, tags, properties, run_id) -> bool:
    run = doc.get("run") or {}
    if run_id is not None and run_id not in (run.get("id"), run.get("pipeline_run_id")):
        return False
    return _kv_match(doc["tags"], tags) and _kv_match(doc["properties"], properties)


def _kv_match(have: dict, wanted) -> bool:
    """v1's filter: a list of keys and/or [key, value] pairs (a dict works too); all must match."""
    if not wanted:
        return True
    items = wanted.items() if isinstance(wanted, dict) else wanted
    if isinstance(items, str):
        items = [items]
    for item in items:
        if isinstance(item, list | tuple) and len(item) == 2:
            key, value = item
            if key not in have or str(have[key]) != str(value):
                return False
        elif isinstance(item, list | tuple) and len(item) == 1:
            if item[0] not in have:
                return False
        elif item not in have:
            return False
    return True


# ------------------------------------------------------------------------------ entry points


def step_run_info() -> dict:
    """The registering step run ({} outside a step): ids Model.list(run_id=...) matches."""
    from .registry import run_context_data

    data = run_context_data() or {}
    if not data.get("run_id"):
        return {}
    return {
        "id": data.get("id"),
        "pipeline_run_id": data.get("run_id"),
        "step": data.get("step"),
        "experiment": data.get("experiment"),
    }


def mirror_to_mlflow(doc: dict, say=None) -> dict | None:
    """Register the version in MLflow's model registry when MLFLOW_TRACKING_URI is an http(s)
    server: same name, tags and description.

    MLflow accepts a model version's files only from a run's artifacts, so the files are uploaded
    (the server's artifact proxy) to the step's MLflow run (MLFLOW_RUN_ID, set when steps are
    tracked), or to a run of the experiment "mlpipe-models" created for a registration outside a
    step, under `models/<name>/<version>/`. Through the REST API with urllib: no mlflow package
    is needed where steps run. Returns {"name", "version", "run_id", "source"}, or None without a
    tracking server. MLflow numbers versions itself; its number equals mlpipe's when every
    registration of the name goes through mlpipe, and a difference is reported."""
    uri = (os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    if not uri.startswith(("http://", "https://")):
        return None
    name = doc["name"]
    run_id = os.environ.get("MLFLOW_RUN_ID") or None
    own_run = run_id is None
    if own_run:
        run_id = _mlflow_run(uri, f"register {doc['id']}")
    try:
        source = _mlflow_upload(uri, run_id, doc)
    finally:
        if own_run:
            _mlflow_call(uri, "runs/update", {"run_id": run_id, "status": "FINISHED"})
    try:
        _mlflow_call(uri, "registered-models/create", {"name": name})
    except _MlflowError as exc:
        if exc.code != "RESOURCE_ALREADY_EXISTS":
            raise
    body = {
        "name": name,
        "source": source,
        "run_id": run_id,
        "tags": [{"key": str(k), "value": str(v)} for k, v in sorted(doc["tags"].items())],
        "description": doc.get("description") or "",
    }
    version = int(_mlflow_call(uri, "model-versions/create", body)["model_version"]["version"])
    if version != doc["version"] and say:
        say(
            f"MLflow numbered model {name!r} version {version}, mlpipe {doc['version']} "
            "(the name was registered in MLflow outside mlpipe)"
        )
    return {"name": name, "version": version, "run_id": run_id, "source": source}


def _mlflow_run(uri: str, run_name: str) -> str:
    try:
        found = _mlflow_call(
            uri, "experiments/get-by-name", {"experiment_name": "mlpipe-models"}, "GET"
        )
        experiment = found["experiment"]["experiment_id"]
    except _MlflowError as exc:
        if exc.code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            made = _mlflow_call(uri, "experiments/create", {"name": "mlpipe-models"})
            experiment = made["experiment_id"]
        except _MlflowError:  # created meanwhile by another registration
            found = _mlflow_call(
                uri, "experiments/get-by-name", {"experiment_name": "mlpipe-models"}, "GET"
            )
            experiment = found["experiment"]["experiment_id"]
    made = _mlflow_call(
        uri,
        "runs/create",
        {"experiment_id": experiment, "run_name": run_name, "start_time": int(time.time() * 1000)},
    )
    return made["run"]["info"]["run_id"]


def _mlflow_upload(uri: str, run_id: str, doc: dict) -> str:
    """Upload the model's files to the run's artifacts; returns the source URI for MLflow."""
    import urllib.parse

    info = _mlflow_call(uri, "runs/get", {"run_id": run_id}, "GET")["run"]["info"]
    root = info["artifact_uri"].rstrip("/")
    prefix = f"models/{doc['name']}/{doc['version']}"
    if not root.startswith("mlflow-artifacts:"):
        raise _MlflowError(
            f"the server stores artifacts at {root!r} without proxying them "
            "(start it with --serve-artifacts) : cannot upload the model's files",
            None,
        )
    path = root[len("mlflow-artifacts:") :].lstrip("/")
    for rel in doc["files"]["list"]:
        data = store.read_bytes(store.join(doc["url"], rel)) or b""
        target = urllib.parse.quote(f"{path}/{prefix}/{rel}")
        _mlflow_call(uri, target, data, "PUT", api="mlflow-artifacts/artifacts")
    return f"{root}/{prefix}/{doc['files']['entry']}"


class _MlflowError(RuntimeError):
    def __init__(self, message: str, code: str | None):
        super().__init__(message)
        self.code = code


def _mlflow_call(uri: str, endpoint: str, body, method: str = "POST", api: str = "mlflow"):
    """One MLflow REST call (JSON, or raw bytes for an artifact PUT). Credentials: user:password
    in the URI or MLflow's MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN; never stored."""
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    user = urllib.parse.unquote(parts.username or "") or os.environ.get(
        "MLFLOW_TRACKING_USERNAME", ""
    )
    password = urllib.parse.unquote(parts.password or "") or os.environ.get(
        "MLFLOW_TRACKING_PASSWORD", ""
    )
    host = parts.hostname or ""
    base = urllib.parse.urlunsplit(
        (parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", "")
    )
    headers = {}
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    url = f"{base.rstrip('/')}/api/2.0/{api}/{endpoint}"
    data = None
    if method == "GET":
        url += "?" + urllib.parse.urlencode(body or {})
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            text = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read().decode("utf-8"))
        except ValueError:
            detail = {}
        raise _MlflowError(
            f"MLflow {endpoint}: HTTP {exc.code} {detail.get('message', '')}".strip(),
            detail.get("error_code"),
        ) from None
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
