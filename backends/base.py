"""What every backend shares: the compile flow, the bundle next to the artifacts, names, writing.

A backend is a small module of differences: it says which names its target accepts (`check`) and
renders its files (`render`). This module does the rest the same way for all of them:

    <out>/<artifacts of the backend>              e.g. the DAG file, the flow + prefect.yaml, the YAML
    <out>/.mlpipe/<pipeline>.<ir hash>.json       the pipeline's IR, which the step runtime reads
    <out>/.mlpipe/snapshots/<hash>.tar.gz         the source snapshots, content-addressed
    <out>/.mlpipe/runtime/<hash>/mlpipe/...       the step runtime (the `mlpipe` package's sources at
                                                  the compiler's version; Airflow and Prefect only)
    <out>/.mlpipe/manifest.json                   what mlpipe wrote here (so stale files can go)

Everything under .mlpipe/ is content-addressed: a recompile adds new files beside the old ones, and
the files of the last KEEP_VERSIONS compiles stay, so a run in flight (which pins the bundle it
started with, see `--pin-version` in docs/runtime.md) still finds its IR, snapshots and runtime.

Everything is rendered in memory first; only when every pipeline rendered without problems are the
files written, each through a temp file + rename in the same folder (users point -o at live folders).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _encode_str
from pathlib import Path

from ..errors import MlpipeError, Problem
from ..ir import PipelineIR, Schedule, hash_doc
from ..passes.parameters import Parameters
from ..passes.parameters import resolve as resolve_parameters
from ..passes.schedules import Fires, check_recurrence, resolve_recurrence
from ..snapshot import pack

BUNDLE_DIR = ".mlpipe"
# File names made from pipeline names stay well under the usual 255-byte limit, leaving room for
# suffixes (`.deploy.yaml`) and the temp-file name atomic_write uses.
FILE_STEM_MAX = 120
MANIFEST = f"{BUNDLE_DIR}/manifest.json"
RUNTIME_DIR = f"{BUNDLE_DIR}/runtime"
# Compiles whose content-addressed .mlpipe/ files are kept (this one and the previous ones).
KEEP_VERSIONS = 3


@dataclass
class Artifact:
    path: str  # relative to the output folder, POSIX separators
    content: bytes


@dataclass
class CompileContext:
    profile: str
    pipeline_dir: Path
    # snapshot hash -> path of its .tar.gz relative to the output folder
    snapshots: dict[str, str]
    # the pipeline's IR JSON relative to the output folder
    bundle_path: str
    ir_hash: str
    # The step runtime shipped with the artifacts, relative to the output folder ("" if none).
    runtime_dir: str = ""
    snapshot_bytes: dict[str, bytes] = field(default_factory=dict)
    # What the backend could only approximate (a schedule cron cannot express...): shown to the
    # user as `file:line: warning: ...` after compiling.
    warnings: list[Problem] = field(default_factory=list)
    # Writes outside the output folder (KFP: large snapshots into the default datastore), run by
    # compile_pipelines only once every pipeline of the compile rendered: a failed compile writes
    # nothing anywhere.
    deferred_writes: list[Callable[[], None]] = field(default_factory=list)
    # Warnings that name several steps, by what they are about (compiler/images.py).
    grouped: dict = field(default_factory=dict)
    # The pipeline's JSON form (`model_dump(mode="json")`), dumped once per compile for the hash
    # and shared with the bundle and KFP's per-step slices; read-only. Empty: dump it yourself.
    ir_doc: dict = field(default_factory=dict)

    def warn(self, origin, message: str) -> None:
        file = origin.file if origin is not None else "pipeline"
        problem = Problem(file, origin.line if origin is not None else None, message)
        if problem not in self.warnings:  # one DAG per schedule renders the same steps again
            self.warnings.append(problem)


SUPPORTED, APPROXIMATED, UNSUPPORTED = "supported", "approximated", "unsupported"

# What each feature a target may lack means, for the warning that says so.
FEATURES = {
    "exact_recurrence": "a recurrence cron cannot express exactly",
    "datastore_trigger": "a datastore-change trigger (Schedule.create(datastore=...))",
}


class Backend:
    """A target: tables of what differs, plus `render`. The shared pass (compiler/passes) has
    already resolved schedules, placement and images; a backend only formats the result."""

    name = "base"
    profiles = ("local", "kubernetes")
    default_profile = "local"
    # Whether the IR + snapshots are written under .mlpipe/ (KFP may embed them instead).
    uses_bundle = True
    # feature (FEATURES) -> SUPPORTED / APPROXIMATED / UNSUPPORTED on this target; what is not
    # SUPPORTED is reported by `feature()`, the same way on every target.
    features: dict[str, str] = {}

    def feature(self, ctx: CompileContext, name: str, origin, detail: str) -> bool:
        """Whether the target supports `name`; else warn (file:line) what happens instead."""
        status = self.features.get(name, UNSUPPORTED)
        if status == SUPPORTED:
            return True
        what = "is approximated" if status == APPROXIMATED else "is not deployed"
        ctx.warn(origin, f"{FEATURES[name]} {what} on {self.name}: {detail}")
        return False

    def schedule_fires(self, ctx: CompileContext, sched: Schedule) -> Fires | None:
        """The resolved recurrence of `sched` (None for a datastore trigger); where this target's
        cron can only approximate it, the warning says how."""
        trig = sched.datastore_trigger
        if sched.recurrence is None:
            if trig is not None:
                where_ = f"{trig.datastore}/{trig.path_on_datastore or ''}"
                detail = f"schedule {sched.name!r} on {where_}: start runs from storage events"
                self.feature(ctx, "datastore_trigger", sched.origin, detail)
            return None
        fires = resolve_recurrence(sched.recurrence)
        if fires.approximation and not (fires.rrule and self.uses_rrule):
            self.feature(
                ctx,
                "exact_recurrence",
                sched.origin,
                f"schedule {sched.name!r}: {fires.approximation}",
            )
        return fires

    # Whether the target can run an exact RFC 5545 rule (anchored at the start time).
    uses_rrule = False
    # Whether the step runtime's sources travel with the artifacts (.mlpipe/runtime/<hash>/), so
    # workers need no mlpipe installed and run the compiler's version whatever they have.
    ships_runtime = False

    # ------------------------------------------------------------------------------ tables
    # IR parameter type (passes/parameters.py) -> how the target declares it.
    param_types: dict[str, object] = {}
    # Names the target keeps for itself, per kind of name. A pipeline parameter with such a name is
    # an error (runs pass parameters by name); step and pipeline names are renamed by the target's
    # sanitiser instead. Every target adds the run-time input `regenerate_outputs`.
    reserved_names: dict[str, frozenset[str]] = {"parameter": frozenset({"regenerate_outputs"})}
    # Longest name per kind ("step", "pipeline", "parameter"); longer ones are shortened with a hash
    # of the original, which `report_renames` tells the user.
    name_limits: dict[str, int] = {}
    # Longest string parameter value the target carries (None: no limit).
    param_value_max: int | None = None
    # Largest integer magnitude a parameter value keeps exactly (None: any Python int).
    param_int_max: int | None = None

    def target_names(self, pipeline: PipelineIR) -> dict[str, dict[str, str]]:
        """{kind: {the user's name: the target's name}} for the names the tables constrain."""
        return {}

    def problems(self, pipeline: PipelineIR, profile: str) -> list[Problem]:
        """Everything that stops the pipeline on this target: the tables' check, then `check`."""
        return self.check_tables(pipeline) + self.check(pipeline, profile)

    def check_tables(self, pipeline: PipelineIR) -> list[Problem]:
        """Reserved parameter names and parameter values over the target's limits, the same
        way on every target (`file:line: ...` at the parameter, submission or schedule)."""
        out: list[Problem] = []
        reserved = self.reserved_names.get("parameter", frozenset())
        mapped = self.target_names(pipeline).get("parameter", {})
        owners: dict[str, str] = {}
        for p in pipeline.parameters:
            name = mapped.get(p.name, p.name)
            if name in reserved:
                taken = ", ".join(sorted(reserved))
                out.append(
                    Problem(
                        *where(pipeline, p.origin),
                        f"parameter {p.name!r}: {name!r} is a name {self.name} keeps for "
                        f"mlpipe's own run-time inputs ({taken}): rename the parameter",
                    )
                )
            elif name in owners:
                out.append(
                    Problem(
                        *where(pipeline, p.origin),
                        f"parameters {p.name!r} and {owners[name]!r} both become {name!r} on "
                        f"{self.name}: rename one of them",
                    )
                )
            owners.setdefault(name, p.name)
        params = self.parameters(pipeline)
        for p in params.declared:
            out += self._value_problems(pipeline, p.origin, p.name, p.default, "default")
        owners_ = [*pipeline.submissions, *pipeline.schedules]
        values = [*params.submissions, *params.schedules]
        for owner, overrides in zip(owners_, values, strict=True):
            for name, value in overrides.items():
                out += self._value_problems(pipeline, owner.origin, name, value, "value")
        return out

    def _value_problems(self, pipeline, origin, name: str, value, what: str) -> list[Problem]:
        at = where(pipeline, origin)
        limit, big = self.param_value_max, self.param_int_max
        if limit is not None and isinstance(value, str) and len(value) > limit:
            return [
                Problem(
                    *at,
                    f"parameter {name!r}: a {what} of {len(value)} characters is over "
                    f"{self.name}'s limit of {limit} for parameter values; pass long text as a "
                    "file (a Dataset input)",
                )
            ]
        exact = isinstance(value, int) and not isinstance(value, bool)
        if big is not None and exact and abs(value) > big:
            return [
                Problem(
                    *at,
                    f"parameter {name!r}: {self.name} keeps numbers as doubles, so the {what} "
                    f"{value} would reach the script as {int(float(value))}; keep integers "
                    f"within ±{_power_of_two(big)} or make the parameter a string",
                )
            ]
        return []

    def parameters(self, pipeline: PipelineIR) -> Parameters:
        """The resolve pass's parameters of `pipeline` (types, defaults, typed overrides)."""
        return resolve_parameters(pipeline)

    def report_renames(self, pipeline: PipelineIR, ctx: CompileContext) -> None:
        """Warn (file:line) for each name longer than the target's limit, with the shortened
        name the target uses instead."""
        origins = {"step": {s.name: s.origin for s in pipeline.steps}}
        origins["parameter"] = {p.name: p.origin for p in pipeline.parameters}
        for kind, names in self.target_names(pipeline).items():
            limit = self.name_limits.get(kind)
            for original, name in names.items():
                if limit is not None and len(original) > limit:
                    at = origins.get(kind, {}).get(original, pipeline.origin)
                    ctx.warn(
                        at,
                        f"{kind} {original!r} is named {name!r} on {self.name}, whose {kind} "
                        f"names have at most {limit} characters",
                    )

    def check(self, pipeline: PipelineIR, profile: str) -> list[Problem]:
        """Problems that make the pipeline impossible to run on this target, beyond the tables."""
        return []

    def render(self, pipeline: PipelineIR, ctx: CompileContext) -> list[Artifact]:
        raise NotImplementedError

    def render_shared(self, pipelines: list[PipelineIR], profile: str) -> list[Artifact]:
        """Files shared by every pipeline of one compile (e.g. Prefect's prefect.yaml)."""
        return []

    def publish(
        self, pipelines: list[PipelineIR], profile: str, out_dir: Path, result: CompileResult
    ) -> None:
        """After the output folder is written: copy it where the target's jobs read it (Prefect's
        kubernetes profile); nothing by default."""

    def verify_code(self) -> str | None:
        """Python source that `mlpipe verify` runs in the target's interpreter as
        `python -c CODE OUT_DIR`: it loads the artifacts with the orchestrator's own loader and
        prints a JSON list of {"file": ..., "message": ...} problems (empty when all is well)."""
        return None


def _power_of_two(n: int) -> str:
    """2**53 as `2**53`, other numbers as themselves."""
    return f"2**{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)


@dataclass
class CompileResult:
    written: list[str]
    removed: list[str]
    warnings: list[Problem] = field(default_factory=list)


# ------------------------------------------------------------------------------------ compiling


def bundle_json(pipeline: PipelineIR, doc: dict | None = None) -> bytes:
    """The IR bundle's bytes; `doc` is the pipeline's JSON form when already dumped."""
    doc = pipeline.model_dump(mode="json") if doc is None else doc
    try:
        text = pretty_json(doc)
    except _NotPlain:
        text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


class _NotPlain(Exception):
    pass


_INF = float("inf")


def pretty_json(obj) -> str:
    """`json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False)`, byte for byte, for plain
    JSON data (dict with str keys, list, str, int, float, bool, None, exactly those types; anything
    else raises _NotPlain). The stdlib indents with its pure-Python encoder (a generator per
    container); this one appends to one list and is ~2-3x faster on a large bundle."""
    parts: list[str] = []
    _pretty(obj, parts, "\n")
    return "".join(parts)


def _pretty(o, parts: list[str], nl: str) -> None:
    t = type(o)
    if t is str:
        parts.append(_encode_str(o))
    elif t is dict:
        if not o:
            parts.append("{}")
            return
        inner = nl + " "
        sep = "{" + inner
        for key in sorted(o):
            if type(key) is not str:
                raise _NotPlain
            value = o[key]
            if type(value) is str:
                parts.append(sep + _encode_str(key) + ": " + _encode_str(value))
            else:
                parts.append(sep + _encode_str(key) + ": ")
                _pretty(value, parts, inner)
            sep = "," + inner
        parts.append(nl + "}")
    elif t is list:
        if not o:
            parts.append("[]")
            return
        inner = nl + " "
        sep = "[" + inner
        for item in o:
            if type(item) is str:
                parts.append(sep + _encode_str(item))
            else:
                parts.append(sep)
                _pretty(item, parts, inner)
            sep = "," + inner
        parts.append(nl + "]")
    elif o is None:
        parts.append("null")
    elif o is True:
        parts.append("true")
    elif o is False:
        parts.append("false")
    elif t is int:
        parts.append(int.__repr__(o))
    elif t is float:
        if o != o:
            parts.append("NaN")
        elif o == _INF:
            parts.append("Infinity")
        elif o == -_INF:
            parts.append("-Infinity")
        else:
            parts.append(float.__repr__(o))
    else:  # tuples, subclasses, other types: the stdlib's rules
        raise _NotPlain


@functools.cache
def runtime_files() -> tuple[str, dict[str, bytes]]:
    """(content hash, {relative path: bytes}) of the `mlpipe` package as it runs on a worker: every
    module of it (step scripts import `azureml.*` / `mlpipe`, served from there) and its data
    files; not the backends or templates. Read once per process, in a fixed order."""
    package = Path(__file__).resolve().parents[1] / "compiler"
    if not (package / "runtime" / "__main__.py").is_file():  # installed: mlpipe is a real folder
        import mlpipe

        package = Path(mlpipe.__file__).resolve().parent
    files: dict[str, bytes] = {}
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package).as_posix()
        if "__pycache__" in rel or not path.is_file():
            continue
        if path.suffix == ".py" or (rel.startswith("data/") and path.suffix == ".yaml"):
            files[f"mlpipe/{rel}"] = path.read_bytes()
    digest = hashlib.sha256()
    for rel, data in files.items():
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16], files


def compile_pipelines(
    backend: Backend,
    pipelines: list[PipelineIR],
    pipeline_dir: Path,
    out_dir: Path,
    profile: str | None = None,
    source_key: str | None = None,
) -> CompileResult:
    """Render every pipeline of one source file for `backend` and write the files into `out_dir`.

    `source_key` names the source file in the output folder's manifest (several pipeline files
    can share one dags/ folder; each only ever replaces or removes its own files). Nothing is
    written anywhere (the output folder, a datastore) unless every pipeline rendered."""
    profile = profile or backend.default_profile
    _check_all(backend, pipelines, profile)
    packed = _pack_snapshots(pipelines, pipeline_dir)
    artifacts: dict[str, bytes] = {}
    runtime_dir = ""
    if backend.ships_runtime:
        runtime_hash, files = runtime_files()
        runtime_dir = f"{RUNTIME_DIR}/{runtime_hash}"
        for rel, data in files.items():
            artifacts[f"{runtime_dir}/{rel}"] = data
    docs = [p.model_dump(mode="json") for p in pipelines]  # the whole IR as JSON: once each
    ir_hashes = [hash_doc(doc) for doc in docs]
    warnings: list[Problem] = []
    deferred: list[Callable[[], None]] = []
    for p, doc, digest in zip(pipelines, docs, ir_hashes, strict=True):
        ctx = _context(p, digest, profile, pipeline_dir, runtime_dir, packed)
        ctx.ir_doc = doc
        if backend.uses_bundle:
            artifacts[ctx.bundle_path] = bundle_json(p, doc)
            for h, rel in ctx.snapshots.items():
                artifacts[rel] = packed[h]
        _add_artifacts(artifacts, backend.render(p, ctx))
        warnings.extend(ctx.warnings)
        deferred.extend(ctx.deferred_writes)
    for art in backend.render_shared(pipelines, profile):
        artifacts[art.path] = art.content
    for write in deferred:  # every pipeline rendered: now the writes outside out_dir
        write()
    entry = {
        "target": backend.name,
        "profile": profile,
        "pipelines": {p.name: h for p, h in zip(pipelines, ir_hashes, strict=True)},
        "sha256": {
            rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(artifacts.items())
        },
    }
    in_use = functools.partial(_in_use, pipelines, warnings)
    result = write_artifacts(out_dir, artifacts, source_key or "", entry, in_use)
    result.warnings = warnings
    backend.publish(pipelines, profile, out_dir, result)
    return result


def _check_all(backend: Backend, pipelines: list[PipelineIR], profile: str) -> None:
    """The profile, then what no target and what this target cannot compile, for every pipeline."""
    if profile not in backend.profiles:
        raise MlpipeError(
            f"target {backend.name!r} has no profile {profile!r}; choose one of "
            f"{', '.join(backend.profiles)}"
        )
    problems: list[Problem] = []
    for p in pipelines:
        problems.extend(shared_problems(p))
        problems.extend(backend.problems(p, profile))
    if problems:
        raise MlpipeError(problems)


def _pack_snapshots(pipelines: list[PipelineIR], pipeline_dir: Path) -> dict[str, bytes]:
    """Snapshot hash -> .tar.gz bytes of every step's source folder, as captured."""
    packed: dict[str, bytes] = {}
    for p in pipelines:
        for step in p.steps:
            if step.snapshot.hash in packed:
                continue
            src = Path(step.source_directory)
            src = src if src.is_absolute() else pipeline_dir / src
            info, data = pack(src)
            if info.hash != step.snapshot.hash:
                raise MlpipeError(
                    Problem(
                        p.source_file,
                        step.origin.line if step.origin else None,
                        f"the source directory of step {step.name!r} changed while "
                        "compiling; compile again",
                    )
                )
            packed[step.snapshot.hash] = data
    return packed


def _context(
    p: PipelineIR,
    ir_hash: str,
    profile: str,
    pipeline_dir: Path,
    runtime_dir: str,
    packed: dict[str, bytes],
) -> CompileContext:
    snaps = {s.snapshot.hash: f"{BUNDLE_DIR}/snapshots/{s.snapshot.hash}.tar.gz" for s in p.steps}
    return CompileContext(
        profile=profile,
        pipeline_dir=pipeline_dir,
        snapshots=snaps,
        # Content-addressed: a recompile writes a new bundle beside the one runs in flight use.
        bundle_path=f"{BUNDLE_DIR}/{file_stem(p.name)}.{ir_hash[:16]}.json",
        ir_hash=ir_hash,
        runtime_dir=runtime_dir,
        snapshot_bytes={h: packed[h] for h in snaps},
    )


def _add_artifacts(artifacts: dict[str, bytes], rendered: list[Artifact]) -> None:
    for art in rendered:
        if art.path in artifacts and artifacts[art.path] != art.content:
            raise MlpipeError(f"two pipelines would write {art.path}: give them different names")
        artifacts[art.path] = art.content


def shared_problems(pipeline: PipelineIR) -> list[Problem]:
    """What no target can compile (the resolve pass's checks; capture ran them already, but an
    IR may come from a JSON file)."""
    out = [
        Problem(*where(pipeline, origin), message)
        for origin, message in resolve_parameters(pipeline).problems
    ]
    for sched in pipeline.schedules:
        if sched.recurrence is not None:
            for message in check_recurrence(sched.recurrence):
                out.append(
                    Problem(*where(pipeline, sched.origin), f"schedule {sched.name!r}: {message}")
                )
    return out


# -------------------------------------------------------------------------------------- writing


def atomic_write(path: Path, content: bytes) -> None:
    """Write via a temp file in the same folder + rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = (
        path.parent
        / f".mlpipe-tmp-{os.getpid()}-{hashlib.sha256(path.name.encode()).hexdigest()[:12]}"
    )
    try:
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write atomically unless the file already holds exactly `content` (its mtime then stays, so
    schedulers watching the folder see no change)."""
    if path.is_file() and path.read_bytes() == content:
        return False
    atomic_write(path, content)
    return True


def read_manifest(out_dir: Path) -> dict:
    """What mlpipe wrote into `out_dir`, per source file: {"sources": {key: {...}}}."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"sources": {}}
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        return {"sources": {}}
    return data


def write_artifacts(
    out_dir: Path,
    artifacts: dict[str, bytes],
    source_key: str = "",
    entry: dict | None = None,
    in_use: Callable[[Path, list[str]], set[str]] | None = None,
) -> CompileResult:
    """Write `artifacts` for one source file; drop files this source had written before and no
    longer produces (unless another source still lists them, or `in_use` says a run in flight
    needs them). Files mlpipe did not write are never touched."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out_dir)
    sources: dict = manifest["sources"]
    previous = list(sources.get(source_key, {}).get("files", []))
    others = {f for key, e in sources.items() if key != source_key for f in e.get("files", [])}
    clashes = [
        rel
        for rel in artifacts
        if rel in others
        and (out_dir / rel).is_file()
        and (out_dir / rel).read_bytes() != artifacts[rel]
    ]
    if clashes:
        raise MlpipeError(
            f"{out_dir / clashes[0]} was written by mlpipe for another pipeline file; "
            "give this pipeline a different name or compile it into another folder"
        )
    written = []
    for rel in sorted(artifacts):
        write_if_changed(out_dir / rel, artifacts[rel])
        written.append(rel)
    kept = _kept_versions(sources.get(source_key, {}), previous, artifacts)
    keep = {rel for files in kept for rel in files}
    removed = []
    root = out_dir.resolve()
    earlier = [rel for files in sources.get(source_key, {}).get("kept", []) for rel in files]
    earlier += sources.get(source_key, {}).get("in_use", [])
    candidates = [
        rel
        for rel in dict.fromkeys([*previous, *earlier])
        if rel not in artifacts and rel not in others and rel not in keep and rel != MANIFEST
    ]
    used = in_use(out_dir, candidates) if in_use is not None and candidates else set()
    for rel in candidates:
        stale = out_dir / rel
        if rel in used:
            continue
        if stale.is_file() and root in stale.resolve().parents:
            stale.unlink()
            removed.append(rel)
    _remove_empty_dirs(out_dir / RUNTIME_DIR)
    sources[source_key] = {**(entry or {}), "files": sorted(artifacts)}
    if kept:
        sources[source_key]["kept"] = kept
    if used:  # looked at again by the next compile
        sources[source_key]["in_use"] = sorted(rel for rel in used if (out_dir / rel).is_file())
    manifest = {"generator": "mlpipe", "sources": dict(sorted(sources.items()))}
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    write_if_changed(out_dir / MANIFEST, text.encode())
    return CompileResult(written=written, removed=removed)


def _in_use(pipelines: list[PipelineIR], warnings: list, out_dir: Path, candidates) -> set[str]:
    """Of the files a recompile would remove (older than the last KEEP_VERSIONS compiles), those
    of a version that a run in flight pinned: its bundle, that bundle's snapshots, its runtime.

    The runtime records each run's version under `<default datastore>/.mlpipe/pins/` (the task
    that writes the run's version.json). A run is in flight unless it has a final run record, or
    nothing of it happened for PIN_DAYS days (Airflow and Prefect runs write no run record: an
    idle run's next task after that long may find its version gone, and says so)."""
    from mlpipe.runtime.state import Datastores, State, pin_keys

    wanted: dict[str, list[str]] = {}  # pin key -> candidate files of that version
    for rel in candidates:
        parts = rel.split("/")
        if len(parts) == 2 and rel.endswith(".json"):
            wanted.setdefault(pin_keys(parts[1], None)[0], []).append(rel)
        elif rel.startswith(f"{RUNTIME_DIR}/") and len(parts) > 3:
            wanted.setdefault(pin_keys(None, parts[2])[0], []).append(rel)
    if not wanted:
        return set()
    used: set[str] = set()
    for root in dict.fromkeys(State(Datastores(_store_doc(p))).root for p in pipelines):
        try:
            live = _pinned_in_flight(root, wanted)
        except Exception as exc:  # an unreachable store: the bound of KEEP_VERSIONS applies
            warnings.append(
                Problem(
                    pipelines[0].source_file,
                    None,
                    f"could not read which runs are in flight under {root} ({exc}); files of "
                    f"compiles older than the last {KEEP_VERSIONS} were removed",
                )
            )
            continue
        for key in live:
            used.update(wanted[key])
    for rel in list(used):  # a kept bundle keeps its steps' snapshots
        if rel.count("/") == 1:
            used.update(_bundle_snapshots(out_dir / rel))
    return used & set(candidates)


# Days a pinned run with no final record counts as in flight since anything of it last happened.
PIN_DAYS = float(os.environ.get("MLPIPE_PIN_DAYS", "7"))
FINAL_RUN_STATUSES = {"completed", "succeeded", "failed", "canceled", "skipped"}


def _pinned_in_flight(root: str, wanted: dict[str, list[str]]) -> set[str]:
    from mlpipe.runs import read_run
    from mlpipe.runtime import store
    from mlpipe.runtime.state import safe_name

    pins = store.join(root, "pins")
    present = set(store.list_names(pins))
    live = set()
    for key in wanted:
        if safe_name(key) not in present:
            continue
        folder = store.join(pins, safe_name(key))
        for name in store.list_names(folder):
            pin = store.read_json(store.join(folder, name)) or {}
            run = read_run(root, name[: -len(".json")])
            record = (run.run_record or {}) if run is not None else {}
            if record.get("status") in FINAL_RUN_STATUSES:
                continue
            times = [pin.get("at") or 0]
            if run is not None:
                times += [run.started or 0, run.finished or 0]
                times += [r.get("finished") or r.get("started") or 0 for r in run.steps.values()]
            if time.time() - max(t for t in times if isinstance(t, int | float)) < PIN_DAYS * 86400:
                live.add(key)
                break
    return live


def _store_doc(pipeline: PipelineIR) -> dict:
    return {
        "default_datastore": pipeline.default_datastore,
        "datastores": [d.model_dump(mode="json") for d in pipeline.datastores],
    }


def _bundle_snapshots(bundle: Path) -> set[str]:
    try:
        doc = json.loads(bundle.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    hashes = {(s.get("snapshot") or {}).get("hash") for s in doc.get("steps") or []}
    return {f"{BUNDLE_DIR}/snapshots/{h}.tar.gz" for h in hashes if h}


def _kept_versions(entry: dict, previous: list[str], artifacts: dict) -> list[list[str]]:
    """The content-addressed files (under .mlpipe/) of the previous compiles that stay, newest
    first: at most KEEP_VERSIONS - 1 earlier versions. A recompile that changed nothing adds none."""
    kept = [list(files) for files in entry.get("kept", []) if isinstance(files, list)]
    older = sorted(
        rel for rel in previous if rel.startswith(f"{BUNDLE_DIR}/") and rel not in artifacts
    )
    if older:
        kept.insert(0, older)
    return kept[: KEEP_VERSIONS - 1]


def _remove_empty_dirs(folder: Path) -> None:
    """Drop the folders a removed runtime version left empty (deepest first)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


# ---------------------------------------------------------------------------------------- names


def where(pipeline: PipelineIR, origin) -> tuple[str, int | None]:
    """(file, line) for a Problem about an object: its own origin (a notebook cell keeps its
    `nb.ipynb:cell N`), else the pipeline file."""
    if origin is None:
        return pipeline.source_file, None
    return origin.file, origin.line


def unique_names(
    items: list[tuple[str, object]], sanitize, what: str, pipeline: PipelineIR
) -> dict[str, str]:
    """Map each original name (with the Origin that created it) to its sanitised form; a
    collision is an error at the second one, naming both."""
    out: dict[str, str] = {}
    owner: dict[str, str] = {}
    problems = []
    for original, origin in items:
        clean = sanitize(original)
        if clean in owner and owner[clean] != original:
            problems.append(
                Problem(
                    *where(pipeline, origin),
                    f"{what} {original!r} and {owner[clean]!r} both become {clean!r} on "
                    "this target: rename one of them",
                )
            )
            continue
        owner[clean] = original
        out[original] = clean
    if problems:
        raise MlpipeError(problems)
    return out


def file_stem(name: str) -> str:
    """A file name (without extension) for a pipeline: safe characters, and bounded length with a
    short hash of the original when it had to be shortened."""
    # Not starting with "." (a hidden file, which scanners and `ls` skip) nor "-" (an option).
    return (
        identifier(name, max_len=FILE_STEM_MAX, allowed=r"A-Za-z0-9_.\-").lstrip(".-") or "pipeline"
    )


def identifier(
    name: str, max_len: int = 200, allowed: str = r"A-Za-z0-9_", lower: bool = False
) -> str:
    """A deterministic identifier made of `allowed` characters (others become `_`)."""
    text = name.lower() if lower else name
    text = re.sub(f"[^{allowed}]+", "_", text).strip("_") or "step"
    if text[0].isdigit():
        text = f"s_{text}"
    if len(text) > max_len:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        text = f"{text[: max_len - 9]}_{digest}"
    return text
