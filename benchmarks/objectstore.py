"""Object-store transfer throughput and state-write cost, against real local servers.

    .venv/bin/python benchmarks/objectstore.py [--big-mb 200] [--small 5000] [--small-kb 4] \
        [--repeat 3] [--stores az,s3] [--sets big,small] [--timeout 900]

Starts Azurite and moto (tests/servers.py, like the tests) and, on each store, times:
- publishing / staging 1 file of --big-mb MB and --small files of --small-kb KB through mlpipe's
  own paths (`store.publish_tree`: manifest withdrawn, files uploaded, manifest written, as a step
  publishes an output; `store.common_files` + `store.fetch_files`: the listing and download a step
  stages a dataset input with) against fsspec's own bulk `put` / `get` of the same files (paths
  given, no listing) on the same server;
- the state writes one executed step makes (record `running`, record `completed`, cache entry, one
  write-once key), per step;
- every request real runs make to mlpipe's state on the store (a 2-step pipeline run in process,
  first run and fully reused rerun), counted and timed.
Every round runs on a fresh server, stopped afterwards; nothing is deleted: deleting blobs one by
one costs Azurite ~45 ms of its own CPU per blob when it holds 9,000 (more the more it holds),
which kept the 5,000-file set running for tens of minutes before, and a deleted container of
10,000 blobs kept it busy for minutes after the call returned (see docs/performance.md).
Progress goes to stderr; the Markdown table (docs/performance.md keeps the results) to stdout.
An operation running over --timeout seconds, SIGTERM or SIGINT stop the run and both servers.
Numbers vary with machine load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def say(message: str) -> None:
    load = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')} load {load:.1f}] {message}", file=sys.stderr, flush=True)


def _stop_on_signal(signum, frame) -> None:
    # The servers run in their own sessions (so a Ctrl-C in a terminal does not hit them first);
    # SystemExit unwinds to main's `finally`, which stops them.
    raise SystemExit(128 + signum)


class Watchdog:
    """Ends the run (SIGTERM to this process: servers stopped) when one operation overruns."""

    def __init__(self, seconds: float):
        self.seconds, self.timer = seconds, None

    def __enter__(self):
        def fire():
            say(f"an operation ran over {self.seconds:.0f} s: stopping (--timeout)")
            os.kill(os.getpid(), signal.SIGTERM)

        if self.seconds > 0:
            self.timer = threading.Timer(self.seconds, fire)
            self.timer.daemon = True
            self.timer.start()
        return self

    def __exit__(self, *exc):
        if self.timer is not None:
            self.timer.cancel()


def _files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    out = []
    for i in range(count):
        p = folder / f"f{i:05d}.bin"
        p.write_bytes(os.urandom(size))
        out.append(p)
    return out


def _fresh_root(proto: str) -> str:
    from tests.servers import make_bucket, make_container

    name = f"bench-{uuid.uuid4().hex[:12]}"
    return make_container(name) if proto == "az" else make_bucket(name)


@contextmanager
def fresh_server(proto: str, servers: list):
    """A new server (Azurite or moto) for one round, stopped after it: nothing an earlier round
    left behind (blobs, deleted containers Azurite is still collecting) slows this one."""
    import fsspec

    from tests.servers import start_azurite, start_moto

    server, env = {"az": start_azurite, "s3": start_moto}[proto]()
    servers.append(server)  # main's `finally` stops it if the run is interrupted
    os.environ.update(env)
    fsspec.get_filesystem_class(proto).clear_instance_cache()  # they hold the old endpoint
    try:
        yield fsspec.filesystem(proto)
    finally:
        servers.remove(server)
        server.stop()


def _round(store, fs, proto: str, files: list[Path], work: Path, swap: bool, timeout: float):
    """One upload and one download of `files` by each side; `swap`: fsspec goes first."""
    root = _fresh_root(proto)
    bucket = root.split("://")[1]
    ours = f"{root}/ours"
    theirs = [f"{bucket}/fsspec/{p.name}" for p in files]
    down = work / f"down-{uuid.uuid4().hex[:6]}"
    (down / "fsspec").mkdir(parents=True)

    def stage_ours():
        found = store.common_files([ours])
        store.fetch_files([(loc, str(down / "ours" / rel)) for loc, rel in found])
        assert len(found) == len(files), (len(found), len(files))

    runs = {
        "put ours": lambda: store.publish_tree([(str(p), p.name) for p in files], ours),
        "put fsspec": lambda: fs.put([str(p) for p in files], theirs),
        "get ours": stage_ours,
        "get fsspec": lambda: fs.get(theirs, [str(down / "fsspec" / p.name) for p in files]),
        # What a step staging a dataset folder does: list it, then download (fsspec's own
        # recursive get); the line above is handed the paths, so it skips the listing.
        "get fsspec-folder": lambda: fs.get(
            f"{bucket}/fsspec/", str(down / "f") + "/", recursive=True
        ),
    }
    out = {}
    try:
        for op in ("put", "get"):
            pair = [f"{op} ours", f"{op} fsspec"] + (["get fsspec-folder"] if op == "get" else [])
            for key in reversed(pair) if swap else pair:
                with Watchdog(timeout):
                    t0 = time.perf_counter()
                    runs[key]()
                    out[key] = time.perf_counter() - t0
                side = "mlpipe" if key.endswith("ours") else "fsspec"
                say(f"  {op} {side}: {out[key]:.2f} s")
    finally:
        shutil.rmtree(down, ignore_errors=True)
    return out


def bench_transfer(store, proto: str, files: list[Path], work: Path, args, servers) -> dict:
    """mlpipe's and fsspec's bulk upload and download of the same files, `repeat` times each; the
    two sides alternate which goes first, so neither always meets a warmer server."""
    total = sum(p.stat().st_size for p in files)
    big = total // len(files) >= 1 << 20
    amount, unit = (total / 1e6, "MB/s") if big else (len(files), "files/s")
    size = f"{total // len(files) >> 20} MB" if big else f"{total // len(files) >> 10} KB"
    name = {"az": "Azurite", "s3": "moto"}[proto]
    times: dict[str, list[float]] = {}
    for r in range(args.repeat):
        say(f"{name}, {len(files)} × {size}: round {r + 1}/{args.repeat}")
        swap = r % 2 == 1
        with fresh_server(proto, servers) as fs:
            for key, seconds in _round(store, fs, proto, files, work, swap, args.timeout).items():
                times.setdefault(key, []).append(seconds)
    row = {"store": name, "files": f"{len(files)} × {size}"}
    ops = (("put", "upload"), ("get", "download"), ("get", "download of a folder"))
    for op, label in ops:
        ours = times[f"{op} ours"]
        theirs = times[f"{op} fsspec" + ("-folder" if "folder" in label else "")]
        for which, pick in (("best", min), ("median", statistics.median)):
            row[f"{label} mlpipe / fsspec ({which})"] = (
                f"{amount / pick(ours):.1f} / {amount / pick(theirs):.1f} {unit} "
                f"= {pick(theirs) / pick(ours):.2f}×"
            )
    return row


def bench_state(store, proto: str, repeat: int, steps: int = 20) -> tuple[float, float]:
    """Milliseconds of the state writes of one executed step (best, median of `repeat` rounds)."""
    root = _fresh_root(proto)
    record = {"status": "running", "step": "s", "outputs": {}, "metrics": {}}
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(steps):
            base = f"{root}/.mlpipe/runs/bench-{uuid.uuid4().hex[:8]}-{i}"
            store.write_json_atomic(f"{base}/steps/s.json", record)
            store.write_json_atomic(f"{base}/steps/s.json", dict(record, status="completed"))
            store.write_json_atomic(f"{root}/.mlpipe/cache/{uuid.uuid4().hex}.json", record)
            store.write_once(f"{root}/.mlpipe/versions/{uuid.uuid4().hex}.json", b"{}")
        rounds.append((time.perf_counter() - t0) / steps * 1000)
    return min(rounds), statistics.median(rounds)


_WRITES = ("writing", "creating", "uploading", "withdrawing", "removing", "renaming")


def bench_steps(proto: str, work: Path) -> dict[str, dict]:
    """The requests real runs make to mlpipe's state (`<default datastore>/.mlpipe/`) and the time
    spent in them: tests/objectstores/many (2 steps, MANY_FILES=1) run in process on a fresh
    container / bucket, first run then a fully reused rerun. Every remote call of the runtime goes
    through `store._call`, which is wrapped here to count and time them (steps one at a time)."""
    import io

    from rich.console import Console

    from mlpipe.capture import capture
    from mlpipe.local import run_pipeline
    from mlpipe.runtime import store

    project = work / f"steps-{proto}"
    shutil.copytree(ROOT / "tests" / "objectstores" / "many", project)
    root = _fresh_root(proto)
    (project / "mlpipe.yaml").write_text(
        f"workspace: many\ndatastores:\n  workspaceblobstore: {root}\n", encoding="utf-8"
    )
    calls: list[tuple[bool, bool, float]] = []  # (state?, write?, seconds)
    real = store._call

    def counted(url, what, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return real(url, what, fn, *args, **kwargs)
        finally:
            calls.append(("/.mlpipe/" in url, what.startswith(_WRITES), time.perf_counter() - t0))

    out: dict[str, dict] = {}
    cwd = os.getcwd()
    os.environ["MANY_FILES"] = "1"
    store._call = counted
    try:
        os.chdir(project)
        ir = capture("pipeline.py").pipelines[0]
        for label, want in (("first run", "completed"), ("reused rerun", "reused")):
            calls.clear()
            res = run_pipeline(ir, ".", console=Console(file=io.StringIO()), max_parallel=1)
            assert set(res.statuses.values()) == {want}, res.statuses
            state = [c for c in calls if c[0]]
            out[label] = {
                "steps": len(res.statuses),
                "requests": len(state),
                "writes": sum(1 for c in state if c[1]),
                "ms": sum(c[2] for c in state) * 1000,
            }
    finally:
        store._call = real
        os.chdir(cwd)
    return out


def run(args, work: Path, servers: list) -> None:
    from mlpipe.runtime import store

    protos = args.stores.split(",")

    sets = {}
    if "big" in args.sets:
        sets["big"] = _files(work / "big", 1, args.big_mb << 20)
    if "small" in args.sets:
        sets["small"] = _files(work / "small", args.small, args.small_kb << 10)
    rows, state, steps = [], {}, {}
    for proto in protos:
        for key in filter(None, args.sets.split(",")):
            rows.append(bench_transfer(store, proto, sets[key], work, args, servers))
            say(" | ".join(rows[-1].values()))
        with fresh_server(proto, servers):
            state[proto] = bench_state(store, proto, args.repeat)
            steps[proto] = bench_steps(proto, work)
        say(f"state requests of real runs on {proto}: {steps[proto]}")
    if rows:
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + " --- |" * len(keys))
        for row in rows:
            print("| " + " | ".join(row[k] for k in keys) + " |")
        print()
    for proto, (best, median) in state.items():
        print(
            f"state writes per executed step on {proto} (4 requests): "
            f"best {best:.1f} ms, median {median:.1f} ms"
        )
    for proto, runs in steps.items():
        for label, r in runs.items():
            n = r["steps"]
            print(
                f"{label} of a {n}-step pipeline on {proto}: {r['requests']} state requests "
                f"({r['writes']} writes), {r['ms']:.0f} ms in them: "
                f"{r['requests'] / n:.1f} requests, {r['ms'] / n:.0f} ms per step"
            )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--small-kb", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each operation (best, median)")
    ap.add_argument("--stores", default="az,s3", help="az, s3 or both")
    ap.add_argument("--sets", default="big,small", help="big, small, both or '' (state only)")
    ap.add_argument(
        "--timeout", type=float, default=900, help="seconds one operation may take (0: no limit)"
    )
    args = ap.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_on_signal)
    servers: list = []
    work = Path(tempfile.mkdtemp(prefix="mlpipe-objbench-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    try:
        run(args, work, servers)
    finally:
        # Ignore further signals while stopping: a second Ctrl-C must not leave a server behind.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        say("servers stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
