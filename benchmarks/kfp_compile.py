"""Kept for its command line (docs/kfp.md): mlpipe -> KFP vs the kfp SDK, now `run.py compile`.

    .venv/bin/python benchmarks/kfp_compile.py [--steps 1000] [--runs 5] [--no-bytecode-cache]

runs `benchmarks/run.py compile --targets kfp --shape chain --sizes STEPS`: the graph of the first
benchmark (each step reads the previous one, except every 10th), whole processes, alternating runs,
medians of wall and CPU and their ratios. See docs/performance.md for the whole suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent / "run.py"

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-bytecode-cache", action="store_true")
    args = ap.parse_args()
    argv = [sys.executable, str(RUN), "compile", "--targets", "kfp", "--shape", "chain"]
    argv += ["--sizes", str(args.steps), "--runs", str(args.runs)]
    if args.no_bytecode_cache:
        argv.append("--no-bytecode-cache")
    os.execv(sys.executable, argv)
