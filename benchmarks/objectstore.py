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


def bench_transfer(store, fs, root: str, files: list[Path], work: Path) -> dict:
    """Seconds for mlpipe's and fsspec's bulk upload and download of the same files."""
    total = sum(p.stat().st_size for p in files)
    ours_prefix = f"{root}/ours-{uuid.uuid4().hex[:6]}"
    theirs_prefix = f"{root}/fsspec-{uuid.uuid4().hex[:6]}"
    proto = root.split("://")[0]
    ours_put = _timed(lambda: store.put_files([(str(p), f"{ours_prefix}/{p.name}") for p in files]))
    rpaths = [f"{theirs_prefix.split('://')[1]}/{p.name}" for p in files]
    theirs_put = _timed(lambda: fs.put([str(p) for p in files], rpaths))
    down = work / f"down-{uuid.uuid4().hex[:6]}"
    ours_get = _timed(
        lambda: store.fetch_files(
            [(f"{ours_prefix}/{p.name}", str(down / "ours" / p.name)) for p in files]
        )
    )
    (down / "fsspec").mkdir(parents=True)
    theirs_get = _timed(lambda: fs.get(rpaths, [str(down / "fsspec" / p.name) for p in files]))
    shutil.rmtree(down)
    big = total // len(files) >= 1 << 20
    amount = total / 1e6 if big else len(files)
    unit = "MB/s" if big else "files/s"
    size = f"{total // len(files) // (1 << 20)} MB" if big else f"{total // len(files) // 1024} KB"
    return {
        "store": proto,
        "files": f"{len(files)} × {size}",
        "upload mlpipe / fsspec": f"{amount / ours_put:.1f} / {amount / theirs_put:.1f} {unit}",
        "upload ratio": f"{theirs_put / ours_put:.2f}×",
        "download mlpipe / fsspec": f"{amount / ours_get:.1f} / {amount / theirs_get:.1f} {unit}",
        "download ratio": f"{theirs_get / ours_get:.2f}×",
    }


def bench_state(store, root: str, steps: int = 30) -> float:
    """Milliseconds of the state writes of one executed step."""
    record = {"status": "running", "step": "s", "outputs": {}, "metrics": {}}
    t0 = time.perf_counter()
    for i in range(steps):
        base = f"{root}/.mlpipe/runs/bench-{i}"
        store.write_json_atomic(f"{base}/steps/s.json", record)
        store.write_json_atomic(f"{base}/steps/s.json", dict(record, status="completed"))
        store.write_json_atomic(f"{root}/.mlpipe/cache/{uuid.uuid4().hex}.json", record)
        store.write_once(f"{root}/.mlpipe/versions/{uuid.uuid4().hex}.json", b"{}")
    return (time.perf_counter() - t0) / steps * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--small-kb", type=int, default=4)
    args = ap.parse_args()
    from tests.servers import make_bucket, make_container, start_azurite, start_moto

    servers = []
    work = Path(tempfile.mkdtemp(prefix="mlpipe-objbench-"))
    try:
        for start in (start_azurite, start_moto):
            server, env = start()
            servers.append(server)
            os.environ.update(env)
        import fsspec

        from mlpipe.runtime import store

        big = _files(work / "big", 1, args.big_mb << 20)
        small = _files(work / "small", args.small, args.small_kb << 10)
        rows, state = [], {}
        tag = uuid.uuid4().hex[:8]
        for proto, root in (
            ("az", make_container(f"bench-{tag}")),
            ("s3", make_bucket(f"bench-{tag}")),
        ):
            fs = fsspec.filesystem(proto)
            for files in (big, small):
                rows.append(bench_transfer(store, fs, root, files, work))
                print(rows[-1], file=sys.stderr, flush=True)
            state[proto] = bench_state(store, root)
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + " --- |" * len(keys))
        for row in rows:
            print("| " + " | ".join(row[k] for k in keys) + " |")
        print()
        for proto, ms in state.items():
            print(f"state writes per executed step on {proto}: {ms:.1f} ms (4 requests)")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
