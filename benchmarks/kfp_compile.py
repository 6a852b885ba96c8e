"""Compile a generated N-step Azure ML v1 pipeline to KFP with mlpipe, side by side with defining and
compiling the equivalent pipeline with the kfp SDK's DSL. Whole processes, medians of several runs.

    .venv/bin/python benchmarks/kfp_compile.py [--steps 1000] [--runs 5] [--no-bytecode-cache]

mlpipe side: `.venv/bin/mlpipe compile pipeline.py --target kfp -o OUT` (capture + checks + the
protobuf PipelineSpec + YAML). kfp side: `.venvs/kfp/bin/python kfp_pipeline.py OUT.yaml`, the same
graph written with `@dsl.component` / `@dsl.pipeline` and `kfp.compiler.Compiler().compile`. Both
pipelines have N tasks, one float parameter, an int constant per task, a data edge from the previous
task on 9 of every 10 tasks, caching off and a display name per task.

Runs alternate between the two tools so machine load hits both alike. By default each tool first
runs once to fill a bytecode cache (PYTHONPYCACHEPREFIX in a temp dir), as an installed package has
its .pyc files; --no-bytecode-cache measures with PYTHONDONTWRITEBYTECODE=1 (no .pyc at all).
Reports wall-clock and CPU (user+sys of the child) medians and their ratios as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLPIPE = ROOT / ".venv" / "bin" / "mlpipe"
KFP_PYTHON = ROOT / ".venvs" / "kfp" / "bin" / "python"

V1_PIPELINE = """\
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

N = {steps}
ws = Workspace.from_config()
store = ws.get_default_datastore()
lr = PipelineParameter(name="lr", default_value=0.1)
steps = []
previous = None
for i in range(N):
    out = PipelineData(f"out_{{i}}", datastore=store)
    arguments = ["--index", i, "--lr", lr, "--out", out]
    inputs = []
    if previous is not None and i % 10:
        arguments += ["--upstream", previous]
        inputs = [previous]
    steps.append(
        PythonScriptStep(
            name=f"step_{{i}}",
            script_name="step.py",
            source_directory="src",
            arguments=arguments,
            inputs=inputs,
            outputs=[out],
            allow_reuse=True,
        )
    )
    previous = out
pipeline = Pipeline(workspace=ws, steps=steps)
"""

STEP_SCRIPT = 'import sys\nprint("step", sys.argv[1:])\n'

KFP_PIPELINE = """\
import sys

from kfp import compiler, dsl

N = {steps}


@dsl.component(base_image="python:3.11-slim")
def step(index: int, lr: float, upstream: str) -> str:
    print("step", index, lr, upstream)
    return f"out_{{index}}"


@dsl.pipeline(name="bench")
def bench(lr: float = 0.1, regenerate_outputs: bool = False):
    previous = None
    for i in range(N):
        upstream = previous.output if previous is not None and i % 10 else ""
        task = step(index=i, lr=lr, upstream=upstream)
        task.set_caching_options(False)
        task.set_display_name(f"step_{{i}}")
        previous = task


compiler.Compiler().compile(bench, sys.argv[1])
"""


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-bytecode-cache", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlpipe-kfp-bench-") as tmp:
        work = Path(tmp)
        (work / "src").mkdir()
        (work / "src" / "step.py").write_text(STEP_SCRIPT)
        (work / "mlpipe.yaml").write_text(
            "workspace: bench\ndatastores:\n  workspaceblobstore: ./data\n"
        )
        (work / "pipeline.py").write_text(V1_PIPELINE.format(steps=args.steps))
        (work / "kfp_pipeline.py").write_text(KFP_PIPELINE.format(steps=args.steps))

        env = dict(os.environ)
        if args.no_bytecode_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        mlpipe_cmd = [str(MLPIPE), "compile", "pipeline.py", "--target", "kfp", "-o", "out"]
        kfp_cmd = [str(KFP_PYTHON), "kfp_pipeline.py", "kfp.yaml"]

        if not args.no_bytecode_cache:  # fill the bytecode caches
            timed(mlpipe_cmd, env, work)
            timed(kfp_cmd, env, work)
        results: dict[str, list[tuple[float, float]]] = {"mlpipe": [], "kfp": []}
        for _ in range(args.runs):
            results["mlpipe"].append(timed(mlpipe_cmd, env, work))
            results["kfp"].append(timed(kfp_cmd, env, work))

        def med(name: str, i: int) -> float:
            return statistics.median(r[i] for r in results[name])

        yaml_files = sorted((work / "out").glob("*.yaml"))
        report = {
            "steps": args.steps,
            "runs": args.runs,
            "bytecode_cache": not args.no_bytecode_cache,
            "mlpipe_wall_s": round(med("mlpipe", 0), 3),
            "kfp_wall_s": round(med("kfp", 0), 3),
            "ratio_wall": round(med("mlpipe", 0) / med("kfp", 0), 3),
            "mlpipe_cpu_s": round(med("mlpipe", 1), 3),
            "kfp_cpu_s": round(med("kfp", 1), 3),
            "ratio_cpu": round(med("mlpipe", 1) / med("kfp", 1), 3),
            "mlpipe_yaml_bytes": sum(p.stat().st_size for p in yaml_files),
            "kfp_yaml_bytes": (work / "kfp.yaml").stat().st_size,
            "all_runs": {k: [[round(w, 3), round(c, 3)] for w, c in v] for k, v in results.items()},
        }
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
