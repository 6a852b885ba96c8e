"""mlpipe's performance benchmarks, each against what a user would otherwise run, in one run.

    .venv/bin/python benchmarks/run.py all [--quick] [--json results.json]
    .venv/bin/python benchmarks/run.py compile  [--sizes 10,100,1000,5000] [--runs 5] [--targets ...]
    .venv/bin/python benchmarks/run.py phases   [--sizes 100,1000,5000] [--runs 3]
    .venv/bin/python benchmarks/run.py parse    [--steps 1000] [--reps 15] [--no-serialize]
    .venv/bin/python benchmarks/run.py overhead [--steps 100] [--runs 5]
    .venv/bin/python benchmarks/run.py rerun    [--steps 100] [--work 1.0] [--runs 3]
    .venv/bin/python benchmarks/run.py targets  [--steps 10] [--work 1.0] [--runs 2]
    .venv/bin/python benchmarks/run.py hash     [--files 5000] [--runs 5]

compile   whole-process `mlpipe compile` of generated v1 pipelines to every target vs the kfp SDK
          defining + compiling the same graph; wall, CPU and peak RSS (the 5000-step row is the
          peak-memory measurement); time per step and the marginal cost per added step.
phases    the same compiles in one process, split into capture and each backend (no interpreter
          start-up): the clearest view of how cost grows with steps.
parse     Airflow DagBag parse (+ serialization) of the generated 1000-step DAG vs a hand-written
          BashOperator DAG of the same shape, in .venvs/airflow; import of the generated Prefect
          flow module vs a hand-written flow, in .venvs/prefect. With and without bytecode caches.
overhead  `mlpipe run` (whole process, one step at a time) of no-op steps vs running the same
          scripts directly, per step; the in-process runner; `python -m mlpipe.runtime run-step`
          per step (what every orchestrator task pays).
rerun     `mlpipe run` of a pipeline whose steps do real work, then the unchanged rerun (every step
          reused): the rerun as a fraction of the first run.
targets   the same first run / reused rerun on Airflow (`airflow dags test`), Prefect (a flow run
          against a local Prefect server) and kfp.local, with the drivers the tests use.
hash      snapshot hashing (mlpipe.snapshot.hash_directory) of a generated source folder vs
          `find | xargs sha256sum`, cold and when nothing changed.

Every measurement alternates the tools it compares (the machine is shared: load hits them alike),
reports medians and ratios, and the load average before and after. Numbers only, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import pipelines as P  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
MLPIPE = str(VENV_BIN / "mlpipe")
PYTHON = str(VENV_BIN / "python")
VENVS = ROOT / ".venvs"
TARGETS = ("kfp", "airflow", "prefect")


def venv_python(name: str) -> str:
    return str(VENVS / name / "bin" / "python")


# ----------------------------------------------------------------------------------- helpers


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def med(values) -> float:
    return statistics.median(values)


def run_child(cmd: list[str], env: dict | None = None, cwd=None, check: bool = True) -> dict:
    """Run one child process; wall / CPU / peak RSS are its own (wait4), not every child's."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{stdout[-3000:]}\n"
            f"{stderr[-3000:]}"
        )
    return {
        "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mb": ru.ru_maxrss / 1024,  # KiB on Linux
        "code": proc.returncode,
        "stdout": stdout,
        "stderr": stderr,
    }


def base_env(work: Path, bytecode: bool = True) -> dict:
    """Environment of mlpipe / orchestrator child processes: mlpipe's caches inside `work`, and a
    bytecode cache of our own (filled by a warm-up run), as an installed package has its .pyc."""
    env = dict(os.environ)
    env["MLPIPE_CACHE_DIR"] = str(work / "mlpipe-cache")
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


# --baseline: a second copy of mlpipe to alternate with the working tree ("@base" in the tables).
BASELINE: dict = {"shim": None, "spec": None}


def make_baseline(spec: str, dest: Path) -> Path:
    """Lay out mlpipe as the import package `mlpipe` under dest/shim (put first on PYTHONPATH).

    `REV` is the whole tree at that git revision; `REV:PATH,PATH` the working tree with only those
    files as at REV (what a before/after of one change needs, while others edit the tree too)."""
    rev, _, paths = spec.partition(":")
    src = dest / "src"
    parts = ("compiler", "backends", "templates")
    if paths:
        for part in parts:
            shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        for rel in paths.split(","):
            old = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:{rel}"], capture_output=True, check=True
            ).stdout
            (src / rel).write_bytes(old)
    else:
        src.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, *parts], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = dest / "shim" / "mlpipe"
    shutil.copytree(src / "compiler", pkg)
    shutil.copytree(src / "backends", pkg / "backends", dirs_exist_ok=True)
    shutil.copytree(src / "templates", pkg / "templates", dirs_exist_ok=True)
    probe = subprocess.run(
        [PYTHON, "-c", "import mlpipe.backends.kfp, mlpipe; print(mlpipe.__file__)"],
        env=dict(os.environ, PYTHONPATH=str(dest / "shim")),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert probe.startswith(str(pkg)), probe
    return dest / "shim"


def variants() -> list[str]:
    return ["", "@base"] if BASELINE["shim"] else [""]


def with_variant(env: dict, variant: str) -> dict:
    if not variant:
        return env
    path = [str(BASELINE["shim"])] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    return dict(env, PYTHONPATH=os.pathsep.join(path))


def pipeline_dir(work: Path, steps: int, shape: str, *, kfp: bool = False) -> Path:
    """A folder with pipeline.py (v1), src/step.py, mlpipe.yaml and (kfp) kfp_pipeline.py."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "src").mkdir(exist_ok=True)
    (work / "src" / "step.py").write_text(P.STEP_SCRIPT)
    (work / "mlpipe.yaml").write_text(P.MLPIPE_YAML)
    (work / "pipeline.py").write_text(P.v1_pipeline(steps, shape))
    if kfp:
        (work / "kfp_pipeline.py").write_text(P.kfp_dsl_pipeline(steps, shape))
    # Source files older than the stat cache's racy window, as in a real checkout.
    past = time.time() - 60
    for f in (work / "src").iterdir():
        os.utime(f, (past, past))
    return work


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=False))
            )
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


# ----------------------------------------------------------------------------------- compile


def bench_compile(args) -> dict:
    sizes = [int(s) for s in args.sizes.split(",")]
    targets = [t for t in args.targets.split(",") if t]
    tools = [f"mlpipe-{t}{v}" for t in targets for v in variants()]
    tools += [] if args.no_kfp_sdk else ["kfp-sdk"]
    report: dict = {"load_before": load(), "shape": args.shape, "runs": args.runs, "sizes": {}}
    report["baseline"] = BASELINE["spec"]
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-compile-") as tmp:
        for n in sizes:
            work = pipeline_dir(Path(tmp) / f"n{n}", n, args.shape, kfp=True)
            env = base_env(work, bytecode=not args.no_bytecode_cache)

            def cmd(tool: str, run: int, work=work) -> list[str]:
                if tool == "kfp-sdk":
                    return [venv_python("kfp"), "kfp_pipeline.py", f"kfp-{run}.yaml"]
                target = tool.split("-", 1)[1].split("@")[0]
                return [
                    MLPIPE,
                    "compile",
                    "pipeline.py",
                    "--target",
                    target,
                    "-o",
                    f"out-{tool}-{run}",
                ]

            def clean(tool: str, run: int, work=work) -> None:
                shutil.rmtree(work / f"out-{tool}-{run}", ignore_errors=True)
                (work / f"kfp-{run}.yaml").unlink(missing_ok=True)

            runs = args.runs if n <= args.big or args.runs_big is None else args.runs_big
            results: dict[str, list[dict]] = {t: [] for t in tools}
            sizes_out: dict[str, int] = {}

            def env_of(tool: str, env=env) -> dict:
                return with_variant(env, "@base" if tool.endswith("@base") else "")

            for tool in tools:  # warm-up: bytecode caches, stat cache; checks each tool works
                run_child(cmd(tool, -1), env_of(tool), work)
                clean(tool, -1)
            for r in range(runs):
                for tool in rotate(tools, r):
                    res = run_child(cmd(tool, r), env_of(tool), work)
                    results[tool].append({k: res[k] for k in ("wall", "cpu", "rss_mb")})
                    if r == 0:
                        out = work / (f"kfp-{r}.yaml" if tool == "kfp-sdk" else f"out-{tool}-{r}")
                        files = (
                            [out] if out.is_file() else [p for p in out.rglob("*") if p.is_file()]
                        )
                        sizes_out[tool] = sum(p.stat().st_size for p in files)
                    clean(tool, r)
            row = {
                tool: {
                    "wall_s": med(x["wall"] for x in rs),
                    "cpu_s": med(x["cpu"] for x in rs),
                    "rss_mb": max(x["rss_mb"] for x in rs),
                    "output_bytes": sizes_out.get(tool),
                    "runs": [[round(x["wall"], 3), round(x["cpu"], 3)] for x in rs],
                }
                for tool, rs in results.items()
            }
            report["sizes"][str(n)] = row
            print(f"compile: {n} steps done (load {load()})", file=sys.stderr)
    report["load_after"] = load()
    _compile_summary(report)
    return report


def _compile_summary(report: dict) -> None:
    sizes = sorted(int(n) for n in report["sizes"])
    tools = list(report["sizes"][str(sizes[0])])
    print(
        f"\n## compile: whole process, medians of {report['runs']} alternating runs "
        f"({report['shape']} shape; load {report['load_before']} -> {report['load_after']})"
    )
    rows = []
    for n in sizes:
        row = report["sizes"][str(n)]
        kfp_sdk = row.get("kfp-sdk")
        for tool in tools:
            m = row[tool]
            ratio = ratio_cpu = ""
            if kfp_sdk and tool != "kfp-sdk":
                ratio = fmt(m["wall_s"] / kfp_sdk["wall_s"])
                ratio_cpu = fmt(m["cpu_s"] / kfp_sdk["cpu_s"])
            vs_kfp = ""
            same = "mlpipe-kfp" + ("@base" if tool.endswith("@base") else "")
            if tool.startswith(("mlpipe-airflow", "mlpipe-prefect")) and same in row:
                vs_kfp = fmt(m["wall_s"] / row[same]["wall_s"], 2)
            rows.append(
                [
                    n,
                    tool,
                    fmt(m["wall_s"], 2),
                    fmt(m["cpu_s"], 2),
                    fmt(m["wall_s"] / n * 1000, 2),
                    ratio,
                    ratio_cpu,
                    vs_kfp,
                    f"{m['rss_mb']:.0f}",
                ]
            )
    print(
        table(
            [
                "steps",
                "tool",
                "wall s",
                "cpu s",
                "ms/step",
                "/kfp-sdk wall",
                "/kfp-sdk cpu",
                "/mlpipe-kfp",
                "peak MiB",
            ],
            rows,
        )
    )
    if len(sizes) > 1:
        print("\nmarginal CPU per added step (ms): cost between consecutive sizes / added steps")
        rows = []
        for tool in tools:
            cells = [tool]
            for a, b in zip(sizes, sizes[1:], strict=False):
                ca = report["sizes"][str(a)][tool]["cpu_s"]
                cb = report["sizes"][str(b)][tool]["cpu_s"]
                cells.append(fmt((cb - ca) / (b - a) * 1000, 2))
            rows.append(cells)
        print(table(["tool"] + [f"{a}->{b}" for a, b in zip(sizes, sizes[1:], strict=False)], rows))


# ------------------------------------------------------------------------------------ phases

PHASES_CHILD = r"""
import gc, json, sys, time
from pathlib import Path
from mlpipe.capture import capture
from mlpipe.backends.base import compile_pipelines
from importlib.metadata import entry_points

targets = sys.argv[1].split(",")
backends = {ep.name: ep.load() for ep in entry_points(group="mlpipe.backends")}
out = {}
t = time.perf_counter(); result = capture("pipeline.py"); out["capture"] = time.perf_counter() - t
for target in targets:
    backend = backends[target]()
    gc.collect()
    t = time.perf_counter()
    compile_pipelines(backend, result.pipelines, Path.cwd(), Path("out-" + target))
    out[target] = time.perf_counter() - t
print(json.dumps(out))
"""


def bench_phases(args) -> dict:
    sizes = [int(s) for s in args.sizes.split(",")]
    targets = [t for t in args.targets.split(",") if t]
    report: dict = {"load_before": load(), "runs": args.runs, "sizes": {}}
    report["baseline"] = BASELINE["spec"]
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-phases-") as tmp:
        for n in sizes:
            work = pipeline_dir(Path(tmp) / f"n{n}", n, args.shape)
            env = base_env(work)
            runs: dict[str, list[dict]] = {v: [] for v in variants()}
            for r in range(args.runs + 1):  # the first fills the bytecode cache
                for v in rotate(variants(), r):
                    for t in targets:
                        shutil.rmtree(work / f"out-{t}", ignore_errors=True)
                    res = run_child(
                        [PYTHON, "-c", PHASES_CHILD, ",".join(rotate(targets, r))],
                        with_variant(env, v),
                        work,
                    )
                    if r:
                        runs[v].append(json.loads(res["stdout"].strip().splitlines()[-1]))
            report["sizes"][str(n)] = {
                k + v: med(x[k] for x in runs[v]) for v in variants() for k in runs[v][0]
            }
    report["load_after"] = load()
    print(
        f"\n## phases: in one process, medians of {args.runs} runs "
        f"(load {report['load_before']} -> {report['load_after']})"
        + (f"; @base = {BASELINE['spec']}" if BASELINE["spec"] else "")
    )
    sizes = sorted(int(n) for n in report["sizes"])
    keys = list(report["sizes"][str(sizes[0])])
    rows = []
    for k in keys:
        rows.append(
            [k]
            + [
                f"{report['sizes'][str(n)][k]:.3f} s / {report['sizes'][str(n)][k] / n * 1e3:.2f} ms"
                for n in sizes
            ]
        )
    print(table(["phase"] + [f"{n} steps (total / per step)" for n in sizes], rows))
    return report


# ------------------------------------------------------------------------------------- parse


def bench_parse(args) -> dict:
    report: dict = {"load_before": load(), "steps": args.steps, "reps": args.reps}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-parse-") as tmp:
        tmp = Path(tmp)
        work = pipeline_dir(tmp / "pipeline", args.steps, args.shape)
        env = base_env(work)
        for target in ("airflow", "prefect"):
            run_child(
                [MLPIPE, "compile", "pipeline.py", "--target", target, "-o", f"out-{target}"],
                env,
                work,
            )
        generated_dag = work / "out-airflow" / "pipeline.py"
        generated_flow = work / "out-prefect" / "pipeline_flow.py"

        if "airflow" in args.targets:
            home = tmp / "airflow-home"
            aenv = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
            aenv.pop("PYTHONPYCACHEPREFIX", None)
            report["airflow"] = {}
            for mode in ("pyc", "no-pyc"):
                folder = tmp / f"dags-{mode}"
                folder.mkdir()
                shutil.copy(generated_dag, folder / "generated.py")
                (folder / "handwritten.py").write_text(P.airflow_bash_dag(args.steps, args.shape))
                menv = dict(aenv)
                if mode == "no-pyc":
                    menv["PYTHONDONTWRITEBYTECODE"] = "1"
                else:
                    menv.pop("PYTHONDONTWRITEBYTECODE", None)
                    # fill __pycache__ next to the DAG files, as the DAG processor's first parse does
                    run_child(
                        [
                            venv_python("airflow"),
                            str(HERE / "_airflow_parse.py"),
                            "--reps",
                            "1",
                            "--json",
                            str(tmp / "warm.json"),
                            str(folder / "generated.py"),
                            str(folder / "handwritten.py"),
                        ],
                        menv,
                        folder,
                    )
                out = tmp / f"airflow-{mode}.json"
                cmd = [
                    venv_python("airflow"),
                    str(HERE / "_airflow_parse.py"),
                    "--reps",
                    str(args.reps),
                    "--json",
                    str(out),
                    str(folder / "generated.py"),
                    str(folder / "handwritten.py"),
                ]
                if not args.no_serialize:
                    cmd.insert(2, "--serialize")
                run_child(cmd, menv, folder)
                data = json.loads(out.read_text())
                g, h = str(folder / "generated.py"), str(folder / "handwritten.py")
                entry = {
                    "import_airflow_s": data["import_seconds"],
                    "tasks": [data["tasks"][g], data["tasks"][h]],
                    "parse_generated_s": med(data["parse"][g]),
                    "parse_handwritten_s": med(data["parse"][h]),
                    "file_bytes": [Path(g).stat().st_size, Path(h).stat().st_size],
                }
                entry["parse_ratio"] = entry["parse_generated_s"] / entry["parse_handwritten_s"]
                if data["serialize"]:
                    entry["serialize_generated_s"] = med(data["serialize"][g])
                    entry["serialize_handwritten_s"] = med(data["serialize"][h])
                    pg = [
                        a + b for a, b in zip(data["parse"][g], data["serialize"][g], strict=False)
                    ]
                    ph = [
                        a + b for a, b in zip(data["parse"][h], data["serialize"][h], strict=False)
                    ]
                    entry["parse_serialize_ratio"] = med(pg) / med(ph)
                report["airflow"][mode] = entry
                print(f"parse: airflow {mode} done (load {load()})", file=sys.stderr)

        if "prefect" in args.targets:
            report["prefect"] = {}
            penv = dict(os.environ)
            penv.pop("PYTHONPYCACHEPREFIX", None)
            penv["PREFECT_HOME"] = str(tmp / "prefect-home")
            for mode in ("pyc", "no-pyc"):
                folder = tmp / f"flows-{mode}"
                folder.mkdir()
                shutil.copy(generated_flow, folder / "generated_flow.py")
                (folder / "handwritten_flow.py").write_text(P.prefect_flow(args.steps, args.shape))
                files = [str(folder / "generated_flow.py"), str(folder / "handwritten_flow.py")]
                menv = dict(penv)
                if mode == "no-pyc":
                    menv["PYTHONDONTWRITEBYTECODE"] = "1"
                else:
                    menv.pop("PYTHONDONTWRITEBYTECODE", None)
                    run_child(
                        [
                            venv_python("prefect"),
                            str(HERE / "_prefect_import.py"),
                            "--reps",
                            "1",
                            *files,
                        ],
                        menv,
                        folder,
                    )
                res = run_child(
                    [
                        venv_python("prefect"),
                        str(HERE / "_prefect_import.py"),
                        "--reps",
                        str(args.reps),
                        *files,
                    ],
                    menv,
                    folder,
                )
                data = json.loads(res["stdout"].strip().splitlines()[-1])
                g, h = files
                entry = {
                    "import_prefect_s": data["import_seconds"],
                    "task_objects": [data["task_objects"][g], data["task_objects"][h]],
                    "load_generated_s": med(data["load"][g]),
                    "load_handwritten_s": med(data["load"][h]),
                }
                entry["load_ratio"] = entry["load_generated_s"] / entry["load_handwritten_s"]
                report["prefect"][mode] = entry
                print(f"parse: prefect {mode} done (load {load()})", file=sys.stderr)
    report["load_after"] = load()
    print(
        f"\n## parse: {args.steps}-step DAG / flow, medians of {args.reps} alternating repetitions "
        f"in one process (load {report['load_before']} -> {report['load_after']})"
    )
    rows = []
    for mode, e in report.get("airflow", {}).items():
        rows.append(
            [
                "airflow DagBag parse",
                mode,
                fmt(e["parse_generated_s"]),
                fmt(e["parse_handwritten_s"]),
                fmt(e["parse_ratio"], 2),
            ]
        )
        if "serialize_generated_s" in e:
            rows.append(
                [
                    "airflow parse+serialize",
                    mode,
                    fmt(e["parse_generated_s"] + e["serialize_generated_s"]),
                    fmt(e["parse_handwritten_s"] + e["serialize_handwritten_s"]),
                    fmt(e["parse_serialize_ratio"], 2),
                ]
            )
    for mode, e in report.get("prefect", {}).items():
        rows.append(
            [
                "prefect flow module import",
                mode,
                fmt(e["load_generated_s"]),
                fmt(e["load_handwritten_s"]),
                fmt(e["load_ratio"], 2),
            ]
        )
    print(table(["what", "bytecode", "generated s", "hand-written s", "ratio"], rows))
    if "airflow" in report:
        print(f"importing Airflow itself: {report['airflow']['pyc']['import_airflow_s']:.2f} s")
    if "prefect" in report:
        print(f"importing Prefect itself: {report['prefect']['pyc']['import_prefect_s']:.2f} s")
    return report


# ---------------------------------------------------------------------------------- overhead

INPROCESS_CHILD = r"""
import io, json, sys, time
from rich.console import Console
from mlpipe.capture import capture
from mlpipe.local import run_pipeline
ir = capture("pipeline.py").pipelines[0]
quiet = Console(file=io.StringIO())
t = time.perf_counter()
res = run_pipeline(ir, ".", console=quiet, max_parallel=1)
first = time.perf_counter() - t
assert res.ok and set(res.statuses.values()) == {"completed"}, res.statuses
t = time.perf_counter()
res = run_pipeline(ir, ".", console=quiet, max_parallel=1)
reused = time.perf_counter() - t
assert set(res.statuses.values()) == {"reused"}, res.statuses
print(json.dumps({"first": first, "reused": reused}))
"""


def direct_commands(work: Path, n: int, shape: str, python: str) -> list[list[str]]:
    """The scripts of the pipeline run by hand: `python src/step.py ARGS` per step, in order."""
    cmds = []
    for i in range(n):
        argv = [
            python,
            str(work / "src" / "step.py"),
            "--index",
            str(i),
            "--lr",
            "0.1",
            "--out",
            str(work / "direct" / f"out_{i}"),
        ]
        for u in P.upstream(i, shape):
            argv += ["--in", str(work / "direct" / f"out_{u}")]
        cmds.append(argv)
    return cmds


def run_direct(cmds: list[list[str]], env: dict) -> float:
    t0 = time.perf_counter()
    for c in cmds:
        subprocess.run(c, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def fresh_datastore(work: Path) -> None:
    for name in ("data", ".mlpipe", "direct"):
        shutil.rmtree(work / name, ignore_errors=True)


def bench_overhead(args) -> dict:
    n = args.steps
    report: dict = {"load_before": load(), "steps": n, "runs": args.runs, "shape": args.shape}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-overhead-") as tmp:
        work = pipeline_dir(Path(tmp) / "p", n, args.shape)
        env = base_env(work)
        env["BENCH_WORK"] = "0"
        seq = dict(env, MLPIPE_MAX_PARALLEL="1")
        cmds = direct_commands(work, n, args.shape, sys.executable)
        run_child([MLPIPE, "run", "pipeline.py"], seq, work)  # warm-up: bytecode, stat cache
        # The bundle the orchestrators' tasks read, for the run-step CLI measurement.
        run_child(
            [MLPIPE, "compile", "pipeline.py", "--target", "airflow", "-o", "bundle"], env, work
        )
        (bundle_ir,) = (work / "bundle" / ".mlpipe").glob("pipeline.*.json")  # content-addressed
        res: dict[str, list[float]] = {
            k: []
            for k in (
                "direct",
                "run_first",
                "run_reused",
                "inproc_first",
                "inproc_reused",
                "run_step_cli",
            )
        }
        for r in range(args.runs):
            for what in rotate(["direct", "run", "inproc", "cli"], r):
                fresh_datastore(work)
                if what == "direct":
                    res["direct"].append(run_direct(cmds, env))
                elif what == "run":
                    res["run_first"].append(
                        run_child([MLPIPE, "run", "pipeline.py"], seq, work)["wall"]
                    )
                    res["run_reused"].append(
                        run_child([MLPIPE, "run", "pipeline.py"], seq, work)["wall"]
                    )
                elif what == "inproc":
                    out = run_child([PYTHON, "-c", INPROCESS_CHILD], env, work)["stdout"]
                    data = json.loads(out.strip().splitlines()[-1])
                    res["inproc_first"].append(data["first"])
                    res["inproc_reused"].append(data["reused"])
                else:
                    k = min(n, args.cli_steps)
                    t0 = time.perf_counter()
                    for i in range(k):
                        run_child(
                            [
                                PYTHON,
                                "-m",
                                "mlpipe.runtime",
                                "run-step",
                                "--ir",
                                str(bundle_ir),
                                f"--step=step_{i}",
                                f"--run-id=cli-{r}",
                                "--params-json={}",
                                "--regenerate-outputs=false",
                            ],
                            env,
                            work / "bundle",
                        )
                    res["run_step_cli"].append((time.perf_counter() - t0) / k)
            print(f"overhead: run {r + 1}/{args.runs} (load {load()})", file=sys.stderr)
    m = {k: med(v) for k, v in res.items()}
    per_direct = m["direct"] / n
    report.update(
        medians=m,
        all_runs={k: [round(x, 3) for x in v] for k, v in res.items()},
        direct_ms_per_step=per_direct * 1e3,
        run_overhead_ms_per_step=(m["run_first"] - m["direct"]) / n * 1e3,
        inproc_overhead_ms_per_step=(m["inproc_first"] - m["direct"]) / n * 1e3,
        run_step_cli_overhead_ms=(m["run_step_cli"] - per_direct) * 1e3,
        run_reused_fraction=m["run_reused"] / m["run_first"],
        load_after=load(),
    )
    print(
        f"\n## overhead: {n} no-op steps one at a time ({args.shape} shape), medians of {args.runs} "
        f"alternating runs (load {report['load_before']} -> {report['load_after']})"
    )
    print(
        table(
            ["what", "total s", "ms / step", "overhead ms / step"],
            [
                [
                    "direct: python src/step.py ... per step",
                    fmt(m["direct"], 2),
                    fmt(per_direct * 1e3, 1),
                    "",
                ],
                [
                    "mlpipe run (whole process), first",
                    fmt(m["run_first"], 2),
                    fmt(m["run_first"] / n * 1e3, 1),
                    fmt(report["run_overhead_ms_per_step"], 1),
                ],
                [
                    "mlpipe run (whole process), all reused",
                    fmt(m["run_reused"], 2),
                    fmt(m["run_reused"] / n * 1e3, 1),
                    "",
                ],
                [
                    "run_pipeline in process, first",
                    fmt(m["inproc_first"], 2),
                    fmt(m["inproc_first"] / n * 1e3, 1),
                    fmt(report["inproc_overhead_ms_per_step"], 1),
                ],
                [
                    "run_pipeline in process, all reused",
                    fmt(m["inproc_reused"], 2),
                    fmt(m["inproc_reused"] / n * 1e3, 1),
                    "",
                ],
                [
                    "python -m mlpipe.runtime run-step (per task)",
                    "",
                    fmt(m["run_step_cli"] * 1e3, 1),
                    fmt(report["run_step_cli_overhead_ms"], 1),
                ],
            ],
        )
    )
    return report


# ------------------------------------------------------------------------------------- rerun


def bench_rerun(args) -> dict:
    n = args.steps
    report: dict = {
        "load_before": load(),
        "steps": n,
        "runs": args.runs,
        "work_s": args.work,
        "work_kind": args.work_kind,
        "shape": args.shape,
    }
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-rerun-") as tmp:
        work = pipeline_dir(Path(tmp) / "p", n, args.shape)
        env = base_env(work)
        env.update(BENCH_WORK=str(args.work), BENCH_WORK_KIND=args.work_kind)
        if args.parallel:
            env["MLPIPE_MAX_PARALLEL"] = str(args.parallel)
        run_child([MLPIPE, "validate", "pipeline.py"], env, work)  # warm-up: bytecode, stat cache
        first, reused = [], []
        for r in range(args.runs):
            fresh_datastore(work)
            first.append(run_child([MLPIPE, "run", "pipeline.py"], env, work)["wall"])
            reused.append(run_child([MLPIPE, "run", "pipeline.py"], env, work)["wall"])
            print(
                f"rerun: run {r + 1}/{args.runs}: {first[-1]:.1f} s, rerun {reused[-1]:.2f} s "
                f"(load {load()})",
                file=sys.stderr,
            )
    report.update(
        first_s=med(first),
        reused_s=med(reused),
        fraction=med(reused) / med(first),
        all_runs=[[round(a, 3), round(b, 3)] for a, b in zip(first, reused, strict=False)],
        parallel=args.parallel or max(2, os.cpu_count() or 2),
        load_after=load(),
    )
    print(
        f"\n## rerun: `mlpipe run`, {n} steps of {args.work} s {args.work_kind} each "
        f"({args.shape} shape, {report['parallel']} at a time), medians of {args.runs} "
        f"(load {report['load_before']} -> {report['load_after']})"
    )
    print(
        table(
            ["first run s", "reused rerun s", "rerun / first"],
            [[fmt(report["first_s"], 2), fmt(report["reused_s"], 2), fmt(report["fraction"], 3)]],
        )
    )
    return report


# ----------------------------------------------------------------------------------- targets


def run_compiled(drv, pipeline: Path, out: Path):
    """The driver's run of an artifact compiled already (its run() compiles first: skip that)."""
    drv.compile = lambda *a, **k: None
    try:
        return drv.run(pipeline, out)
    finally:
        del drv.compile


def bench_targets(args) -> dict:
    """First run and fully reused rerun on each orchestrator, with the test drivers."""
    os.environ["BENCH_WORK"] = str(args.work)
    os.environ["BENCH_WORK_KIND"] = args.work_kind
    from tests.targets import driver

    n = args.steps
    targets = [t for t in args.targets.split(",") if t]
    report: dict = {
        "load_before": load(),
        "steps": n,
        "runs": args.runs,
        "work_s": args.work,
        "work_kind": args.work_kind,
        "shape": args.shape,
        "targets": {},
    }
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-targets-") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("MLPIPE_CACHE_DIR", str(tmp / "mlpipe-cache"))
        drivers = {t: driver(t) for t in targets}
        # Start what lives across runs before timing (the Airflow interpreter that serves
        # `airflow dags test`, the Prefect API server): a scheduler pays that once, not per run.
        warm = pipeline_dir(tmp / "warm", 1, args.shape)
        if "airflow" in drivers:
            drivers["airflow"].server()
        if "prefect" in drivers:
            drivers["prefect"].server.start()
            drivers["prefect"].server.wait()
        floor: dict[str, list[float]] = {t: [] for t in drivers}
        for t, d in drivers.items():  # warm-up: a 1-step pipeline, run then rerun (reused)
            outcome = d.run(warm / "pipeline.py", tmp / f"warm-out-{t}")
            if not outcome.ok:
                raise SystemExit(f"{t}: warm-up run failed:\n{outcome.log[-3000:]}")
        for _ in range(args.runs):  # what one run costs on the target whatever its steps
            for t, d in drivers.items():
                t0 = time.perf_counter()
                outcome = run_compiled(d, warm / "pipeline.py", tmp / f"warm-out-{t}")
                floor[t].append(time.perf_counter() - t0)
                if not outcome.ok:
                    raise SystemExit(f"{t}: 1-step rerun failed:\n{outcome.log[-3000:]}")
        direct: list[float] = []
        res = {t: {"compile": [], "first": [], "reused": []} for t in drivers}
        for r in range(args.runs):
            for t in rotate(["direct", *drivers], r):
                work = pipeline_dir(tmp / f"{t}-{r}", n, args.shape)
                if t == "direct":
                    env = dict(os.environ)
                    direct.append(
                        run_direct(direct_commands(work, n, args.shape, sys.executable), env)
                    )
                    continue
                out = work / "out"
                t0 = time.perf_counter()
                drivers[t].compile(work / "pipeline.py", out)
                res[t]["compile"].append(time.perf_counter() - t0)
                count = work / "executions.txt"
                os.environ["BENCH_COUNT_FILE"] = str(count)
                for phase in ("first", "reused"):
                    t0 = time.perf_counter()
                    outcome = run_compiled(drivers[t], work / "pipeline.py", out)
                    res[t][phase].append(time.perf_counter() - t0)
                    if not outcome.ok:
                        raise SystemExit(f"{t} {phase} run failed:\n{outcome.log[-4000:]}")
                    ran = count.read_text().split() if count.exists() else []
                    if len(ran) != n:  # first: every step ran once; rerun: none ran again
                        raise SystemExit(f"{t} {phase} run: {len(ran)} step executions, not {n}")
                del os.environ["BENCH_COUNT_FILE"]
                print(
                    f"targets: {t} run {r + 1}/{args.runs}: {res[t]['first'][-1]:.1f} s, "
                    f"rerun {res[t]['reused'][-1]:.1f} s (load {load()})",
                    file=sys.stderr,
                )
    report["direct_s"] = med(direct)
    for t, v in res.items():
        report["targets"][t] = {
            "compile_s": med(v["compile"]),
            "first_s": med(v["first"]),
            "reused_s": med(v["reused"]),
            "fraction": med(v["reused"]) / med(v["first"]),
            "one_step_reused_s": med(floor[t]),
            "reused_ms_per_step": (med(v["reused"]) - med(floor[t])) / max(1, n - 1) * 1e3,
            "first_vs_direct": med(v["first"]) / report["direct_s"],
            "all_runs": [[round(x, 2) for x in row] for row in zip(*v.values(), strict=True)],
        }
    report["load_after"] = load()
    print(
        f"\n## targets: {n} steps of {args.work} s {args.work_kind} ({args.shape} shape), "
        f"compiled once, then run twice through the test drivers, medians of {args.runs} "
        f"(load {report['load_before']} -> {report['load_after']})"
    )
    rows = [["direct (scripts one after another)", "", fmt(report["direct_s"], 1)] + [""] * 5]
    for t, e in report["targets"].items():
        rows.append(
            [
                t,
                fmt(e["compile_s"], 1),
                fmt(e["first_s"], 1),
                fmt(e["first_vs_direct"], 2),
                fmt(e["reused_s"], 1),
                fmt(e["fraction"], 2),
                fmt(e["one_step_reused_s"], 1),
                fmt(e["reused_ms_per_step"], 0),
            ]
        )
    print(
        table(
            [
                "target",
                "compile s",
                "first run s",
                "/ direct",
                "reused rerun s",
                "rerun / first",
                "1-step rerun s",
                "reused ms / step",
            ],
            rows,
        )
    )
    print(
        "1-step rerun: a fully reused run of a 1-step pipeline (what any run costs there); "
        "reused ms / step: (reused rerun - 1-step rerun) / (steps - 1)"
    )
    return report


# -------------------------------------------------------------------------------------- hash

HASH_CHILD = r"""
import json, sys, time
from mlpipe.snapshot import hash_directory
root, cache = sys.argv[1], sys.argv[2]
t = time.perf_counter()
info = hash_directory(root, cache_dir=cache)
print(json.dumps({"seconds": time.perf_counter() - t, "files": info.files, "bytes": info.bytes,
                  "hash": info.hash}))
"""


def make_tree(root: Path, files: int, seed: int = 7) -> tuple[int, int]:
    """A source folder: `files` files in nested folders; mostly small source-like files, some
    larger data files (sizes drawn from a fixed seed). Returns (files, bytes)."""
    rnd = random.Random(seed)
    total = 0
    chunk = os.urandom(1 << 20)
    past = time.time() - 3600
    for i in range(files):
        d = root / f"pkg{i % 20}" / f"mod{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        x = rnd.random()
        if x < 0.80:
            size = rnd.randint(200, 8_000)
        elif x < 0.97:
            size = rnd.randint(8_000, 100_000)
        else:
            size = rnd.randint(200_000, 1_000_000)
        start = rnd.randint(0, len(chunk) - size)
        p = d / f"file{i}.py"
        p.write_bytes(chunk[start : start + size])
        os.utime(p, (past, past))
        total += size
    return files, total


def bench_hash(args) -> dict:
    report: dict = {"load_before": load(), "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-hash-") as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        nfiles, nbytes = make_tree(src, args.files)
        report.update(files=nfiles, bytes=nbytes)
        env = base_env(tmp)
        sha_cmd = ["sh", "-c", "find . -type f -print0 | xargs -0 sha256sum > /dev/null"]

        def mlpipe_hash(cache: str, variant: str) -> float:
            cmd = [PYTHON, "-c", HASH_CHILD, str(src), cache]
            res = run_child(cmd, with_variant(env, variant), tmp)
            data = json.loads(res["stdout"].strip().splitlines()[-1])
            assert data["files"] == nfiles, data
            return data["seconds"]

        run_child(sha_cmd, env, src)  # page cache and bytecode warm-up
        warm = {}
        for v in variants():
            mlpipe_hash("", v)
            warm[v] = str(tmp / f"warm-cache{v}")
            mlpipe_hash(warm[v], v)
        kinds = ["sha256sum"] + [
            k + v for v in variants() for k in ("no_cache", "cold", "unchanged")
        ]
        res: dict[str, list[float]] = {k: [] for k in kinds}
        for r in range(args.runs):
            for what in rotate(kinds, r):
                kind, _, v = what.partition("@")
                v = "@" + v if v else ""
                if kind == "sha256sum":
                    res[what].append(run_child(sha_cmd, env, src)["wall"])
                elif kind == "cold":
                    cache = tmp / f"cold-{r}"
                    res[what].append(mlpipe_hash(str(cache), v))
                    shutil.rmtree(cache, ignore_errors=True)
                elif kind == "no_cache":
                    res[what].append(mlpipe_hash("", v))
                else:
                    res[what].append(mlpipe_hash(warm[v], v))
    m = {k: med(v) for k, v in res.items()}
    report.update(
        medians=m,
        all_runs={k: [round(x, 4) for x in v] for k, v in res.items()},
        baseline=BASELINE["spec"],
        load_after=load(),
    )
    mb = nbytes / 2**20
    print(
        f"\n## hash: {nfiles} files, {mb:.1f} MiB, medians of {args.runs} alternating runs "
        f"(load {report['load_before']} -> {report['load_after']})"
    )
    labels = {
        "sha256sum": "find | xargs sha256sum",
        "no_cache": "hash_directory, no cache",
        "cold": "hash_directory, empty cache (fills it)",
        "unchanged": "hash_directory, nothing changed (cache)",
    }
    rows = []
    for k in kinds:
        kind, _, v = k.partition("@")
        label = labels[kind] + (f" [{BASELINE['spec']}]" if v else "")
        rows.append([label, fmt(m[k]), f"{mb / m[k]:.0f}", fmt(m["sha256sum"] / m[k], 2)])
    print(table(["what", "seconds", "MiB/s", "throughput vs sha256sum"], rows))
    return report


# -------------------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", help="also write every number (and each run) as JSON here")
    ap.add_argument(
        "--baseline",
        metavar="REV[:PATH,...]",
        help="also measure mlpipe as at git revision REV (only PATHs from REV, the rest from the\n"
        "working tree, when given), alternating with the working tree: rows marked @base\n"
        "(compile, phases, hash)",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, shape="mixed"):
        p.add_argument("--shape", choices=("mixed", "chain"), default=shape)

    p = sub.add_parser("compile", help="compile time and peak memory vs the kfp SDK")
    p.add_argument("--sizes", default="10,100,1000,5000")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--runs-big", type=int, default=None, help="runs for sizes above --big")
    p.add_argument("--big", type=int, default=1000)
    p.add_argument("--no-kfp-sdk", action="store_true")
    p.add_argument("--no-bytecode-cache", action="store_true")
    common(p)

    p = sub.add_parser("phases", help="capture / backend times in one process")
    p.add_argument("--sizes", default="100,1000,5000")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--runs", type=int, default=3)
    common(p)

    p = sub.add_parser("parse", help="Airflow DagBag parse and Prefect flow import")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--targets", default="airflow,prefect")
    p.add_argument("--no-serialize", action="store_true")
    common(p)

    p = sub.add_parser(
        "overhead", help="mlpipe run per-step overhead over the scripts run directly"
    )
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cli-steps", type=int, default=10)
    common(p)

    p = sub.add_parser("rerun", help="fully reused local rerun vs the first run")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--work", type=float, default=1.0, help="seconds of work per step")
    p.add_argument("--work-kind", choices=("sleep", "cpu"), default="sleep")
    p.add_argument("--parallel", type=int, default=0, help="MLPIPE_MAX_PARALLEL (0: default)")
    p.add_argument("--runs", type=int, default=3)
    common(p)

    p = sub.add_parser("targets", help="first run and reused rerun on each orchestrator")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--work", type=float, default=1.0)
    p.add_argument("--work-kind", choices=("sleep", "cpu"), default="sleep")
    p.add_argument("--targets", default="local,airflow,prefect,kfp")
    p.add_argument("--runs", type=int, default=2)
    common(p)

    p = sub.add_parser("hash", help="snapshot hashing vs sha256sum")
    p.add_argument("--files", type=int, default=5000)
    p.add_argument("--runs", type=int, default=5)

    p = sub.add_parser("all", help="every benchmark with its defaults (--quick: smaller)")
    p.add_argument("--quick", action="store_true")

    args = ap.parse_args()
    started = time.time()
    tmp_base = None
    if args.baseline:
        tmp_base = tempfile.TemporaryDirectory(prefix="mlpipe-bench-baseline-")
        BASELINE.update(shim=make_baseline(args.baseline, Path(tmp_base.name)), spec=args.baseline)
    if args.cmd == "all":
        results = run_all(ap, args.quick)
    else:
        fn = globals()[f"bench_{args.cmd}"]
        results = {args.cmd: fn(args)}
    meta = {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
    }
    print(f"\n(total {meta['seconds']} s on {meta['cores']} cores)")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, **results}, indent=1, default=str))
    return 0


def run_all(ap: argparse.ArgumentParser, quick: bool) -> dict:
    plan = {
        "compile": ["compile"]
        + (["--sizes", "10,100,1000", "--runs", "3"] if quick else ["--runs-big", "3"]),
        "phases": ["phases"] + (["--sizes", "100,1000", "--runs", "2"] if quick else []),
        "parse": ["parse"] + (["--reps", "5"] if quick else []),
        "overhead": ["overhead"] + (["--runs", "3"] if quick else []),
        "rerun": ["rerun"] + (["--steps", "20", "--runs", "2"] if quick else []),
        "targets": ["targets"] + (["--runs", "1"] if quick else []),
        "hash": ["hash"] + (["--files", "2000", "--runs", "3"] if quick else []),
    }
    results = {}
    for name, argv in plan.items():
        results[name] = globals()[f"bench_{name}"](ap.parse_args(argv))
    return results


if __name__ == "__main__":
    raise SystemExit(main())
