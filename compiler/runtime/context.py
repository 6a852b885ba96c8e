"""`Run.get_context()` for step scripts (what `from azureml.core import Run` gives them).

Inside a step the runtime writes a JSON run context and puts its path in `MLPIPE_RUN_CONTEXT`; outside
one, `get_context()` returns an offline run that works standalone, like SDK v1's offline run.
Standard library only: this module is imported by scripts running in step environments.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

ENV_VAR = "MLPIPE_RUN_CONTEXT"


class TabularInput:
    """A tabular dataset consumed "direct": the files were downloaded before the script started."""

    def __init__(self, name: str, files: list[str], separator: str = ",", header: bool = True):
        self.name = name
        self.files = list(files)
        self.separator = separator
        self.header = header

    def to_pandas_dataframe(self):
        import pandas as pd  # only when called

        header = 0 if self.header else None
        frames = [pd.read_csv(f, sep=self.separator, header=header) for f in self.files]
        if not frames:
            return pd.DataFrame()
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True)

    def to_path(self) -> list[str]:
        return list(self.files)

    def __repr__(self) -> str:
        return f"TabularInput(name={self.name!r}, files={len(self.files)})"


class _Workspace:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r})"


class _Experiment:
    def __init__(self, name: str, workspace: str):
        self.name = name
        self.workspace = _Workspace(workspace)

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r})"


class _ParentRun:
    def __init__(self, run_id: str):
        self.id = run_id

    def __repr__(self) -> str:
        return f"Run(id={self.id!r})"


class Run:
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
        self.experiment = _Experiment(
            data.get("experiment") or "offline", data.get("workspace") or "local"
        )
        self.parent = _ParentRun(data["run_id"]) if data.get("run_id") else None
        self._metrics_file = data.get("metrics_file")
        self._metrics: dict[str, list] = {}
        self._tags: dict[str, str] = {}
        self.input_datasets = {}
        for name, spec in (data.get("input_datasets") or {}).items():
            if isinstance(spec, dict) and spec.get("kind") == "tabular":
                self.input_datasets[name] = TabularInput(
                    name,
                    spec.get("files", []),
                    spec.get("separator", ","),
                    spec.get("header", True),
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
    def _record(self, kind: str, name: str, value, description: str = "") -> None:
        self._metrics.setdefault(name, []).append(value)
        if self._metrics_file:
            line = json.dumps(
                {"kind": kind, "name": name, "value": value, "time": time.time()},
                default=str,
                ensure_ascii=False,
            )
            with self._lock, open(self._metrics_file, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def log(self, name: str, value, description: str = "", step=None) -> None:
        self._record("scalar", name, value, description)

    def log_list(self, name: str, value, description: str = "") -> None:
        self._record("list", name, list(value), description)

    def log_row(self, name: str, description: str | None = None, **kwargs) -> None:
        self._record("row", name, dict(kwargs))

    def log_table(self, name: str, value: dict, description: str = "") -> None:
        self._record("table", name, dict(value), description)

    def log_image(self, name: str, path=None, plot=None, description: str = "") -> None:
        self._record("image", name, str(path) if path is not None else "<plot>", description)

    def get_metrics(self, name: str | None = None) -> dict:
        out = {k: (v[0] if len(v) == 1 else list(v)) for k, v in self._metrics.items()}
        return {name: out[name]} if name is not None and name in out else out

    # ---- status and tags (no-ops locally)
    def get_status(self) -> str:
        return "Running"

    def complete(self, *args, **kwargs) -> None:
        pass

    def fail(self, *args, **kwargs) -> None:
        pass

    def cancel(self, *args, **kwargs) -> None:
        pass

    def flush(self, *args, **kwargs) -> None:
        pass

    def wait_for_completion(self, *args, **kwargs) -> dict:
        return {"status": "Running"}

    def tag(self, key: str, value=None) -> None:
        self._tags[key] = value

    def set_tags(self, tags: dict) -> None:
        self._tags.update(tags or {})

    def get_tags(self) -> dict:
        return dict(self._tags)

    def add_properties(self, properties: dict) -> None:
        pass

    def upload_file(self, name: str, path_or_stream) -> None:
        pass

    def upload_folder(self, name: str, path: str) -> None:
        pass

    def get_details(self) -> dict:
        return {
            "runId": self.id,
            "status": "Running",
            "target": self._data.get("compute") or "local",
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


__all__ = ["Run", "TabularInput", "read_metrics"]
