"""`python -m mlpipe.runtime run-step|fingerprint ...`: the step runtime's command line.

Exit status: 0 when the step completed or was reused; the script's exit status (>= 1) when it failed;
2 for a bad invocation or a bad parameter value (one message, no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import signal
import sys
import time
import uuid

from . import store
from .params import ParameterError
from .state import Datastores, State, pin_keys
from .step import (
    RunContext,
    StepInvocationError,
    compute_fingerprint,
    default_cache_dir,
    run_step,
)
from .store import write_json_atomic


class _UsageError(Exception):
    pass


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlpipe.runtime", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("run-step", "run (or reuse) one step of a pipeline IR"),
        ("fingerprint", "print a step's fingerprint and whether it can be reused; runs nothing"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument(
            "--ir", required=True, help="the pipeline IR (or a bundle holding it) as JSON"
        )
        s.add_argument("--step", required=True)
        s.add_argument("--run-id", required=True)
        s.add_argument("--params-json", default="{}", help="parameter overrides as a JSON object")
        s.add_argument("--regenerate-outputs", type=_bool, default=False, metavar="true|false")
        s.add_argument(
            "--snapshots",
            default=None,
            help="dir or URL holding <hash>.tar.gz (default: <IR dir>/snapshots if it exists, "
            "else <default datastore>/.mlpipe/snapshots)",
        )
        s.add_argument("--experiment", default=None)
        s.add_argument(
            "--cache-dir", default=None, help="default: $MLPIPE_CACHE_DIR or ~/.cache/mlpipe"
        )
        s.add_argument("--result-file", default=None, help="write the step result here as JSON")
        s.add_argument(
            "--pin-version",
            action="store_true",
            help="one pipeline version per run: the run's first task records this IR bundle's "
            "file name; every later task of the run reads the bundle of that name beside --ir",
        )
        s.add_argument(
            "--use-current-python",
            action="store_true",
            # images `mlpipe images` built set MLPIPE_USE_CURRENT_PYTHON=1: their packages are in
            default=os.environ.get("MLPIPE_USE_CURRENT_PYTHON", "").strip().lower()
            in ("1", "true", "yes"),
            help="do not build the step's environment (the image already has its packages); "
            "default from MLPIPE_USE_CURRENT_PYTHON",
        )
    return p


def _load_ir(path: str) -> dict:
    """The IR bundle from a local path or, for pods reading it from the datastore, an fsspec URL."""
    try:
        if store.is_local(path):
            with open(store.local_path(path), encoding="utf-8") as fh:
                doc = json.load(fh)
        else:
            data = store.read_bytes(path)
            if data is None:
                raise _UsageError(f"cannot read --ir {path}: not found")
            doc = json.loads(data.decode("utf-8"))
    except OSError as exc:
        raise _UsageError(f"cannot read --ir {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _UsageError(f"--ir {path} is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and "steps" not in doc and isinstance(doc.get("ir"), dict):
        doc = doc["ir"]
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise _UsageError(f"--ir {path} does not hold a pipeline IR (no 'steps' list)")
    return doc


# A local bundle is cut once into per-step slices (one cache file: an index line, then the slices),
# so each task parses its own step's slice, not the whole IR: Airflow / Prefect tasks all read one
# bundle, 1.9 MB for 1000 steps and 9.4 MB for 5000.
SLICE_VERSION = 1
_RACY_SECONDS = 2.0


def _step_slice(path: str, step: str, cache_dir: str | None) -> dict | None:
    """The bundle's IR with `steps` holding only `step` (what run_step reads: upstream data comes
    from the run's step records, as for KFP's per-step slices), from the cache when cut already.
    None when the cache cannot help (then the caller reads the whole bundle)."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
        if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 < _RACY_SECONDS:
            return None
        stamp = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}"
        key = hashlib.sha256(stamp.encode("utf-8", "surrogateescape")).hexdigest()[:40]
        cache = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
        file = os.path.join(cache, "ir-slices", f"{key}.v{SLICE_VERSION}")
        try:
            with open(file, "rb") as fh:
                index = json.loads(fh.readline())
                start = fh.tell()
                where = index["steps"].get(step)
                if where is None:
                    return None  # run_step reports the unknown step with the whole list
                parts = []
                for off, size in (index["head"], where):
                    fh.seek(start + off)
                    parts.append(fh.read(size).decode("ascii"))
            return json.loads(parts[0] + "[" + parts[1] + "]}")
        except FileNotFoundError:
            pass
        doc = _load_ir(path)
        base = {k: v for k, v in doc.items() if k != "steps"}
        chunks = [json.dumps(dict(base, steps=[]), separators=(",", ":"))[: -len("[]}")]]
        index = {"head": [0, len(chunks[0])], "steps": {}}
        offset = len(chunks[0])
        mine = None
        for s in doc["steps"]:
            text = json.dumps(s, separators=(",", ":"))  # ASCII: offsets are byte offsets
            index["steps"][s["name"]] = [offset, len(text)]
            chunks.append(text)
            offset += len(text)
            if s["name"] == step:
                mine = dict(base, steps=[s])
        try:  # written with a rename: tasks cutting the same bundle at once write equal files
            os.makedirs(os.path.dirname(file), exist_ok=True)
            tmp = f"{file}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write(json.dumps(index, separators=(",", ":")) + "\n")
                fh.write("".join(chunks))
            os.replace(tmp, file)
        except OSError:
            pass
        return mine
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _read_ir(args) -> dict:
    ir = None
    if args.command == "run-step" and store.is_local(args.ir):
        ir = _step_slice(store.local_path(args.ir), args.step, args.cache_dir)
    return ir if ir is not None else _load_ir(args.ir)


def _split(path: str) -> tuple[str, str]:
    folder, _, name = path.replace(os.sep, "/").rpartition("/")
    return folder, name


def _pinned_ir(args, ir: dict) -> dict:
    """The IR of the version the run started with (see --pin-version); switches `args.ir` to it.

    The bundles are content-addressed (`<pipeline>.<IR hash>.json`) and a recompile keeps the last
    few beside the new one, and those runs in flight pinned (`pins/`), so a task parsed from a
    newer DAG / flow file still finds the run's."""
    folder, name = _split(args.ir)
    state = State(Datastores(ir))
    marker = store.join(state.run_dir(args.run_id), "version.json")
    own = _shipped_runtime()
    first = {"bundle": name, **({"runtime": own[1]} if own else {})}
    if store.write_once(marker, json.dumps(first).encode("utf-8")):
        # so that a recompile keeps this version's files while the run goes on
        state.record_pins(args.run_id, pin_keys(name, own[1] if own else None))
        return ir
    recorded = store.read_json(marker) or {}
    _keep_runtime(args, own, recorded.get("runtime"))
    pinned = recorded.get("bundle")
    if not isinstance(pinned, str) or pinned == name or "/" in pinned or pinned.startswith("."):
        return ir
    path = f"{folder}/{pinned}" if folder else pinned
    if not store.exists(path):
        raise _UsageError(
            f"run {args.run_id!r} started with pipeline version {pinned}, which is no longer "
            f"beside {args.ir} (compiled again too often since): start a new run"
        )
    print(f"mlpipe: run {args.run_id!r} uses the version it started with, {pinned}")
    args.ir = path
    return _read_ir(args)


def _shipped_runtime() -> tuple[str, str] | None:
    """(folder holding the runtime versions, this one's hash) when this process runs a runtime
    shipped beside compiled artifacts (`.mlpipe/runtime/<hash>/mlpipe/`); None when installed."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version_dir = os.path.dirname(package)
    versions = os.path.dirname(version_dir)
    if os.path.basename(package) != "mlpipe" or os.path.basename(versions) != "runtime":
        return None
    return versions, os.path.basename(version_dir)


def _keep_runtime(args, own: tuple[str, str] | None, pinned) -> None:
    """One runtime per run: a task started with another shipped runtime than the one the run's
    first task recorded (the DAG / flow file was recompiled by a newer mlpipe meanwhile) runs
    again, in this process, with the recorded runtime first on PYTHONPATH."""
    if own is None or not isinstance(pinned, str) or pinned == own[1]:
        return
    if not re.fullmatch(r"[0-9a-f]{8,64}", pinned) or args.argv is None:
        return
    target = os.path.join(own[0], pinned)
    if not os.path.isfile(os.path.join(target, "mlpipe", "runtime", "__main__.py")):
        raise _UsageError(
            f"run {args.run_id!r} started with mlpipe runtime {pinned}, which is no longer in "
            f"{own[0]} (compiled again too often since): start a new run"
        )
    print(f"mlpipe: run {args.run_id!r} uses the runtime it started with, {pinned}", flush=True)
    sys.stderr.flush()
    mine = os.path.join(own[0], own[1])
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != mine]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([target, *rest]))
    os.execve(sys.executable, [sys.executable, "-m", "mlpipe.runtime", *args.argv], env)


def _context(args) -> tuple[dict, RunContext]:
    ir = _read_ir(args)
    if args.command == "run-step" and args.pin_version:
        ir = _pinned_ir(args, ir)
    try:
        params = json.loads(args.params_json or "{}")
    except ValueError as exc:
        raise _UsageError(f"--params-json is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise _UsageError("--params-json must be a JSON object {name: value}")
    snapshots = args.snapshots
    if snapshots is None and store.is_local(args.ir):
        candidate = os.path.join(
            os.path.dirname(os.path.abspath(store.local_path(args.ir))), "snapshots"
        )
        snapshots = candidate if os.path.isdir(candidate) else None
    ctx = RunContext(
        run_id=args.run_id,
        params=params,
        regenerate_outputs=args.regenerate_outputs,
        snapshot_store=snapshots,
        experiment=args.experiment,
        cache_dir=args.cache_dir,
        use_current_python=args.use_current_python,
    )
    return ir, ctx


def is_status_line(line: str) -> bool:
    """mlpipe's own progress lines (running, ran, reused...): information, printed to stdout, since
    orchestrators log a task's stderr at error level (Airflow 3). Failures and errors of mlpipe, and
    everything the script writes to stderr, stay on stderr."""
    if not line.startswith("mlpipe: ") or line.startswith("mlpipe: error"):
        return False
    return not any(word in line for word in (" failed", "could not", "warning"))


def _print_line(stream: str, line: str) -> None:
    if stream == "stderr" and is_status_line(line):
        stream = "stdout"
    out = sys.stdout if stream == "stdout" else sys.stderr
    try:
        out.write(line + "\n")
        out.flush()
    except UnicodeEncodeError:
        out.buffer.write((line + "\n").encode("utf-8", "replace"))
        out.flush()


def _on_sigterm(signum, frame):
    # Orchestrators stop a task with SIGTERM: unwind so the step's process group is stopped too and
    # its record says failed (never a cache entry).
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The arguments to run again with (see _keep_runtime); only when started as a command.
    args.argv = list(sys.argv[1:]) if argv is None else None
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass
    try:
        ir, ctx = _context(args)
        if args.command == "fingerprint":
            info = compute_fingerprint(ir, args.step, ctx)
            print(json.dumps(info, indent=2))
            return 0
        result = run_step(ir, args.step, ctx, on_output=_print_line)
    except (_UsageError, ParameterError, StepInvocationError) as exc:
        print(f"mlpipe: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # fingerprint of a step whose upstream is missing, etc.
        print(f"mlpipe: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.result_file:
        write_json_atomic(os.path.abspath(args.result_file), dataclasses.asdict(result))
    if result.ok:
        return 0
    return result.exit_code if result.exit_code >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
