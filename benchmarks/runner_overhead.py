"""Kept for its command line (docs/runtime.md): runner overhead per step, now `run.py overhead`.

    .venv/bin/python benchmarks/runner_overhead.py [--steps 20] [--chain]

runs `benchmarks/run.py overhead --steps STEPS --shape mixed|chain`: no-op steps run directly
(`python script.py`), by `mlpipe run` (whole process) and by the in-process runner, first and fully
reused, and `python -m mlpipe.runtime run-step` per step. See docs/performance.md for the suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent / "run.py"

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chain", action="store_true", help="each step consumes the previous output")
    args = ap.parse_args()
    argv = [sys.executable, str(RUN), "overhead", "--steps", str(args.steps)]
    argv += ["--runs", str(args.runs), "--shape", "chain" if args.chain else "mixed"]
    os.execv(sys.executable, argv)
