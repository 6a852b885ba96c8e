"""`Run.get_context()` for step scripts (what `from azureml.core import Run` gives them).

Inside a step the runtime writes a JSON run context and puts its path in `MLPIPE_RUN_CONTEXT`; outside
one, `get_context()` returns an offline run that works standalone, like SDK v1's offline run.
Standard library only: this module is imported by scripts running in step environments.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid

ENV_VAR = "MLPIPE_RUN_CONTEXT"


class TabularInput:
    """A tabular dataset consumed "direct": the files were downloaded before the script started."""

    def __init__(
        self,
        name: str,
        files: list[str],
        separator: str = ",",
        header: bool = True,
        fmt: str = "delimited",
    ):
        self.name = name
        self.files = list(files)
        self.separator = separator
        self.header = header
        self.format = fmt  # delimited | parquet | json_lines (Dataset.Tabular.from_*_files)

    def to_pandas_dataframe(self):
        from .registry import read_frame  # pandas / pyarrow only when called

        return read_frame(self.files, self.format, self.separator, self.header)

    def to_path(self) -> list[str]:
        return list(self.files)

    def __repr__(self) -> str:
        return f"TabularInput(name={self.name!r}, files={len(self.files)})"


class _Datastore:
    def __init__(self, name: str, url: str):
        self.name = name
        self.url = url

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r})"


class _Workspace:
    """The pipeline's workspace as a step sees it: its name and datastores."""

    def __init__(self, name: str, datastores: dict | None = None, default: str | None = None):
        self.name = name
        self.datastores = {n: _Datastore(n, u) for n, u in (datastores or {}).items()}
        self._default = default

    def get_default_datastore(self):
        return self.datastores.get(self._default or "workspaceblobstore")

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r})"


class _Experiment:
    def __init__(self, name: str, workspace: _Workspace, live: bool = False):
        self.name = name
        self._workspace = workspace
        self._live = live

    @property
    def workspace(self):
        """Inside a step: the pipeline's full workspace (datastores, datasets, models), as v1 gave.

        That is the authoring API's Workspace in its run-time life, which needs only the stdlib
        here; the bare one (name and datastores) stays as the fallback."""
        if self._live:
            self._live = False
            try:
                from mlpipe.api.workspace import Workspace

                self._workspace = Workspace()
            except Exception:  # noqa: BLE001 - never let the richer view break a script
                pass
        return self._workspace

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r})"


def _jsonable(value):
    """A metric / tag value as JSON can hold it (numpy scalars and arrays become Python values)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        pass
    for attr in ("item", "tolist"):
        if hasattr(value, attr):
            try:
                return _jsonable(getattr(value, attr)())
            except Exception:
                pass
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _tags_dict(tags) -> dict:
    """v1's set_tags takes a dict, one name, or a list of names (tags with empty values)."""
    if isinstance(tags, str):
        return {tags: ""}
    if isinstance(tags, (list, tuple)):
        return dict.fromkeys(tags, "")
    return dict(tags or {})


def _tag_value(value) -> str:
    return "" if value is None else str(value)


class _Logger:
    """The v1 `log*` family over one `_record(kind, name, value)` method."""

    def _record(self, kind: str, name: str, value) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def log(self, name: str, value, description: str = "", step=None) -> None:
        self._record("scalar", name, value)

    def log_list(self, name: str, value, description: str = "") -> None:
        self._record("list", name, list(value))

    def log_row(self, name: str, description: str | None = None, **kwargs) -> None:
        self._record("row", name, dict(kwargs))

    def log_table(self, name: str, value: dict, description: str = "") -> None:
        self._record("table", name, dict(value))

    def log_image(self, name: str, path=None, plot=None, description: str = "") -> None:
        self._record("image", name, str(path) if path is not None else "<plot>")

    def log_confusion_matrix(self, name: str, value, description: str = "") -> None:
        self._record("confusion_matrix", name, value)

    def log_accuracy_table(self, name: str, value, description: str = "") -> None:
        self._record("accuracy_table", name, value)

    def log_residuals(self, name: str, value, description: str = "") -> None:
        self._record("residuals", name, value)

    def log_predictions(self, name: str, value, description: str = "") -> None:
        self._record("predictions", name, value)


class PipelineRun(_Logger):
    """`run.parent` inside a step: the pipeline run, shared by all its steps (on any machine).

    What this step logs or tags goes to its own file in state (`runs/<run>/parent/<step>.json`);
    `get_metrics` / `get_tags` read every step's file, so later steps see what earlier ones logged.
    """

    def __init__(self, step_run: Run, data: dict):
        self.id = data["run_id"]
        self.name = self.id
        self.experiment = step_run.experiment
        self._step = data.get("step") or "?"
        self._root = data.get("state_root")
        self._lock = threading.Lock()
        self._metrics: list[dict] = []
        self._tags: dict[str, list] = {}  # key -> [value, time]

    def _save(self) -> None:
        if self._root:
            from . import history

            history.write_parent_entries(
                self._root, self.id, self._step, {"metrics": self._metrics, "tags": self._tags}
            )

    def _entries(self) -> list[dict]:
        if not self._root:
            return [{"metrics": self._metrics, "tags": self._tags}]
        from . import history

        return history.parent_entries(self._root, self.id)

    def _record(self, kind: str, name: str, value) -> None:
        with self._lock:
            self._metrics.append(
                {
                    "kind": kind,
                    "name": name,
                    "value": _jsonable(value),
                    "time": time.time(),
                    "seq": len(self._metrics),
                    "step": self._step,
                }
            )
            self._save()

    def get_metrics(self, name: str | None = None, recursive: bool = False, **_ignored) -> dict:
        from . import history

        out = history.merge_metrics(self._entries())
        return {name: out[name]} if name is not None and name in out else out

    def tag(self, key: str, value=None) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags) -> None:
        tags = _tags_dict(tags)
        with self._lock:
            now = time.time()
            for key, value in tags.items():
                self._tags[str(key)] = [_tag_value(value), now]
            self._save()

    def get_tags(self) -> dict:
        from . import history

        return history.merge_tags(self._entries())

    @property
    def tags(self) -> dict:
        return self.get_tags()

    def cancel(self) -> None:
        """Cancel the pipeline run: no step that has not started yet will run (this one ends
        normally). The run ends canceled, not failed, on every runner."""
        if not self._root:
            return
        from . import history

        history.request_cancel(self._root, self.id, self._step)

    def get_status(self) -> str:
        if self._root:
            from . import history

            if history.canceled(self._root, self.id) is not None:
                return "Canceled"
        return "Running"

    def get_details(self) -> dict:
        return {"runId": self.id, "status": self.get_status()}

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, experiment={self.experiment.name!r})"


class Run(_Logger):
    """The current step run. Use `Run.get_context()`."""

    _current: Run | None = None
    _lock = threading.Lock()

    def __init__(self, data: dict | None = None):
        data = data or {}
        self._data = data
        self._offline = not data
        self.id = data.get("id") or f"OfflineRun_{uuid.uuid4()}"
        self.name = data.get("step", self.id)
        self.display_name = self.name
        self.number = 0
        workspace = _Workspace(
            data.get("workspace") or "local",
            data.get("datastores"),
            data.get("default_datastore"),
        )
        self.experiment = _Experiment(
            data.get("experiment") or "offline", workspace, live=bool(data)
        )
        self.parent = PipelineRun(self, data) if data.get("run_id") else None
        self._metrics_file = data.get("metrics_file")
        self._meta_file = data.get("meta_file")
        self._uploads = data.get("uploads_dir")
        self._cwd = data.get("cwd")
        self._metrics: dict[str, list] = {}
        self._tags: dict[str, str] = {}
        self._properties: dict[str, str] = {}
        self.input_datasets = {}
        for name, spec in (data.get("input_datasets") or {}).items():
            if isinstance(spec, dict) and spec.get("kind") == "tabular":
                self.input_datasets[name] = TabularInput(
                    name,
                    spec.get("files", []),
                    spec.get("separator", ","),
                    spec.get("header", True),
                    spec.get("format", "delimited"),
                )
            elif isinstance(spec, dict):
                self.input_datasets[name] = spec.get("path")
            else:
                self.input_datasets[name] = spec
        self.output_datasets = dict(data.get("output_datasets") or {})

    # ---- construction
    @classmethod
    def get_context(cls, allow_offline: bool = True, **_ignored) -> Run:
        with cls._lock:
            if cls._current is None:
                path = os.environ.get(ENV_VAR)
                data = None
                if path:
                    with open(path, encoding="utf-8") as fh:
                        data = json.load(fh)
                elif not allow_offline:
                    raise RuntimeError("not running inside an mlpipe step and allow_offline=False")
                cls._current = cls(data)
            return cls._current

    @property
    def offline(self) -> bool:
        return self._offline

    # ---- metrics
    def _record(self, kind: str, name: str, value) -> None:
        value = _jsonable(value)
        self._metrics.setdefault(name, []).append(value)
        if self._metrics_file:
            line = json.dumps(
                {"kind": kind, "name": name, "value": value, "time": time.time()},
                default=str,
                ensure_ascii=False,
            )
            with self._lock, open(self._metrics_file, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def get_metrics(self, name: str | None = None, **_ignored) -> dict:
        out = {k: (v[0] if len(v) == 1 else list(v)) for k, v in self._metrics.items()}
        return {name: out[name]} if name is not None and name in out else out

    # ---- status
    def get_status(self) -> str:
        return "Running"

    def complete(self, *args, **kwargs) -> None:
        pass

    def fail(self, *args, **kwargs) -> None:
        pass

    def cancel(self, *args, **kwargs) -> None:
        """A step run cannot stop alone: this cancels the pipeline run (see `parent.cancel`)."""
        if self.parent is not None:
            self.parent.cancel()

    def flush(self, *args, **kwargs) -> None:
        pass

    def wait_for_completion(self, *args, **kwargs) -> dict:
        return {"status": "Running"}

    # ---- tags and properties (kept in the step's record)
    def _save_meta(self) -> None:
        if self._meta_file:
            doc = {"tags": self._tags, "properties": self._properties}
            tmp = f"{self._meta_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, ensure_ascii=False)
            os.replace(tmp, self._meta_file)

    def tag(self, key: str, value=None) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags) -> None:
        tags = _tags_dict(tags)
        with self._lock:
            self._tags.update({str(k): _tag_value(v) for k, v in tags.items()})
            self._save_meta()

    def get_tags(self) -> dict:
        return dict(self._tags)

    @property
    def tags(self) -> dict:
        return dict(self._tags)

    def remove_tags(self, tags) -> None:
        with self._lock:
            for key in [tags] if isinstance(tags, str) else list(tags or []):
                self._tags.pop(key, None)
            self._save_meta()

    @property
    def properties(self) -> dict:
        return dict(self._properties)

    def add_properties(self, properties: dict) -> None:
        """Properties are add-only, as in v1: a key keeps its first value."""
        with self._lock:
            for key, value in (properties or {}).items():
                key, value = str(key), _tag_value(value)
                if self._properties.get(key, value) != value:
                    raise ValueError(
                        f"run property {key!r} is already set (properties are immutable)"
                    )
                self._properties[key] = value
            self._save_meta()

    # ---- files (kept as the step run's files in state when the step ends)
    def _upload_target(self, name: str) -> str:
        rel = str(name).replace("\\", "/").strip("/")
        if not rel or any(part == ".." for part in rel.split("/")):
            raise ValueError(f"invalid run file name {name!r}")
        root = self._uploads or os.path.join(os.getcwd(), ".mlpipe-offline-uploads")
        return os.path.join(root, *rel.split("/"))

    def upload_file(self, name: str, path_or_stream, **_ignored) -> None:
        target = self._upload_target(name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if hasattr(path_or_stream, "read"):
            data = path_or_stream.read()
            with open(target, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        else:
            shutil.copyfile(os.fspath(path_or_stream), target)

    def upload_files(self, names, paths, **_ignored) -> None:
        for name, path in zip(names, paths, strict=True):
            self.upload_file(name, path)

    def upload_folder(self, name: str, path: str, **_ignored) -> None:
        target = self._upload_target(name)
        shutil.copytree(os.fspath(path), target, dirs_exist_ok=True)

    def _local_files(self) -> list[tuple[str, str]]:
        from .history import collect_files

        cwd = self._cwd or os.getcwd()
        return collect_files(cwd, self._uploads or "")

    def get_file_names(self) -> list[str]:
        return sorted(rel for _, rel in self._local_files())

    def download_file(self, name: str, output_file_path=None, **_ignored) -> None:
        rel = str(name).replace("\\", "/").strip("/")
        found = dict((r, p) for p, r in self._local_files()).get(rel)
        if found is None:
            raise FileNotFoundError(f"run {self.id} has no file {name!r}")
        target = os.fspath(output_file_path) if output_file_path else os.path.basename(rel)
        if os.path.isdir(target):
            target = os.path.join(target, os.path.basename(rel))
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        shutil.copyfile(found, target)

    def download_files(self, prefix=None, output_directory=None, **_ignored) -> None:
        for path, rel in self._local_files():
            if prefix is None or rel.startswith(str(prefix).strip("/")):
                target = os.path.join(output_directory or os.getcwd(), *rel.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(path, target)

    # ---- models
    def register_model(self, model_name: str, model_path: str | None = None, **kwargs):
        """Register one of this run's files (`outputs/model.pkl`) or folders as a model."""
        try:
            # The authoring API's Model (stdlib + the runtime's registry), as for the Workspace.
            from mlpipe.api.model import register_model
        except ImportError:
            raise NotImplementedError(
                "Run.register_model: this mlpipe has no model registry yet"
            ) from None

        rel = (model_path or "outputs").replace("\\", "/").strip("/")
        local = {r: p for p, r in self._local_files()}
        cwd = self._cwd or os.getcwd()
        source = local.get(rel) or os.path.join(cwd, *rel.split("/"))
        if not os.path.exists(source):
            raise FileNotFoundError(f"run {self.id} has no file or folder {rel!r} to register")
        return register_model(
            self.experiment.workspace, model_name=model_name, model_path=source, run=self, **kwargs
        )

    def get_details(self) -> dict:
        return {
            "runId": self.id,
            "status": "Running",
            "target": self._data.get("compute") or "local",
            "properties": dict(self._properties),
            "tags": dict(self._tags),
        }

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, experiment={self.experiment.name!r})"


def read_metrics(path: str) -> dict:
    """Metrics a script logged: {name: value} for a single scalar, else the list of values."""
    collected: dict[str, list] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                collected.setdefault(item["name"], []).append(item["value"])
    except FileNotFoundError:
        return {}
    return {k: (v[0] if len(v) == 1 else v) for k, v in collected.items()}


def read_meta(path: str) -> dict:
    """The tags and properties a script set on its step run ({} when it set none)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


__all__ = ["PipelineRun", "Run", "TabularInput", "read_meta", "read_metrics"]
