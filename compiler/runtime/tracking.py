"""MLflow for step runs: mirror run history to a tracking server, or catch scripts' own MLflow calls.

With `MLFLOW_TRACKING_URI` (http/https) set where steps run, every pipeline run is an MLflow run
(found or created once per run: its id is kept write-once in `runs/<run-id>/mlflow.json`) and each
step a nested run (`mlflow.parentRunId`). The script gets `MLFLOW_RUN_ID`, so `mlflow.log_*`
lands in its step's run; what it logged with `Run.log` / `run.parent.log` / tags is sent when the
step ends. Without a tracking URI the script gets a file store in its working folder, read back
afterwards, so metrics it logged through MLflow directly still reach the step record.

MLflow's REST API over urllib: the runtime stays standard library (the MLflow client would move
the orchestrators' pins, see docs/runtime.md).
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from . import history, store

URI_ENV = "MLFLOW_TRACKING_URI"
RUN_FILE = "mlflow.json"
TIMEOUT = 30
# MLflow's log-batch limits per request.
MAX_METRICS, MAX_TAGS = 1000, 100
STATUS = {"completed": "FINISHED", "reused": "FINISHED", "failed": "FAILED", "canceled": "KILLED"}


class TrackingError(RuntimeError):
    pass


def tracking_uri() -> str | None:
    """The tracking server to mirror to, or None (unset, or not an http(s) server)."""
    uri = (os.environ.get(URI_ENV) or "").strip()
    return uri if uri.startswith(("http://", "https://")) else None


def _public(uri: str) -> str:
    """The URI without user:password@ (never written to state or records)."""
    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Client:
    """The few MLflow REST calls mlpipe needs. Credentials: MLflow's own environment variables."""

    def __init__(self, uri: str):
        parts = urllib.parse.urlsplit(uri)
        self._auth = None
        if parts.username:
            pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode()
        self.base = _public(uri).rstrip("/") + "/api/2.0/mlflow/"
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user, password = (
            os.environ.get("MLFLOW_TRACKING_USERNAME"),
            os.environ.get("MLFLOW_TRACKING_PASSWORD"),
        )
        if token:
            self._auth = f"Bearer {token}"
        elif user:
            self._auth = "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()

    def call(self, endpoint: str, body: dict | None = None, method: str = "POST") -> dict:
        url = self.base + endpoint
        data = None
        if method == "GET" and body:
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._auth:
            headers["Authorization"] = self._auth
        for attempt in range(3):
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                    return json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:500].decode("utf-8", "replace")
                if exc.code < 500 or attempt == 2:
                    raise TrackingError(f"MLflow {endpoint}: HTTP {exc.code}: {detail}") from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt == 2:
                    raise TrackingError(f"MLflow {endpoint}: {exc}") from None
            time.sleep(0.5 * (attempt + 1))
        raise TrackingError(f"MLflow {endpoint}: no answer")  # pragma: no cover

    def experiment_id(self, name: str) -> str:
        for _ in range(2):
            try:
                got = self.call("experiments/get-by-name", {"experiment_name": name}, "GET")
                return got["experiment"]["experiment_id"]
            except TrackingError as exc:
                if "RESOURCE_DOES_NOT_EXIST" not in str(exc):
                    raise
            try:
                return self.call("experiments/create", {"name": name})["experiment_id"]
            except TrackingError as exc:  # another step created it meanwhile
                if "RESOURCE_ALREADY_EXISTS" not in str(exc):
                    raise
        raise TrackingError(f"MLflow experiment {name!r} could not be created")

    def create_run(self, experiment_id: str, name: str, tags: dict) -> str:
        body = {
            "experiment_id": experiment_id,
            "run_name": name,
            "start_time": int(time.time() * 1000),
            "tags": [{"key": k, "value": str(v)} for k, v in tags.items()],
        }
        return self.call("runs/create", body)["run"]["info"]["run_id"]

    def log_batch(self, run_id: str, metrics: list[dict], tags: dict) -> None:
        tag_items = [{"key": k, "value": str(v)[:5000]} for k, v in tags.items()]
        while metrics or tag_items:
            body = {
                "run_id": run_id,
                "metrics": metrics[:MAX_METRICS],
                "tags": tag_items[:MAX_TAGS],
            }
            self.call("runs/log-batch", body)
            metrics, tag_items = metrics[MAX_METRICS:], tag_items[MAX_TAGS:]

    def set_status(self, run_id: str, status: str) -> None:
        body = {"run_id": run_id, "status": status}
        if status != "RUNNING":
            body["end_time"] = int(time.time() * 1000)
        self.call("runs/update", body)

    def metrics(self, run_id: str) -> dict:
        run = self.call("runs/get", {"run_id": run_id}, "GET")["run"]
        return {m["key"]: m["value"] for m in run.get("data", {}).get("metrics") or []}


# ---------------------------------------------------------------------- mlpipe -> MLflow values


def _number(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def to_mlflow(items: list[dict]) -> tuple[list[dict], dict]:
    """mlpipe metric items ({kind, name, value, time}) as MLflow metrics and tags.

    Numbers are metrics (a name logged n times is its history, steps 0..n-1); lists become a
    history; rows and tables become one metric per column (`name.column`); anything else that is
    not a number (text, images) becomes a tag.
    """
    metrics: list[dict] = []
    tags: dict = {}
    steps: dict[str, int] = {}

    def add(key: str, value, when: float) -> None:
        number = _number(value)
        if number is None:
            tags[key] = value if isinstance(value, str) else json.dumps(value, default=str)
            return
        step = steps.get(key, 0)
        steps[key] = step + 1
        metrics.append({"key": key, "value": number, "timestamp": int(when * 1000), "step": step})

    for item in items:
        kind, name, value = item.get("kind"), item["name"], item.get("value")
        when = item.get("time") or time.time()
        if kind == "list" and isinstance(value, list):
            for v in value:
                add(name, v, when)
        elif kind in ("row", "table") and isinstance(value, dict):
            for col, v in value.items():
                for x in v if isinstance(v, list) else [v]:
                    add(f"{name}.{col}", x, when)
        else:
            add(name, value, when)
    return metrics, tags


def read_items(path: str) -> list[dict]:
    items = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    items.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        pass
    return items


# ------------------------------------------------------------------------------- the mirror


class Mirror:
    """One step's MLflow side: the pipeline run (shared), the step's nested run."""

    def __init__(self, uri: str, state_root: str, run_id: str, step: str, experiment: str):
        self.client = Client(uri)
        self.uri = uri
        self.root = state_root
        self.run_id = run_id
        self.step = step
        self.experiment = experiment
        self.parent: dict | None = None
        self.nested: str | None = None

    def pipeline_run(self) -> dict:
        """The pipeline run's MLflow run, created by whichever step gets there first."""
        key = store.join(history.run_dir(self.root, self.run_id), RUN_FILE)
        doc = store.read_json(key)
        if doc and doc.get("run_id"):
            self.parent = doc
            return doc
        exp = self.client.experiment_id(self.experiment)
        tags = {"mlpipe.run_id": self.run_id, "mlpipe.kind": "pipeline"}
        rid = self.client.create_run(exp, self.run_id, tags)
        doc = {"experiment_id": exp, "run_id": rid, "tracking_uri": _public(self.uri)}
        data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
        if not store.write_once(key, data):  # another step created one first: use that one
            self.client.call("runs/delete", {"run_id": rid})
            doc = store.read_json(key) or doc
        self.parent = doc
        return doc

    def start_step(self, tags: dict | None = None) -> dict:
        """Create the step's nested run; returns the environment for the script's MLflow."""
        parent = self.pipeline_run()
        self.client.set_status(parent["run_id"], "RUNNING")
        run_tags = {
            "mlflow.parentRunId": parent["run_id"],
            "mlpipe.run_id": self.run_id,
            "mlpipe.step": self.step,
            **(tags or {}),
        }
        self.nested = self.client.create_run(parent["experiment_id"], self.step, run_tags)
        return {
            URI_ENV: self.uri,
            "MLFLOW_RUN_ID": self.nested,
            "MLFLOW_EXPERIMENT_ID": parent["experiment_id"],
        }

    def finish_step(self, status: str, items: list[dict], tags: dict, parent_doc: dict | None):
        """Send what the step logged through mlpipe; returns the step run's MLflow metrics."""
        metrics, metric_tags = to_mlflow(items)
        self.client.log_batch(self.nested, metrics, {**metric_tags, **tags})
        if parent_doc:
            p_metrics, p_tags = to_mlflow(parent_doc.get("metrics") or [])
            set_tags = {k: v[0] for k, v in (parent_doc.get("tags") or {}).items()}
            self.client.log_batch(self.parent["run_id"], p_metrics, {**p_tags, **set_tags})
        found = self.client.metrics(self.nested)
        self.client.set_status(self.nested, STATUS.get(status, "FINISHED"))
        return found

    def update_pipeline_status(self) -> None:
        """The pipeline run's status from mlpipe's records (recomputed whenever a step ends)."""
        if self.parent is None:
            doc = store.read_json(store.join(history.run_dir(self.root, self.run_id), RUN_FILE))
            if not doc:
                return
            self.parent = doc
        status = history.run_status(self.root, self.run_id)
        mlflow_status = {"running": "RUNNING", "completed": "FINISHED"}.get(status) or STATUS[
            status
        ]
        self.client.set_status(self.parent["run_id"], mlflow_status)

    def info(self) -> dict:
        return {
            "experiment_id": (self.parent or {}).get("experiment_id"),
            "parent_run_id": (self.parent or {}).get("run_id"),
            "run_id": self.nested,
        }


# ------------------------------------------------------------------- no tracking server set


def local_store_env(workdir: str) -> dict:
    """A file store in the step's working folder for scripts that use MLflow on their own."""
    return {
        URI_ENV: "file://" + os.path.join(workdir, "mlruns"),
        # MLflow >= 3.x refuses file stores unless asked; older versions ignore this.
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }


def local_store_metrics(workdir: str) -> dict:
    """{name: value or [values in step order]} of every run in the step's file store."""
    root = os.path.join(workdir, "mlruns")
    collected: dict[str, list] = {}
    if not os.path.isdir(root):
        return {}
    for exp in sorted(os.listdir(root)):
        exp_dir = os.path.join(root, exp)
        if not os.path.isdir(exp_dir):
            continue
        for run in sorted(os.listdir(exp_dir)):
            mdir = os.path.join(exp_dir, run, "metrics")
            if not os.path.isdir(mdir):
                continue
            for dirpath, _, files in os.walk(mdir):
                for f in sorted(files):
                    name = os.path.relpath(os.path.join(dirpath, f), mdir).replace(os.sep, "/")
                    rows = []
                    with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                        for line in fh:
                            parts = line.split()
                            if len(parts) >= 2:
                                step = int(parts[2]) if len(parts) > 2 else 0
                                rows.append((step, int(parts[0]), float(parts[1])))
                    collected.setdefault(name, []).extend(v for _, _, v in sorted(rows))
    return {k: (v[0] if len(v) == 1 else v) for k, v in collected.items()}
