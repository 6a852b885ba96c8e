"""Fuzz: generated v1 pipelines through capture, the runtime's argument path and every target's
own loader, with a count of what happened.

    .venv/bin/python benchmarks/fuzz.py                      # 10,000 cases, every target
    .venv/bin/python benchmarks/fuzz.py --cases 500 --targets kfp --seed 7
    .venv/bin/python benchmarks/fuzz.py --json fuzz.json --keep-failures /tmp/fuzz-failures
    .venv/bin/python benchmarks/fuzz.py --jobs 2              # two processes, seeds 0 and 1

Each case comes from tests/reliability/strategies.py (half with plain names, half with hostile
step / parameter / experiment names): it is written as a v1 pipeline file, captured in-process, its
IR checked and round-tripped, the argv of every step computed by the runtime and compared with the
drawn values; then it is compiled for each target and loaded by that target's loader (a long-lived
process in `.venvs/<target>`: Airflow's DagBag + DAG serialization + the task's own command line,
Prefect's prefect.yaml model + flow entrypoint + the tasks' command lines, kfp's component loader +
each executor's call into the runtime), and the argv is computed again from what the artifact hands
the runtime. Every `--run-every`-th case is also run for real by the local runner (the echo script
records what it received).

Outcomes per target: `ok`, `refused` (a clean `pipeline.py:LINE: message` compile error, what the
CLI turns into exit status 2) or a failure kind (`<target>-load`, `<target>-argv`, ...). A failing
case's pipeline file is kept under --keep-failures. Numbers only: this never asserts.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.reliability import strategies as S  # noqa: E402


class Tally:
    def __init__(self, targets: list[str], keep: Path | None):
        self.targets = targets
        self.keep = keep
        self.cases = 0
        self.capture = collections.Counter()
        self.local_runs = collections.Counter()
        self.per_target = {t: collections.Counter() for t in targets}
        self.refusals = {t: collections.Counter() for t in targets}
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        self.seconds = collections.Counter()

    def failure(self, kind: str, detail: str, case_dir: Path) -> None:
        kept = ""
        if self.keep is not None and len(self.examples[kind]) < 5:
            dest = self.keep / f"{kind}-{len(self.examples[kind])}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(case_dir, dest, ignore=shutil.ignore_patterns("out-*", ".mlpipe"))
            kept = f" (kept in {dest})"
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(detail[:600] + kept)

    def report(self) -> dict:
        return {
            "cases": self.cases,
            "capture": dict(self.capture),
            "local_runs": dict(self.local_runs),
            "targets": {t: dict(self.per_target[t]) for t in self.targets},
            "refusals": {t: dict(self.refusals[t].most_common(10)) for t in self.targets},
            "failure_examples": dict(self.examples),
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }


def _refusal_kind(message: str) -> str:
    """A short label for a clean compile error (the message without names and line)."""
    text = message.split(": ", 2)[-1] if message.count(": ") >= 2 else message
    for word in ("both become", "reserved", "clashes", "too large", "limit", "precision"):
        if word in text:
            return word
    return text[:60]


def local_run(captured: S.Captured, cache: Path) -> str | None:
    """Run the case with the local runner; None when every step received the drawn values."""
    from rich.console import Console

    from mlpipe.local import run_pipeline

    console = Console(file=io.StringIO(), width=200)
    result = run_pipeline(
        captured.pipeline, captured.path.parent, console=console, cache_dir=str(cache)
    )
    if not result.ok:
        return f"local run failed: {result.statuses}"
    for j, spec in enumerate(captured.case.steps):
        outcome = result.steps[spec.name].result
        url = outcome.outputs[S.output_name(j)]["url"]
        got = json.loads(Path(url, "args.json").read_text(encoding="utf-8"))["argv"]
        want = captured.case.expected_args(spec)
        if got != want:
            return f"step {spec.name!r}: received {got!r}, want {want!r}"
    return None


def run_jobs(args) -> int:
    """Split the cases over `args.jobs` processes (seeds seed, seed+1, ...) and add up."""
    import subprocess

    work = Path(tempfile.mkdtemp(prefix="mlpipe-fuzz-jobs-"))
    per_job = -(-args.cases // args.jobs)
    procs = []
    for k in range(args.jobs):
        cmd = [sys.executable, __file__, "--cases", str(per_job), "--targets", args.targets]
        cmd += ["--seed", str(args.seed + k), "--run-every", str(args.run_every)]
        cmd += ["--restart-every", str(args.restart_every), "--json", str(work / f"{k}.json")]
        if args.keep_failures:
            cmd += ["--keep-failures", str(args.keep_failures / f"job-{k}")]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
    codes = [p.wait() for p in procs]
    reports = [json.loads((work / f"{k}.json").read_text()) for k in range(args.jobs)]
    merged: dict = {"cases": 0, "jobs": args.jobs, "exit_codes": codes}
    for rep in reports:
        merged["cases"] += rep["cases"]
        for key in ("capture", "local_runs", "seconds"):
            acc = collections.Counter(merged.get(key, {}))
            acc.update(rep[key])
            merged[key] = dict(acc)
        for key in ("targets", "refusals"):
            for target, counts in rep[key].items():
                acc = collections.Counter(merged.setdefault(key, {}).get(target, {}))
                acc.update(counts)
                merged[key][target] = dict(acc)
        for kind, examples in rep["failure_examples"].items():
            merged.setdefault("failure_examples", {}).setdefault(kind, []).extend(examples[:2])
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(merged, indent=1, ensure_ascii=True))
    if args.json:
        args.json.write_text(json.dumps(merged, indent=1, ensure_ascii=True) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--targets", default=",".join(S.TARGETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-every", type=int, default=50, help="local run of every N-th case")
    ap.add_argument("--restart-every", type=int, default=2000, help="fresh loaders every N")
    ap.add_argument("--json", type=Path, default=None, help="write the report here")
    ap.add_argument("--keep-failures", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (own loaders each)")
    args = ap.parse_args()
    if args.jobs > 1:
        return run_jobs(args)
    targets = [t for t in args.targets.split(",") if t]
    work = Path(tempfile.mkdtemp(prefix="mlpipe-fuzz-"))
    cache = work / "cache"
    os.environ["MLPIPE_CACHE_DIR"] = str(cache)
    if args.keep_failures:
        args.keep_failures.mkdir(parents=True, exist_ok=True)
    tally = Tally(targets, args.keep_failures)
    loaders = {t: S.Loader(t) for t in targets}
    t_start = time.monotonic()
    for loader in loaders.values():
        loader.start(wait=False)  # the orchestrators import side by side
    for loader in loaders.values():
        loader.start()
    tally.seconds["loaders-start"] += time.monotonic() - t_start
    # The previous case waits here while its loaders work and the next case compiles.
    pending: list = []

    def finish(item) -> None:
        captured, case_dir, sent = item
        for target, out in sent:
            t0 = time.monotonic()
            answer = loaders[target].receive(out)
            try:
                S.CHECKS[target](captured, out, answer)
                tally.per_target[target]["ok"] += 1
            except S.CaseFailure as exc:
                tally.per_target[target][exc.kind] += 1
                tally.failure(exc.kind, exc.detail, case_dir)
            tally.seconds[f"{target}-load+check"] += time.monotonic() - t0
        shutil.rmtree(case_dir, ignore_errors=True)

    mixed = st.one_of(S.cases(hostile_names_=False), S.cases(hostile_names_=True))

    @settings(
        settings.get_profile("mlpipe-ci"),
        max_examples=args.cases,
        derandomize=False,
        phases=[Phase.generate],
    )
    @seed(args.seed)
    @given(case=mixed)
    def one(case):
        tally.cases += 1
        n = tally.cases
        case_dir = work / f"case-{n}"
        path = S.write_case(case, case_dir)
        t0 = time.monotonic()
        try:
            captured = S.capture_case(case, path)
            S.check_argv(case, captured.ir, {}, "runtime")
        except S.CaseFailure as exc:
            tally.capture[exc.kind] += 1
            tally.failure(exc.kind, exc.detail, case_dir)
            shutil.rmtree(case_dir, ignore_errors=True)
            return
        finally:
            tally.seconds["capture+argv"] += time.monotonic() - t0
        tally.capture["ok"] += 1
        if args.run_every and n % args.run_every == 0:
            t0 = time.monotonic()
            try:
                problem = local_run(captured, cache)
            except Exception as exc:  # noqa: BLE001
                problem = f"{type(exc).__name__}: {exc}"
            tally.local_runs["ok" if problem is None else "failed"] += 1
            if problem is not None:
                tally.failure("local-run", problem, case_dir)
            tally.seconds["local-run"] += time.monotonic() - t0
        sent = []
        for target in targets:
            out = case_dir / f"out-{target}"
            t0 = time.monotonic()
            try:
                refused = S.compile_case(captured, target, out)
            except S.CaseFailure as exc:
                tally.per_target[target][exc.kind] += 1
                tally.failure(exc.kind, exc.detail, case_dir)
                continue
            finally:
                tally.seconds[f"{target}-compile"] += time.monotonic() - t0
            if refused is not None:
                if case.hostile_names:
                    key = "refused"
                elif not case.portable:
                    key = "refused-nonportable"
                else:  # plain names and portable values: nothing to refuse
                    key = "refused-unexpected"
                    tally.failure(key, refused, case_dir)
                tally.per_target[target][key] += 1
                tally.refusals[target][_refusal_kind(refused)] += 1
                continue
            sent.append((target, out))
        # The loaders have been working on the previous case while this one compiled: collect
        # those answers first, so that each loader has nothing outstanding when it is restarted
        # or sent the next folder (answers come back in request order).
        if pending:
            finish(pending.pop())
        for target, out in sent:
            if args.restart_every and loaders[target].requests >= args.restart_every:
                loaders[target].stop()
                loaders[target].requests = 0
            loaders[target].send(out)
        pending.append((captured, case_dir, sent))
        if n % 500 == 0:
            rate = n / (time.monotonic() - t_start)
            print(f"  {n} cases, {rate:.1f}/s", file=sys.stderr, flush=True)

    try:
        one()
        if pending:
            finish(pending.pop())
    finally:
        for loader in loaders.values():
            loader.close()
        shutil.rmtree(work, ignore_errors=True)
    tally.seconds["total"] = time.monotonic() - t_start
    report = tally.report()
    print(json.dumps(report, indent=1, ensure_ascii=True))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
