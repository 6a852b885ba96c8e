"""Runs inside .venvs/prefect (stdlib + Prefect only): import flow modules the way a worker does.

    python _prefect_import.py --reps 20 FILE [FILE ...]

Imports Prefect once (timed and reported apart), then for each repetition loads every file as a
fresh module (`importlib.util.spec_from_file_location` + `exec_module`, what Prefect's
`load_flow_from_entrypoint` does; the order rotates every repetition) and checks it defines a flow.
Prints one JSON object: seconds per file and repetition.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

# This folder holds no `prefect` module, but keep it off sys.path all the same.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

t0 = time.perf_counter()
import prefect  # noqa: E402
from prefect import Flow  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t0


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    seconds: dict[str, list[float]] = {f: [] for f in args.files}
    tasks: dict[str, int] = {}
    for rep in range(args.reps):
        k = rep % len(args.files)
        for i, f in enumerate(args.files[k:] + args.files[:k]):
            t = time.perf_counter()
            module = load(f, f"bench_flow_{rep}_{i}")
            seconds[f].append(time.perf_counter() - t)
            flows = [v for v in vars(module).values() if isinstance(v, Flow)]
            if not flows:
                raise SystemExit(f"{f}: no flow")
            tasks[f] = sum(isinstance(v, prefect.Task) for v in vars(module).values())
    print(json.dumps({"import_seconds": IMPORT_SECONDS, "load": seconds, "task_objects": tasks}))


if __name__ == "__main__":
    main()
