"""Object-store transfer throughput and state-write cost, against real local servers.

    .venv/bin/python benchmarks/objectstore.py [--big-mb 200] [--small 5000] [--small-kb 4]

Starts Azurite and moto (tests/servers.py, like the tests) and, on each store, times:
- publishing / staging 1 file of --big-mb MB and --small files of --small-kb KB through mlpipe
  (`store.put_files` / `store.fetch_files`, what publish_tree and input staging use) against
  fsspec's own bulk `put` / `get` of the same files on the same server;
- the state writes one executed step makes (record `running`, record `completed`, cache entry, one
  write-once key), per step.
Prints a Markdown table (docs/performance.md keeps the results). Numbers vary with machine load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    out = []
    for i in range(count):
        p = folder / f"f{i:05d}.bin"
        p.write_bytes(os.urandom(size))
        out.append(p)
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _round(store, fs, root: str, files: list[Path], work: Path, swap: bool) -> dict[str, float]:
    """One upload and one download of `files` by each side; `swap`: fsspec goes first."""
    tag = uuid.uuid4().hex[:6]
    bucket_path = root.split("://")[1]
    ours = f"{root}/ours-{tag}"
    theirs = [f"{bucket_path}/fsspec-{tag}/{p.name}" for p in files]
    down = work / f"down-{tag}"
    (down / "fsspec").mkdir(parents=True)
    runs = {
        "put ours": lambda: store.put_files([(str(p), f"{ours}/{p.name}") for p in files]),
        "put fsspec": lambda: fs.put([str(p) for p in files], theirs),
        "get ours": lambda: store.fetch_files(
            [(f"{ours}/{p.name}", str(down / "ours" / p.name)) for p in files]
        ),
        "get fsspec": lambda: fs.get(theirs, [str(down / "fsspec" / p.name) for p in files]),
    }
    out = {}
    for op in ("put", "get"):
        pair = [f"{op} ours", f"{op} fsspec"]
        for key in reversed(pair) if swap else pair:
            out[key] = _timed(runs[key])
    shutil.rmtree(down)
    fs.rm([f"{bucket_path}/ours-{tag}", f"{bucket_path}/fsspec-{tag}"], recursive=True)
    return out


def bench_transfer(store, fs, root: str, files: list[Path], work: Path, repeat: int) -> dict:
    """mlpipe's and fsspec's bulk upload and download of the same files, `repeat` times each; the
    two sides alternate which goes first, so neither always meets a warmer server."""
    times: dict[str, list[float]] = {}
    for r in range(repeat):
        for key, seconds in _round(store, fs, root, files, work, swap=r % 2 == 1).items():
            times.setdefault(key, []).append(seconds)
    total = sum(p.stat().st_size for p in files)
    big = total // len(files) >= 1 << 20
    amount, unit = (total / 1e6, "MB/s") if big else (len(files), "files/s")
    size = f"{total // len(files) >> 20} MB" if big else f"{total // len(files) >> 10} KB"
    row = {
        "store": {"az": "Azurite", "s3": "moto"}[root.split("://")[0]],
        "files": f"{len(files)} × {size}",
    }
    for op, name in (("put", "upload"), ("get", "download")):
        ours, theirs = times[f"{op} ours"], times[f"{op} fsspec"]
        for label, pick in (("best", min), ("median", statistics.median)):
            row[f"{name} mlpipe / fsspec ({label})"] = (
                f"{amount / pick(ours):.1f} / {amount / pick(theirs):.1f} {unit} "
                f"= {pick(theirs) / pick(ours):.2f}×"
            )
    return row


def bench_state(store, root: str, repeat: int, steps: int = 20) -> tuple[float, float]:
    """Milliseconds of the state writes of one executed step (best, median of `repeat` rounds)."""
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--small-kb", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each operation (best, median)")
    ap.add_argument("--stores", default="az,s3", help="az, s3 or both")
    ap.add_argument("--sets", default="big,small", help="big, small or both")
    args = ap.parse_args()
    from tests.servers import make_bucket, make_container, start_azurite, start_moto

    servers = []
    work = Path(tempfile.mkdtemp(prefix="mlpipe-objbench-"))
    print(f"load average at start: {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    try:
        for start in (start_azurite, start_moto):
            server, env = start()
            servers.append(server)
            os.environ.update(env)
        import fsspec

        from mlpipe.runtime import store

        big = _files(work / "big", 1, args.big_mb << 20) if "big" in args.sets else []
        small = (
            _files(work / "small", args.small, args.small_kb << 10) if "small" in args.sets else []
        )
        rows, state = [], {}
        tag = uuid.uuid4().hex[:8]
        makers = {"az": make_container, "s3": make_bucket}
        for proto in args.stores.split(","):
            root = makers[proto](f"bench-{tag}")
            fs = fsspec.filesystem(proto)
            for files in [{"big": big, "small": small}[k] for k in args.sets.split(",")]:
                rows.append(bench_transfer(store, fs, root, files, work, args.repeat))
                print(rows[-1], file=sys.stderr, flush=True)
            state[proto] = bench_state(store, root, args.repeat)
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
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
