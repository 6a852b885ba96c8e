"""The pipelines the benchmarks measure, each written once per tool from one graph.

`upstream(i, n, shape)` is the graph: step i's upstream steps. Shape `mixed` (the default) is a
chain of blocks of 10 steps: a head step, 8 fan-out steps that each read the head's output and a
fan-in step that reads all 8; the next block's head reads the fan-in's output. Shape `chain` is the
graph of the first KFP benchmark: each step reads the previous one, except every 10th.

From it come:
- `v1_pipeline`: an Azure ML SDK v1 pipeline file (PythonScriptStep + PipelineData edges, one
  PipelineParameter, an int constant per step), what `mlpipe compile` / `mlpipe run` read;
- `kfp_dsl_pipeline`: the same graph with the kfp SDK (`@dsl.component` / `@dsl.pipeline` +
  `Compiler().compile`), what a user would otherwise write;
- `airflow_bash_dag`: a hand-written Airflow DAG of the same shape (a BashOperator per step running
  the step's command, the same params and edges, built in a loop as a person writes it);
- `prefect_flow`: a hand-written Prefect flow of the same shape (one task function, one submit per
  step with its `wait_for`).
The generated files are plain Python with no dependency on this module.
"""

from __future__ import annotations

BLOCK = 10  # mixed shape: head + FAN_OUT + join
FAN_OUT = BLOCK - 2

# The graph as Python source, pasted into every generated file so each computes it the same way.
UPSTREAM_SRC = '''\
def upstream(i, shape={shape!r}):
    """Indices of step i's upstream steps."""
    if shape == "chain":
        return [i - 1] if i and i % 10 else []
    pos, start = i % {block}, i - i % {block}
    if pos == 0:
        return [i - 1] if i else []
    if pos <= {fan_out}:
        return [start]
    return list(range(start + 1, start + {block} - 1))
'''


def upstream_src(shape: str) -> str:
    return UPSTREAM_SRC.format(shape=shape, block=BLOCK, fan_out=FAN_OUT)


def upstream(i: int, shape: str = "mixed") -> list[int]:
    scope: dict = {}
    exec(upstream_src(shape), scope)  # the very code the generated files hold
    return scope["upstream"](i)


def edge_count(n: int, shape: str) -> int:
    scope: dict = {}
    exec(upstream_src(shape), scope)
    return sum(len(scope["upstream"](i)) for i in range(n))


# ------------------------------------------------------------------------------ step scripts

# Each step writes a marker into its output folder (the path after --out) and, with BENCH_WORK set,
# sleeps or computes that many seconds first; with BENCH_COUNT_FILE set it appends its index there.
STEP_SCRIPT = """\
import os
import sys
import time

args = sys.argv[1:]
out = args[args.index("--out") + 1]
seconds = float(os.environ.get("BENCH_WORK", "0") or 0)
kind = os.environ.get("BENCH_WORK_KIND", "sleep")
if seconds and kind == "cpu":
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x = (x * 31 + 7) % 1000003
elif seconds:
    time.sleep(seconds)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "done"), "w") as fh:
    fh.write(" ".join(args))
if os.environ.get("BENCH_COUNT_FILE"):  # one line per step execution: proves what ran
    with open(os.environ["BENCH_COUNT_FILE"], "a") as fh:
        fh.write(args[args.index("--index") + 1] + "\\n")
"""


# ------------------------------------------------------------------------------ Azure ML v1

V1_PIPELINE = """\
from azureml.core import Workspace
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

N = {steps}


{upstream}

ws = Workspace.from_config()
store = ws.get_default_datastore()
lr = PipelineParameter(name="lr", default_value=0.1)
outputs = []
steps = []
for i in range(N):
    out = PipelineData(f"out_{{i}}", datastore=store)
    ups = upstream(i)
    arguments = ["--index", i, "--lr", lr, "--out", out]
    for u in ups:
        arguments += ["--in", outputs[u]]
    steps.append(
        PythonScriptStep(
            name=f"step_{{i}}",
            script_name="step.py",
            source_directory="src",
            arguments=arguments,
            inputs=[outputs[u] for u in ups],
            outputs=[out],
            allow_reuse=True,
        )
    )
    outputs.append(out)
pipeline = Pipeline(workspace=ws, steps=steps)
"""

MLPIPE_YAML = "workspace: bench\ndatastores:\n  workspaceblobstore: ./data\n"


def v1_pipeline(steps: int, shape: str = "mixed") -> str:
    return V1_PIPELINE.format(steps=steps, upstream=upstream_src(shape))


# ------------------------------------------------------------------------------------ kfp DSL

KFP_PIPELINE = """\
import sys

from kfp import compiler, dsl

N = {steps}


{upstream}


@dsl.component(base_image="python:3.11-slim")
def step(index: int, lr: float, upstream: str) -> str:
    print("step", index, lr, upstream)
    return f"out_{{index}}"


@dsl.component(base_image="python:3.11-slim")
def join(index: int, lr: float, {join_params}) -> str:
    print("join", index, lr, {join_args})
    return f"out_{{index}}"


@dsl.pipeline(name="bench")
def bench(lr: float = 0.1, regenerate_outputs: bool = False):
    tasks = []
    for i in range(N):
        ups = [tasks[u].output for u in upstream(i)]
        if len(ups) > 1:
            task = join(index=i, lr=lr, **{{f"u{{k}}": up for k, up in enumerate(ups)}})
        else:
            task = step(index=i, lr=lr, upstream=ups[0] if ups else "")
        task.set_caching_options(False)
        task.set_display_name(f"step_{{i}}")
        tasks.append(task)


compiler.Compiler().compile(bench, sys.argv[1])
"""


def kfp_dsl_pipeline(steps: int, shape: str = "mixed") -> str:
    return KFP_PIPELINE.format(
        steps=steps,
        upstream=upstream_src(shape),
        join_params=", ".join(f"u{k}: str" for k in range(FAN_OUT)),
        join_args=", ".join(f"u{k}" for k in range(FAN_OUT)),
    )


# ------------------------------------------------------------------------- hand-written Airflow

AIRFLOW_BASH_DAG = """\
\"\"\"A hand-written Airflow DAG of the benchmark's shape: one BashOperator per step.\"\"\"

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

N = {steps}


{upstream}

with DAG(
    dag_id="handwritten",
    schedule=None,
    catchup=False,
    params={{
        "lr": Param(0.1, type="number"),
        "regenerate_outputs": Param(False, type="boolean"),
    }},
    default_args={{"trigger_rule": "none_failed"}},
    tags=["bench"],
) as dag:
    tasks = []
    for i in range(N):
        task = BashOperator(
            task_id=f"step_{{i}}",
            bash_command=(
                f"python -m mlpipe.runtime run-step --ir .mlpipe/pipeline.json --step step_{{i}}"
                " --run-id {{{{ run_id }}}} --params-json '{{{{ params | tojson }}}}'"
            ),
        )
        for u in upstream(i):
            tasks[u] >> task
        tasks.append(task)
"""


def airflow_bash_dag(steps: int, shape: str = "mixed") -> str:
    return AIRFLOW_BASH_DAG.format(steps=steps, upstream=upstream_src(shape))


# ------------------------------------------------------------------------- hand-written Prefect

PREFECT_FLOW = """\
\"\"\"A hand-written Prefect flow of the benchmark's shape: one task function, a submit per step.\"\"\"

import subprocess
import sys

from prefect import flow, task

N = {steps}


{upstream}


@task
def run_step(step: str, lr: float, regenerate_outputs: bool) -> None:
    subprocess.run(
        [sys.executable, "-m", "mlpipe.runtime", "run-step", "--ir", ".mlpipe/pipeline.json",
         "--step", step, "--params-json", '{{"lr": %r}}' % lr],
        check=True,
    )


@flow(name="handwritten")
def handwritten(lr: float = 0.1, regenerate_outputs: bool = False):
    futures = []
    for i in range(N):
        wait = [futures[u] for u in upstream(i)]
        futures.append(
            run_step.with_options(name=f"step_{{i}}").submit(
                f"step_{{i}}", lr, regenerate_outputs, wait_for=wait
            )
        )
    return futures
"""


def prefect_flow(steps: int, shape: str = "mixed") -> str:
    return PREFECT_FLOW.format(steps=steps, upstream=upstream_src(shape))
