"""Run one step of a pipeline IR: fingerprint, reuse or execute, publish, record.

This is what every target runs for a step (the local runner in-process, Airflow / Prefect / KFP through
`python -m mlpipe.runtime run-step`). The IR is a plain dict (`PipelineIR.model_dump(mode="json")`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import envs, history, store, tracking, why
from .context import ENV_VAR as RUN_CONTEXT_ENV
from .context import read_meta, read_metrics
from .fingerprint import (
    FINGERPRINT_VERSION,
    StatCache,
    combine,
    default_cache_dir,
    file_entries,
    local_tree_fingerprint,
    sha256_json,
)
from .irquery import step_parameter_names
from .params import ParameterError, resolve_parameters
from .state import Datastores, State, StepError, safe_name

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch.py")
STDERR_TAIL_LINES = 40
DEFAULT_DESTINATION = "dataset/{run-id}/{output-name}"
OK_STATUSES = ("completed", "reused")

OnOutput = Callable[[str, str], None]


_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()


def terminate_all() -> None:
    """Stop every step process this interpreter started (their process groups): for Ctrl-C."""
    with _RUNNING_LOCK:
        procs = list(_RUNNING)
    for proc in procs:
        _kill_group(proc)


class StepInvocationError(ValueError):
    """The step cannot be run as asked (unknown step, malformed IR); the CLI exits 2."""


@dataclass
class RunContext:
    run_id: str
    params: dict = field(default_factory=dict)
    regenerate_outputs: bool = False
    # Dir or fsspec URL holding <snapshot-hash>.tar.gz; None: <default datastore>/.mlpipe/snapshots.
    snapshot_store: str | None = None
    experiment: str | None = None
    cache_dir: str | None = None
    use_current_python: bool = False
    # Which runner runs the step (local, airflow, prefect, kfp); None: $MLPIPE_RUNNER.
    runner: str | None = None
    # Variables over the worker's environment for the step's process (the local runner's own
    # HOME / TMPDIR per step when it runs steps as on separate machines).
    env: dict = field(default_factory=dict)

    def resolved_cache_dir(self) -> str:
        return os.path.abspath(os.path.expanduser(self.cache_dir or default_cache_dir()))


@dataclass
class StepResult:
    step: str
    status: str  # completed | reused | failed | canceled
    fingerprint: str | None = None
    exit_code: int = 0
    outputs: dict = field(default_factory=dict)
    reused_from: str | None = None
    stderr_tail: str = ""
    duration: float = 0.0
    error: str | None = None
    metrics: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Not a failure: completed, reused, or canceled (the run was canceled before it started)."""
        return self.status in OK_STATUSES or self.status == "canceled"


@dataclass
class _InputPlan:
    name: str
    mode: str
    path_on_compute: str | None
    files: list[tuple[str, str]] | None  # resolved [(location, relative path)]
    directory: str | None  # a single folder that holds exactly the data (mountable as is)
    content: str  # content fingerprint
    tabular: dict | None  # {"separator", "header"} when read as a table
    identity: dict  # what the fingerprint records besides the content
    entries: list[tuple[str, str]] | None = None  # [(relative path, digest)] behind `content`


def _find_step(ir: dict, name: str) -> dict:
    for s in ir.get("steps") or []:
        if s.get("name") == name:
            return s
    names = ", ".join(s.get("name", "?") for s in ir.get("steps") or [])
    raise StepInvocationError(
        f"no step named {name!r} in pipeline {ir.get('name')!r} (steps: {names})"
    )


def _find_env(ir: dict, key: str | None) -> dict | None:
    if not key:
        return None
    for e in ir.get("environments") or []:
        if e.get("key") == key:
            return e
    raise StepInvocationError(f"step refers to unknown environment {key!r}")


class _Step:
    def __init__(self, ir: dict, step_name: str, ctx: RunContext, on_output: OnOutput | None):
        self.ir = ir
        self.step = _find_step(ir, step_name)
        self.name = step_name
        self.ctx = ctx
        self.on_output = on_output
        self.values = resolve_parameters(ir, ctx.params)
        self.env = _find_env(ir, self.step.get("environment"))
        self.datastores = Datastores(ir)
        self.state = State(self.datastores)
        self.cache_dir = ctx.resolved_cache_dir()
        self.stat_cache = StatCache(self.cache_dir)
        self.run_safe = safe_name(ctx.run_id)
        # v1 gives every step its own run; its id is what the script sees as `run.id` and what
        # `{run-id}` in an output destination means, so two steps' same-named outputs never meet.
        self.step_run_id = f"{self.run_safe}_{safe_name(step_name)}"
        self.runner = ctx.runner or os.environ.get("MLPIPE_RUNNER") or None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._out_lock = threading.Lock()
        # Store retries in this thread are reported as this step's lines.
        store.reporter.set(self.say)

    # ------------------------------------------------------------------------------ messages
    def say(self, message: str) -> None:
        line = f"mlpipe: {message}"
        if self.on_output is not None:
            self.on_output("stderr", line)

    # --------------------------------------------------------------------------------- data
    def _data_location(self, ref: dict) -> str:
        if ref.get("kind") == "url" or "url" in ref:
            url = ref["url"]
            return store.local_path(url) if store.is_local(url) else url
        return self.datastores.location(ref["datastore"], ref.get("path", ""))

    def _upstream_output(self, src: dict) -> dict:
        up, out = src["step"], src["output"]
        rec = store.read_json(self.state.step_record(self.ctx.run_id, up))
        if rec is None:
            raise StepError(
                f"input from step {up!r}: no record of {up!r} in run {self.ctx.run_id!r} "
                f"({self.state.step_record(self.ctx.run_id, up)}); {up!r} must complete in the same "
                f"run before {self.name!r}"
            )
        if rec.get("status") not in OK_STATUSES:
            raise StepError(
                f"input from step {up!r}: {up!r} is {rec.get('status')!r} in run {self.ctx.run_id!r}"
            )
        outputs = rec.get("outputs") or {}
        if out not in outputs:
            raise StepError(f"step {up!r} has no output {out!r} (it has: {', '.join(outputs)})")
        return outputs[out]

    def output_location(self, rec: dict) -> str:
        if rec.get("datastore") and rec.get("path") is not None:
            try:
                return self.datastores.location(rec["datastore"], rec["path"])
            except StepError:
                pass
        return rec["url"]

    def _plan_paths(self, inp: dict, refs: list[dict], dataset: dict | None) -> _InputPlan:
        locations = [self._data_location(r) for r in refs]
        try:
            files = store.common_files(locations)
        except FileNotFoundError as exc:
            raise StepError(f"input {inp['name']!r}: {exc}") from None
        directory = None
        if len(locations) == 1 and not store.GLOB_CHARS.search(locations[0]):
            if store.isdir(locations[0]):
                directory = locations[0]
        tabular = None
        if dataset is not None and dataset.get("type") == "tabular":
            tabular = {
                "separator": dataset.get("separator", ","),
                "header": dataset.get("header", True),
            }
            if dataset.get("format", "delimited") != "delimited":  # fingerprints stay as they were
                tabular["format"] = dataset["format"]
        entries = file_entries(files, self.stat_cache)
        content = combine(entries)
        return _InputPlan(
            inp["name"],
            inp.get("mode", "mount"),
            inp.get("path_on_compute"),
            files,
            directory,
            content,
            tabular,
            {"tabular": tabular, "type": dataset.get("type") if dataset else None},
            entries,
        )

    def plan_input(self, inp: dict) -> _InputPlan:
        src = inp["source"]
        kind = src.get("kind")
        if kind == "step_output":
            rec = self._upstream_output(src)
            location = self.output_location(rec)
            tabular = inp.get("tabular")
            if tabular is None and inp.get("mode") == "direct":
                tabular = {"separator": ",", "header": True}
            return _InputPlan(
                inp["name"],
                inp.get("mode", "mount"),
                inp.get("path_on_compute"),
                None,
                location,
                rec.get("fingerprint") or "",
                tabular,
                {"from": "step_output", "tabular": tabular},
            )
        if kind == "dataset":
            ds = src["dataset"]
            return self._plan_paths(inp, ds["paths"], ds)
        if kind == "datapath":
            return self._plan_paths(inp, [src["path"]], None)
        if kind == "parameter":
            value = self.values.get(src["parameter"])
            if isinstance(value, dict) and "paths" in value:
                return self._plan_paths(inp, value["paths"], value)
            if isinstance(value, dict):
                return self._plan_paths(inp, [value], None)
            raise StepError(
                f"input {inp['name']!r}: parameter {src['parameter']!r} is {value!r}, not a data path"
            )
        raise StepInvocationError(f"input {inp['name']!r}: unknown source kind {kind!r}")

    # -------------------------------------------------------------------------- fingerprint
    def fingerprint(self, plans: list[_InputPlan]) -> str:
        return sha256_json(self.fingerprint_parts(plans))

    def fingerprint_parts(self, plans: list[_InputPlan]) -> dict:
        """The document the fingerprint hashes (kept in the step record to explain reruns)."""
        s = self.step
        env = self.env
        if env is not None:
            env_id = env.get("content_hash") or sha256_json(
                {k: v for k, v in env.items() if k not in ("origin", "key")}
            )
        else:
            env_id = None
        compute = s.get("compute")
        doc = {
            "mlpipe_fingerprint": FINGERPRINT_VERSION,
            "name": s["name"],
            "kind": s.get("kind", "python_script"),
            "script": s.get("script"),
            "command": s.get("command"),
            "arguments": s.get("arguments") or [],
            "parameters": {n: self.values.get(n) for n in step_parameter_names(s)},
            "params": s.get("params") or {},
            "env_vars": s.get("env_vars") or {},
            "snapshot": (s.get("snapshot") or {}).get("hash"),
            "environment": env_id,
            "version": s.get("version"),
            "allow_reuse": s.get("allow_reuse", True),
            "compute": compute,
            "node_count": s.get("node_count", 1),
            "inputs": [
                {
                    "name": p.name,
                    "mode": p.mode,
                    "path_on_compute": p.path_on_compute,
                    "content": p.content,
                    **p.identity,
                }
                for p in plans
            ],
            "outputs": [
                {
                    "name": o["name"],
                    "kind": o.get("kind"),
                    "datastore": o.get("datastore"),
                    "destination": o.get("destination"),
                    "mode": o.get("mode", "mount"),
                    "source_globs": o.get("source_globs"),
                    "register_as": o.get("register_as"),
                }
                for o in s.get("outputs") or []
            ],
        }
        return doc

    def cached(self, fingerprint: str) -> dict | None:
        """The cache entry for the fingerprint if all its outputs still exist."""
        entry = store.read_json(self.state.cache_entry(fingerprint))
        if not entry or entry.get("status") != "completed":
            return None
        names = {o["name"] for o in self.step.get("outputs") or []}
        outputs = entry.get("outputs") or {}
        if set(outputs) != names:
            return None
        for rec in outputs.values():
            if not store.output_complete(self.output_location(rec)):
                return None
        return entry

    # ---------------------------------------------------------------------------- records
    def write_record(self, record: dict) -> None:
        base = {
            "run_id": self.ctx.run_id,
            "step": self.name,
            "pipeline": self.ir.get("name"),
            "experiment": self.ctx.experiment,
            "host": socket.gethostname(),
            "runner": self.runner,
            "upstream": _upstream_steps(self.step),
        }
        store.write_json_atomic(
            self.state.step_record(self.ctx.run_id, self.name), {**base, **record}
        )

    # -------------------------------------------------------------------------------- why
    def history_folder(self) -> str:
        return why.history_folder(self.state, self.ir.get("name"), self.name)

    def keep_manifests(self, plans: list[_InputPlan]) -> None:
        """Keep the file listings behind this run's source and input hashes (once per content),
        so a later run can name the files that changed."""
        snap = (self.step.get("snapshot") or {}).get("hash")
        # Best effort: a missing snapshot fails the step later, when it is extracted, with its
        # own message; a listing that could not be kept only makes a later reason less precise.
        try:
            why.save_snapshot_manifest(self.state, snap, self.snapshot_archive())
            for plan in plans:
                if plan.entries is not None:
                    why.save_manifest(self.state, plan.content, plan.entries)
        except Exception:
            pass

    def reason_to_run(self, fp: str, parts: dict, packages) -> tuple[str, str | None]:
        """Why the step runs, and the earlier run it was compared with (the newest completed or
        reused run of the same pipeline and step)."""
        if not self.step.get("allow_reuse", True):
            return "allow_reuse=False", None
        if self.ctx.regenerate_outputs:
            return "regenerate_outputs", None
        pointer = why.newest(self.history_folder())
        if pointer is None:
            return "no earlier run", None
        earlier = pointer.get("run_id")
        rec = store.read_json(self.state.step_record(earlier, self.name)) or {}
        if not rec.get("fingerprint_parts"):
            return f"no comparable earlier run (run {earlier} kept no fingerprint parts)", earlier
        if rec.get("fingerprint") == fp:
            return f"the outputs of run {earlier} are gone", earlier
        upstream = {
            i["name"]: i["source"]["step"]
            for i in self.step.get("inputs") or []
            if i["source"].get("kind") == "step_output"
        }
        changes = why.differences(
            {"parts": rec["fingerprint_parts"], "packages": rec.get("environment_packages")},
            {"parts": parts, "packages": packages},
            lambda digest: why.load_manifest(self.state, digest),
            upstream,
        )
        return why.explain(changes), earlier

    def add_history(self, fp: str, status: str, finished: float) -> None:
        entry = {
            "run_id": self.ctx.run_id,
            "status": status,
            "fingerprint": fp,
            "finished": finished,
        }
        try:
            why.add_pointer(self.history_folder(), entry)
        except Exception as exc:  # only explanations of later runs depend on it
            self.say(f"could not record step {self.name!r} in its history: {exc}")

    # ---------------------------------------------------------------------------- staging
    def _resolve_compute_path(self, path: str, cwd: str) -> str:
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(cwd, path))

    def stage_input(self, plan: _InputPlan, workdir: str, cwd: str) -> tuple[str, object]:
        """Make the input available locally; returns (path for the script, input_datasets entry)."""
        target = (
            self._resolve_compute_path(plan.path_on_compute, cwd)
            if plan.path_on_compute
            else os.path.join(workdir, "inputs", plan.name)
        )
        files = plan.files
        if files is None:  # an upstream output: a folder (remote: exactly its manifest's files)
            try:
                files = store.output_files(plan.directory)
            except FileNotFoundError as exc:
                raise StepError(f"input {plan.name!r}: {exc}") from None
        if plan.mode == "direct" and plan.tabular is not None:
            self._download(files, target)
            local = [
                os.path.join(target, *rel.split("/"))
                for _, rel in sorted(files, key=lambda x: x[1])
            ]
            return target, {
                "kind": "tabular",
                "path": target,
                "files": local,
                "separator": plan.tabular["separator"],
                "header": plan.tabular["header"],
                "format": plan.tabular.get("format", "delimited"),
            }
        all_local = all(store.is_local(loc) for loc, _ in files)
        if plan.mode in ("mount", "direct") and all_local:
            if plan.directory is not None and store.is_local(plan.directory):
                src_dir = store.local_path(plan.directory)
                if not plan.path_on_compute:
                    return src_dir, {"kind": "path", "path": src_dir}
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.lexists(target):
                    _remove(target)
                os.symlink(src_dir, target)
                return target, {"kind": "path", "path": target}
            # A file, several paths or a glob: a folder of links to the data, no copy.
            os.makedirs(target, exist_ok=True)
            for loc, rel in files:
                dst = os.path.join(target, *rel.split("/"))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if os.path.lexists(dst):
                    _remove(dst)
                os.symlink(store.local_path(loc), dst)
            return target, {"kind": "path", "path": target}
        self._download(files, target)
        return target, {"kind": "path", "path": target}

    def _download(self, files: list[tuple[str, str]], target: str) -> None:
        os.makedirs(target, exist_ok=True)
        store.fetch_files([(loc, os.path.join(target, *rel.split("/"))) for loc, rel in files])

    def snapshot_archive(self) -> str:
        """The local path of the step's snapshot .tar.gz (downloaded into the cache when remote)."""
        snap = (self.step.get("snapshot") or {}).get("hash")
        if not snap:
            raise StepInvocationError(f"step {self.name!r} has no snapshot hash in the IR")
        store_url = self.ctx.snapshot_store or self.state.snapshots()
        if store.is_local(store_url):
            archive = os.path.join(store.local_path(store_url), f"{snap}.tar.gz")
        else:
            archive = os.path.join(self.cache_dir, "snapshots", f"{snap}.tar.gz")
            if not os.path.exists(archive):
                data = store.read_bytes(store.join(store_url, f"{snap}.tar.gz"))
                if data is not None:
                    store.write_bytes_atomic(archive, data)
        if not os.path.exists(archive):
            raise StepError(
                f"snapshot {snap[:12]}… of step {self.name!r} is not in {store_url}: the source "
                f"snapshots are written by `mlpipe compile` / `mlpipe run` next to the artifacts"
            )
        return archive

    def extract_snapshot(self, dest: str) -> None:
        archive = self.snapshot_archive()
        os.makedirs(dest, exist_ok=True)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(dest, filter="data")

    # ------------------------------------------------------------------------------ running
    def render_arg(self, arg: dict, inputs: dict, outputs: dict) -> str:
        kind = arg.get("kind")
        if kind == "literal":
            return str(arg["value"])
        if kind == "parameter":
            value = self.values[arg["name"]]
            if isinstance(value, dict):
                if "paths" in value:
                    return ",".join(self._data_location(p) for p in value["paths"])
                return self._data_location(value)
            return str(value)
        if kind == "input":
            if arg["name"] not in inputs:
                raise StepInvocationError(f"argument refers to unknown input {arg['name']!r}")
            return inputs[arg["name"]]
        if kind == "output":
            if arg["name"] not in outputs:
                raise StepInvocationError(f"argument refers to unknown output {arg['name']!r}")
            return outputs[arg["name"]]
        raise StepInvocationError(f"unknown argument kind {kind!r}")

    def build_argv(self, python: str, inputs: dict, outputs: dict) -> list[str]:
        s = self.step
        args = [self.render_arg(a, inputs, outputs) for a in s.get("arguments") or []]
        if s.get("kind") == "command":
            cmd = [self.render_arg(a, inputs, outputs) for a in s.get("command") or []]
            if not cmd:
                raise StepInvocationError(f"command step {self.name!r} has an empty command")
            cmd = cmd + args
            if os.path.basename(cmd[0]) in ("python", "python3") or (
                os.path.basename(cmd[0]).startswith("python3.")
            ):
                opts: list[str] = []
                rest = cmd[1:]
                while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c", "-"):
                    opts.append(rest.pop(0))
                    if opts[-1] in ("-W", "-X") and rest:
                        opts.append(rest.pop(0))
                return [python, *opts, LAUNCHER, *rest]
            return cmd
        if not s.get("script"):
            raise StepInvocationError(f"step {self.name!r} has no script")
        return [python, LAUNCHER, s["script"], *args]

    def build_env(self, python: str, context_file: str) -> dict:
        env = dict(os.environ)
        env.update(self.ctx.env)
        if self.env:
            env.update({k: str(v) for k, v in (self.env.get("env_vars") or {}).items()})
        env.update({k: str(v) for k, v in (self.step.get("env_vars") or {}).items()})
        for key, value in (self.step.get("params") or {}).items():
            if value.get("kind") == "parameter":
                val = self.values[value["name"]]
                rendered = (
                    self._data_location(val)
                    if isinstance(val, dict) and "paths" not in val
                    else str(val)
                )
            else:
                rendered = str(value.get("value"))
            env[f"AML_PARAMETER_{key}"] = rendered
        bindir = os.path.dirname(python)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", os.defpath)
        if python != sys.executable:
            env["VIRTUAL_ENV"] = os.path.dirname(bindir)
        env["PYTHONUNBUFFERED"] = "1"
        env["MLPIPE_PACKAGE_DIR"] = PACKAGE_DIR
        env[RUN_CONTEXT_ENV] = context_file
        env["MLPIPE_RUN_ID"] = self.ctx.run_id
        env["MLPIPE_STEP"] = self.name
        env["AZUREML_RUN_ID"] = self.step_run_id
        return env

    def execute(self, argv: list[str], cwd: str, env: dict, logdir: str) -> int:
        os.makedirs(logdir, exist_ok=True)
        timeout = self.step.get("max_run_duration_seconds")
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with _RUNNING_LOCK:
            _RUNNING.add(proc)

        def pump(pipe, stream: str) -> None:
            with open(os.path.join(logdir, f"{stream}.log"), "wb") as log:
                for raw in iter(pipe.readline, b""):
                    log.write(raw)
                    line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
                    if stream == "stderr":
                        self.stderr_tail.append(line)
                    if self.on_output is not None:
                        try:
                            self.on_output(stream, line)
                        except Exception:  # a broken console must not break the step
                            pass
                pipe.close()

        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True),
        ]
        for t in pumps:
            t.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
            for t in pumps:
                t.join()
            self.stderr_tail.append(f"mlpipe: step exceeded max_run_duration_seconds={timeout}")
            return 124
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(proc)
        for t in pumps:
            t.join()
        return code

    # ------------------------------------------------------------------------------ publish
    def publish_outputs(self, local_dirs: dict[str, str]) -> dict:
        published = {}
        for o in self.step.get("outputs") or []:
            name = o["name"]
            root = local_dirs[name]
            files = [
                (path, os.path.relpath(path, root).replace(os.sep, "/"))
                for path in store._walk_local(root)
                if os.path.isfile(path)
            ]
            if o.get("mode") == "upload" and o.get("source_globs"):
                import fnmatch

                pats = o["source_globs"]
                files = [
                    (p, rel)
                    for p, rel in files
                    if any(
                        fnmatch.fnmatchcase(rel, pat.lstrip("./"))
                        or fnmatch.fnmatchcase(rel, pat.lstrip("./").rstrip("/") + "/*")
                        for pat in pats
                    )
                ]
            # A datastore alone (empty path) means v1's default layout, never the datastore root.
            template = (o.get("destination") or "").strip("/") or DEFAULT_DESTINATION
            destination = template.replace("{run-id}", self.step_run_id)
            destination = destination.replace("{output-name}", name).strip("/")
            location = self.datastores.location(o["datastore"], destination)
            fp = local_tree_fingerprint(files)
            store.publish_tree(files, location)
            published[name] = {
                "url": location,
                "datastore": o["datastore"],
                "path": destination,
                "fingerprint": fp,
                "files": len(files),
                "bytes": sum(os.path.getsize(p) for p, _ in files),
            }
        return published


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def _upstream_steps(step: dict) -> list[str]:
    """The steps this one waits for: those whose outputs it reads, and its run_after steps."""
    names = {
        i["source"]["step"]
        for i in step.get("inputs") or []
        if (i.get("source") or {}).get("kind") == "step_output"
    }
    return sorted(names | set(step.get("run_after") or []))


def _exit_status(code: int) -> int:
    if code < 0:
        return 128 + (-code)
    return code if code > 0 else 1


def compute_fingerprint(ir: dict, step_name: str, ctx: RunContext) -> dict:
    """The step's fingerprint and whether a reusable cache entry exists, without running anything."""
    st = _Step(ir, step_name, ctx, None)
    plans = [st.plan_input(i) for i in st.step.get("inputs") or []]
    fp = st.fingerprint(plans)
    entry = st.cached(fp)
    allow = st.step.get("allow_reuse", True)
    return {
        "step": step_name,
        "fingerprint": fp,
        "cache_entry": entry is not None,
        "reusable": entry is not None and allow and not ctx.regenerate_outputs,
        "cached_run": entry.get("run_id") if entry else None,
        "allow_reuse": allow,
        "regenerate_outputs": ctx.regenerate_outputs,
    }


def run_step(
    ir: dict, step_name: str, ctx: RunContext, on_output: OnOutput | None = None
) -> StepResult:
    """Run (or reuse) one step. Raises ParameterError / StepInvocationError on a bad invocation;
    every other problem gives a failed StepResult with its record written."""
    started = time.time()
    t0 = time.monotonic()
    st = _Step(ir, step_name, ctx, on_output)  # may raise ParameterError / StepInvocationError
    marker = _cancel_marker(st)
    if marker is not None:
        result = _canceled(st, marker, started)
        _track_outcome(st, result)
        return result
    attempt = _Attempt(st, started, t0)
    return attempt.plan() or attempt.reuse() or attempt.run()


class _Attempt:
    """One step's run from its fingerprint to its record: what a failure at any point records."""

    def __init__(self, st: _Step, started: float, t0: float) -> None:
        self.st = st
        self.started = started
        self.t0 = t0
        self.fp: str | None = None
        self.plans: list = []
        self.metrics: dict = {}
        self.run_data: dict = {}  # tags, properties, files of the step run (kept for failures too)
        self.mirror: tracking.Mirror | None = None  # the step's MLflow run, with a tracking server
        self.known: dict = {}  # the why-it-ran fields, in every record once they are known

    def fail(self, message: str, exit_code: int = 1, extra: dict | None = None) -> StepResult:
        st = self.st
        tail = "\n".join(st.stderr_tail)
        if message:
            tail = (tail + "\n" if tail else "") + message
            st.say(f"step {st.name!r} failed: {message}")
        duration = time.monotonic() - self.t0
        try:
            st.write_record(
                {
                    "status": "failed",
                    "fingerprint": self.fp,
                    "exit_code": exit_code,
                    "error": message or None,
                    "stderr_tail": tail,
                    "outputs": {},
                    "metrics": self.metrics,
                    "started": self.started,
                    "finished": time.time(),
                    "duration": duration,
                    **self.run_data,
                    **self.known,
                    **(extra or {}),
                }
            )
        except Exception as exc:  # the record is best effort when the datastore itself fails
            st.say(f"could not write the step record: {exc}")
        _pipeline_status(st, self.mirror)
        return StepResult(
            st.name,
            "failed",
            self.fp,
            exit_code,
            {},
            None,
            tail,
            duration,
            message or None,
            self.metrics,
        )

    def plan(self) -> StepResult | None:
        """Record the step running, plan its inputs and compute its fingerprint (None: done)."""
        st = self.st
        try:
            st.write_record({"status": "running", "started": self.started})
            self.plans = [st.plan_input(i) for i in st.step.get("inputs") or []]
            parts = st.fingerprint_parts(self.plans)
            self.fp = sha256_json(parts)
            self.known["fingerprint_parts"] = parts
            self.known["environment_packages"] = why.environment_packages(st.env)
        except (ParameterError, StepInvocationError):
            raise
        except Exception as exc:
            return self.fail(str(exc) or type(exc).__name__)
        return None

    def reuse(self) -> StepResult | None:
        """The earlier result this step may reuse, recorded as this run's (None: none)."""
        st, fp = self.st, self.fp
        if not st.step.get("allow_reuse", True) or st.ctx.regenerate_outputs:
            return None
        entry = st.cached(fp)
        if entry is None:
            return None
        duration = time.monotonic() - self.t0
        outputs = entry.get("outputs") or {}
        finished = time.time()
        st.write_record(
            {
                "status": "reused",
                "fingerprint": fp,
                "reused_from": entry.get("run_id"),
                "reason": f"reused from run {entry.get('run_id')}",
                "exit_code": 0,
                "outputs": outputs,
                "metrics": entry.get("metrics") or {},
                **_carry_over(st, entry),
                "started": self.started,
                "finished": finished,
                "duration": duration,
                **self.known,
            }
        )
        st.add_history(fp, "reused", finished)
        st.say(f"step {st.name!r} reused from run {entry.get('run_id')} (fingerprint {fp[:12]}…)")
        _track_outcome(st, None, entry)
        return StepResult(
            st.name,
            "reused",
            fp,
            0,
            outputs,
            entry.get("run_id"),
            "",
            duration,
            None,
            entry.get("metrics") or {},
        )

    def run(self) -> StepResult:
        """Run the script in a fresh work folder (removed after, unless MLPIPE_KEEP_WORKDIR=1)."""
        st = self.st
        reason, self.known["compared_with"] = _reason(st, self.fp, self.known, self.plans)
        self.known["reason"] = reason
        st.say(f"step {st.name!r} running ({reason}; fingerprint {self.fp[:12]}…)")
        work_root = os.path.join(st.cache_dir, "work")
        os.makedirs(work_root, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix=f"{safe_name(st.name)[:40]}-", dir=work_root)
        try:
            return self._run_in(workdir)
        finally:
            if os.environ.get("MLPIPE_KEEP_WORKDIR") != "1":
                shutil.rmtree(workdir, ignore_errors=True)

    def _run_in(self, workdir: str) -> StepResult:
        st = self.st
        cwd = os.path.join(workdir, "src")
        try:
            python, argv, env, output_dirs = self.prepare(workdir, cwd)
        except envs.EnvironmentBuildError as exc:
            return self.fail(str(exc))
        except (ParameterError, StepInvocationError):
            raise
        except Exception as exc:
            return self.fail(
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, StepError) else str(exc)
            )
        exit_code = None
        try:
            exit_code = st.execute(argv, cwd, env, os.path.join(workdir, "logs"))
        except OSError as exc:
            return self.fail(f"could not start {argv[0]!r}: {exc}")
        except BaseException:
            self.fail("interrupted", 130)
            raise
        finally:
            self.collect(workdir, cwd, exit_code)
        if exit_code != 0:
            marker = _cancel_marker(st)
            if marker is not None:
                # v1: a step still running when its pipeline run is canceled ends Canceled,
                # whatever its script does next (MLOps templates raise after run.parent.cancel()).
                return _ended_after_cancel(
                    st,
                    marker,
                    self.started,
                    self.t0,
                    exit_code,
                    self.fp,
                    self.metrics,
                    self.run_data,
                )
            code = _exit_status(exit_code)
            return self.fail(f"script exited with status {exit_code}", code, {"argv": argv})
        return self.publish(output_dirs, python)

    def prepare(self, workdir: str, cwd: str) -> tuple[str, list[str], dict, dict[str, str]]:
        """Snapshot, environment, staged inputs, output folders and run context of the script:
        (python, argv, environment, output folders)."""
        st, ctx, ir = self.st, self.st.ctx, self.st.ir
        st.extract_snapshot(cwd)
        python = envs.step_python(st.env, st.cache_dir, ctx.use_current_python, log=st.say)
        input_paths: dict[str, str] = {}
        input_datasets: dict[str, object] = {}
        for plan in self.plans:
            path, spec = st.stage_input(plan, workdir, cwd)
            input_paths[plan.name] = path
            input_datasets[plan.name] = spec
        output_dirs: dict[str, str] = {}
        for o in st.step.get("outputs") or []:
            d = os.path.join(workdir, "outputs", o["name"])
            os.makedirs(d, exist_ok=True)
            output_dirs[o["name"]] = d
        context_file = os.path.join(workdir, "run_context.json")
        run_context = {
            "id": st.step_run_id,
            "run_id": ctx.run_id,
            "step": st.name,
            "experiment": ctx.experiment or ir.get("name"),
            "workspace": ir.get("workspace") or "local",
            "pipeline": ir.get("name"),
            "compute": st.step.get("compute"),
            "input_datasets": input_datasets,
            "output_datasets": output_dirs,
            "metrics_file": os.path.join(workdir, "metrics.jsonl"),
            **_history_context(st, workdir, cwd),
        }
        store.write_json_atomic(context_file, run_context)
        argv = st.build_argv(python, input_paths, output_dirs)
        env = st.build_env(python, context_file)
        self.mirror, mlflow_env = _start_tracking(st, workdir)
        env.update(mlflow_env)
        return python, argv, env, output_dirs

    def collect(self, workdir: str, cwd: str, exit_code: int | None) -> None:
        """What the script left, whatever its end: metrics, logs, run data, the MLflow run."""
        st = self.st
        self.metrics = read_metrics(os.path.join(workdir, "metrics.jsonl"))
        _save_logs(st, os.path.join(workdir, "logs"))
        self.run_data = _keep_run_data(st, workdir, cwd)
        status = "completed" if exit_code == 0 else "failed"
        tracked = _finish_tracking(st, self.mirror, workdir, status, self.run_data)
        self.metrics = {**tracked, **self.metrics}

    def publish(self, output_dirs: dict[str, str], python: str) -> StepResult:
        """Publish the outputs, record the step completed, and only then offer it for reuse."""
        st, fp, ctx = self.st, self.fp, self.st.ctx
        try:
            outputs = st.publish_outputs(output_dirs)
            for o in st.step.get("outputs") or []:
                if o.get("register_as"):
                    rec = outputs[o["name"]]
                    rec["registered"] = _register_output(st, o, rec)
        except Exception as exc:
            return self.fail(f"publishing outputs failed: {type(exc).__name__}: {exc}")
        duration = time.monotonic() - self.t0
        finished = time.time()
        entry = {
            "status": "completed",
            "fingerprint": fp,
            "run_id": ctx.run_id,
            "step": st.name,
            "outputs": outputs,
            "metrics": self.metrics,
            "created": finished,
            "run_data": self.run_data,
            "parent": _own_parent_entries(st),
        }
        st.write_record(
            {
                "status": "completed",
                "fingerprint": fp,
                "reused_from": None,
                "exit_code": 0,
                "outputs": outputs,
                "metrics": self.metrics,
                "started": self.started,
                "finished": finished,
                "duration": duration,
                "python": python,
                **self.run_data,
                **self.known,
            }
        )
        # Only now, with every output published and the record written, may later runs reuse it.
        store.write_json_atomic(st.state.cache_entry(fp), entry)
        _pipeline_status(st, self.mirror)
        st.add_history(fp, "completed", finished)
        st.say(f"step {st.name!r} ran (fingerprint {fp[:12]}…) in {duration:.2f}s")
        tail = "\n".join(st.stderr_tail)
        return StepResult(
            st.name, "completed", fp, 0, outputs, None, tail, duration, None, self.metrics
        )


def _reason(st: _Step, fp: str, known: dict, plans: list) -> tuple[str, str | None]:
    """Why the step runs (never fails the step: an explanation is not worth a failed run)."""
    st.keep_manifests(plans)
    try:
        return st.reason_to_run(fp, known["fingerprint_parts"], known["environment_packages"])
    except Exception as exc:
        return f"no reusable earlier run; the reason is unknown: {type(exc).__name__}: {exc}", None


def _register_output(st: _Step, output: dict, rec: dict) -> dict:
    """register_on_complete: a new version of the dataset per execution (a reused step adds none)."""
    from .registry import DatasetRegistry, WorkspaceInfo

    registry = DatasetRegistry(WorkspaceInfo.from_ir(st.ir), st.cache_dir)
    doc, _ = registry.register(
        output["register_as"],
        {
            "type": "file",
            "paths": [{"kind": "datapath", "datastore": rec["datastore"], "path": rec["path"]}],
        },
        description=output.get("register_description"),
        create_new_version=True,
        dedupe=False,
        fingerprint=rec["fingerprint"],
        source={"run_id": st.ctx.run_id, "step": st.name, "output": output["name"]},
    )
    return {"name": output["register_as"], "version": doc["version"]}


def _save_logs(st: _Step, logdir: str) -> None:
    for stream in ("stdout", "stderr"):
        path = os.path.join(logdir, f"{stream}.log")
        if os.path.exists(path):
            try:
                with open(path, "rb") as fh:
                    store.write_bytes_atomic(
                        st.state.step_log(st.ctx.run_id, st.name, stream), fh.read()
                    )
            except Exception as exc:
                st.say(f"could not save the {stream} log: {exc}")


# ------------------------------------------------------------------------------ run history


def _cancel_marker(st: _Step) -> dict | None:
    try:
        return history.canceled(st.state.root, st.ctx.run_id)
    except Exception as exc:  # an unreachable datastore fails the step later, with its error
        st.say(f"could not check whether the run was canceled: {exc}")
        return None


def _canceled(st: _Step, marker: dict, started: float) -> StepResult:
    """The run was canceled before this step started: record it and run nothing."""
    reason = history.cancel_reason(marker)
    st.write_record(
        {
            "status": "canceled",
            "reason": reason,
            "canceled_by": marker.get("step"),
            "outputs": {},
            "metrics": {},
            "started": started,
            "finished": time.time(),
            "duration": 0.0,
        }
    )
    st.say(f"step {st.name!r} not run: {reason} (run.parent.cancel())")
    return StepResult(st.name, "canceled", error=reason)


def _ended_after_cancel(
    st: _Step,
    marker: dict,
    started: float,
    t0: float,
    exit_code: int,
    fp: str | None,
    metrics: dict,
    run_data: dict,
) -> StepResult:
    """The script ended non-zero after its pipeline run was canceled: canceled, not failed.
    Nothing is published and nothing becomes reusable, as for a failure."""
    reason = history.cancel_reason(marker)
    duration = time.monotonic() - t0
    tail = "\n".join(st.stderr_tail)
    st.write_record(
        {
            "status": "canceled",
            "reason": reason,
            "canceled_by": marker.get("step"),
            "fingerprint": fp,
            "exit_code": exit_code,
            "stderr_tail": tail,
            "outputs": {},
            "metrics": metrics,
            "started": started,
            "finished": time.time(),
            "duration": duration,
            **run_data,
        }
    )
    st.say(
        f"step {st.name!r} canceled: its script exited with status {exit_code} after the run "
        f"was canceled ({reason})"
    )
    # exit_code keeps the script's status (the step is still ok: the runtime exits 0).
    return StepResult(st.name, "canceled", fp, exit_code, {}, None, tail, duration, reason, metrics)


def _history_context(st: _Step, workdir: str, cwd: str) -> dict:
    """What `Run.get_context()` needs for run history (see context.Run)."""
    names = [d["name"] for d in st.ir.get("datastores") or []]
    return {
        "state_root": st.state.root,
        "meta_file": os.path.join(workdir, "run_meta.json"),
        "uploads_dir": os.path.join(workdir, "uploads"),
        "cwd": cwd,
        "datastores": {n: st.datastores.url(n) for n in names},
        "default_datastore": st.datastores.default,
    }


def _keep_run_data(st: _Step, workdir: str, cwd: str) -> dict:
    """The step run's tags and properties, and its files copied into state (best effort)."""
    meta = read_meta(os.path.join(workdir, "run_meta.json"))
    data = {"tags": meta.get("tags") or {}, "properties": meta.get("properties") or {}}
    try:
        files = history.collect_files(cwd, os.path.join(workdir, "uploads"))
        data["files"] = history.keep_files(st.state.root, st.ctx.run_id, st.name, files)
    except Exception as exc:
        st.say(f"could not keep the run's outputs/ and logs/ files: {exc}")
    return data


def _own_parent_entries(st: _Step) -> dict | None:
    """What this step logged on the pipeline run, for the cache entry (a reuse replays it)."""
    return store.read_json(history.parent_file(st.state.root, st.ctx.run_id, st.name))


def _carry_over(st: _Step, entry: dict) -> dict:
    """A reused step brings what it logged on the pipeline run and its tags into this run."""
    parent = entry.get("parent")
    if parent:
        history.write_parent_entries(st.state.root, st.ctx.run_id, st.name, parent)
    data = entry.get("run_data") or {}
    return {k: data[k] for k in ("tags", "properties", "files") if k in data}


# ------------------------------------------------------------------------------------ MLflow


def _experiment(st: _Step) -> str:
    return st.ctx.experiment or st.ir.get("name") or "mlpipe"


def _start_tracking(st: _Step, workdir: str) -> tuple[tracking.Mirror | None, dict]:
    """The step's MLflow run (with a tracking server) or a file store to catch the script's own
    MLflow calls (without one). Mirroring is best effort: it never fails the step."""
    uri = tracking.tracking_uri()
    if uri is None:
        if os.environ.get(tracking.URI_ENV):  # databricks, file:, sqlite: ... used as set
            return None, {}
        return None, tracking.local_store_env(workdir)
    try:
        mirror = tracking.Mirror(uri, st.state.root, st.ctx.run_id, st.name, _experiment(st))
        return mirror, mirror.start_step()
    except Exception as exc:
        st.say(f"MLflow: could not start this step's run: {exc}")
        return None, {}


def _finish_tracking(st, mirror, workdir: str, status: str, run_data: dict) -> dict:
    """End the step's MLflow run; returns the metrics the script logged through MLflow."""
    if mirror is None:
        try:
            return tracking.local_store_metrics(workdir)
        except Exception as exc:
            st.say(f"MLflow: could not read the script's MLflow metrics: {exc}")
            return {}
    try:
        items = tracking.read_items(os.path.join(workdir, "metrics.jsonl"))
        found = mirror.finish_step(
            status, items, run_data.get("tags") or {}, _own_parent_entries(st)
        )
        run_data["mlflow"] = mirror.info()
        return found
    except Exception as exc:
        st.say(f"MLflow: could not finish this step's run: {exc}")
        return {}


def _track_outcome(st: _Step, result: StepResult | None, entry: dict | None = None) -> None:
    """A canceled or reused step in MLflow: a reused one gets a nested run holding its metrics."""
    uri = tracking.tracking_uri()
    if uri is None:
        return
    try:
        mirror = tracking.Mirror(uri, st.state.root, st.ctx.run_id, st.name, _experiment(st))
        if entry is None:
            mirror.update_pipeline_status()
            return
        mirror.start_step({"mlpipe.reused_from": entry.get("run_id") or ""})
        items = [
            {"kind": "list" if isinstance(v, list) else "scalar", "name": k, "value": v}
            for k, v in (entry.get("metrics") or {}).items()
        ]
        tags = (entry.get("run_data") or {}).get("tags") or {}
        mirror.finish_step("reused", items, tags, entry.get("parent"))
        mirror.update_pipeline_status()
    except Exception as exc:
        st.say(f"MLflow: {exc}")


def _pipeline_status(st: _Step, mirror: tracking.Mirror | None) -> None:
    """After the step's record is final: the pipeline's MLflow run status from the records."""
    if mirror is not None:
        try:
            mirror.update_pipeline_status()
        except Exception as exc:
            st.say(f"MLflow: could not update the pipeline run's status: {exc}")
