"""Runs inside .venvs/airflow (stdlib + Airflow only): parse DAG files the way the DAG processor does.

    python _airflow_parse.py --reps 20 [--serialize] --json OUT FILE [FILE ...]

Imports Airflow once (timed and reported apart), then for each repetition parses every file with a
fresh `DagBag(dag_folder=FILE)` (what the DAG processor's child does for one file; the order of the
files rotates every repetition) and, with --serialize, also `DagSerialization.to_dict(dag)` (what
it sends to the database). Writes one JSON object to OUT: seconds per file and repetition.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag  # noqa: E402
from airflow.serialization.serialized_objects import DagSerialization  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--serialize", action="store_true")
    ap.add_argument("--json", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    logging.disable(logging.WARNING)

    parse: dict[str, list[float]] = {f: [] for f in args.files}
    serialize: dict[str, list[float]] = {f: [] for f in args.files}
    tasks: dict[str, int] = {}
    for rep in range(args.reps):
        k = rep % len(args.files)
        for f in args.files[k:] + args.files[:k]:
            t = time.perf_counter()
            bag = DagBag(dag_folder=f)
            parse[f].append(time.perf_counter() - t)
            if bag.import_errors or len(bag.dags) != 1:
                raise SystemExit(f"{f}: {bag.import_errors or 'expected one DAG'}")
            (dag,) = bag.dags.values()
            tasks[f] = len(dag.tasks)
            if args.serialize:
                t = time.perf_counter()
                DagSerialization.to_dict(dag)
                serialize[f].append(time.perf_counter() - t)
    report = {
        "import_seconds": IMPORT_SECONDS,
        "parse": parse,
        "serialize": serialize if args.serialize else None,
        "tasks": tasks,
    }
    with open(args.json, "w") as fh:
        json.dump(report, fh)


if __name__ == "__main__":
    main()
