"""Runner overhead per no-op step, and the time of a fully reused rerun, against running the same
scripts directly with `python script.py`.

    .venv/bin/python benchmarks/runner_overhead.py [--steps 20] [--parallel 1]

Reports (seconds):
  direct            N scripts run one after the other with subprocess (no mlpipe)
  runner, first     mlpipe's local runner executing all N steps (snapshot, staging, records, cache)
  runner, reused    the unchanged rerun: every step reused, nothing executed
  run-step CLI      `python -m mlpipe.runtime run-step` per step, as Airflow / Prefect tasks call it
Numbers only: this never asserts on timing.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from mlpipe.ir import (
    Datastore,
    OutputArg,
    PipelineIR,
    Snapshot,
    Step,
    StepInput,
    StepOutput,
    StepOutputSource,
)
from mlpipe.local import run_pipeline
from mlpipe.snapshot import hash_directory, write_snapshot

NOOP = "import sys, os\nopen(os.path.join(sys.argv[-1], 'done'), 'w').write('x')\n"


def build(base: Path, n: int, chain: bool) -> PipelineIR:
    src = base / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "noop.py").write_text(NOOP)
    info = hash_directory(src)
    steps = []
    for i in range(n):
        inputs = []
        if chain and i:
            inputs = [StepInput(name="prev", source=StepOutputSource(step=f"s{i - 1}", output="o"))]
        steps.append(
            Step(
                name=f"s{i}",
                script="noop.py",
                source_directory="src",
                snapshot=Snapshot(hash=info.hash, files=info.files, bytes=info.bytes),
                arguments=[OutputArg(name="o")],
                inputs=inputs,
                outputs=[
                    StepOutput(
                        name="o",
                        kind="pipeline_data",
                        datastore="workspaceblobstore",
                        destination=f"out/{{run-id}}/s{i}",
                    )
                ],
            )
        )
    return PipelineIR(
        name="bench",
        source_file="pipeline.py",
        datastores=[Datastore(name="workspaceblobstore", url=str(base / "ds"))],
        steps=steps,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=1, help="runner parallelism (1 = sequential)")
    ap.add_argument("--chain", action="store_true", help="each step consumes the previous output")
    args = ap.parse_args()
    n = args.steps

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ir = build(base, n, args.chain)
        cache = str(base / "cache")
        quiet = Console(file=io.StringIO())

        scratch = base / "scratch"
        scratch.mkdir()
        t0 = time.perf_counter()
        for _ in range(n):
            subprocess.run(
                [sys.executable, str(base / "src" / "noop.py"), str(scratch)], check=True
            )
        direct = time.perf_counter() - t0

        t0 = time.perf_counter()
        res = run_pipeline(ir, base, console=quiet, cache_dir=cache, max_parallel=args.parallel)
        first = time.perf_counter() - t0
        assert res.ok and set(res.statuses.values()) == {"completed"}

        t0 = time.perf_counter()
        res = run_pipeline(ir, base, console=quiet, cache_dir=cache, max_parallel=args.parallel)
        reused = time.perf_counter() - t0
        assert set(res.statuses.values()) == {"reused"}

        bundle = base / "bundle"
        write_snapshot(base / "src", bundle / "snapshots")
        (bundle / "ir.json").write_text(ir.model_dump_json())
        cli_n = min(n, 10)
        t0 = time.perf_counter()
        for i in range(cli_n):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mlpipe.runtime",
                    "run-step",
                    "--ir",
                    str(bundle / "ir.json"),
                    "--step",
                    f"s{i}",
                    "--run-id",
                    "bench-cli",
                    "--regenerate-outputs",
                    "true",
                    "--cache-dir",
                    cache,
                ],
                check=True,
                capture_output=True,
            )
        cli = (time.perf_counter() - t0) / cli_n

    per_direct = direct / n
    print(
        f"steps: {n} no-op python steps ({'chain' if args.chain else 'independent'}), "
        f"runner parallelism {args.parallel}, {os.cpu_count()} cores"
    )
    print(
        f"direct (python script.py)     total {direct:7.3f}s   per step {per_direct * 1000:7.1f} ms"
    )
    print(
        f"runner, first run (all ran)   total {first:7.3f}s   per step {first / n * 1000:7.1f} ms"
        f"   overhead/step {(first - direct) / n * 1000:7.1f} ms"
    )
    print(
        f"runner, rerun (all reused)    total {reused:7.3f}s   per step {reused / n * 1000:7.1f} ms"
    )
    print(
        f"run-step CLI (one process)    per step {cli * 1000:7.1f} ms"
        f"   overhead/step {(cli - per_direct) * 1000:7.1f} ms"
    )


if __name__ == "__main__":
    main()
