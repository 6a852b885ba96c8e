"""The same pipelines on every target: same outputs, same arguments, same reuse decisions.

Each scenario is written once and runs through a driver per target (tests/targets/): the local
runner, `airflow dags test`, the generated Prefect flow, and kfp.local. What ran is observed
through the files the step scripts write (their executions log and outputs), never through
mlpipe's own report.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.targets import driver

TARGETS = ["local", "airflow", "prefect", "kfp"]
FIXTURES = Path(__file__).resolve().parents[1] / "pipelines"


def by_target(fn):
    """Parametrise over targets; each target's runs stay on one xdist worker (one Airflow DB,
    one Prefect server per session)."""
    params = [
        pytest.param(
            t,
            marks=[pytest.mark.xdist_group(t)]
            + ([] if t == "local" else [pytest.mark.integration]),
        )
        for t in TARGETS
    ]
    return pytest.mark.parametrize("target", params)(fn)


# ------------------------------------------------------------------------------------- helpers


def executions(pipeline: Path) -> list[str]:
    log = pipeline.parent / "data" / "executions.log"
    return log.read_text().split() if log.exists() else []


def run(target: str, pipeline: Path, out: Path, **kw):
    """Run once; return (outcome, the steps that really executed in this run)."""
    before = executions(pipeline)
    outcome = driver(target).run(pipeline, out, **kw)
    after = executions(pipeline)
    assert after[: len(before)] == before
    return outcome, after[len(before) :]


def _tree_digest(path: Path) -> dict[str, str]:
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        f.relative_to(path).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.rglob("*"))
        if f.is_file()
    }


def outputs_of_single_run(pipeline: Path) -> dict:
    """{step: {output: {file: sha256}}} of the one run made in this copy, hashed from the files."""
    runs = pipeline.parent / "data" / ".mlpipe" / "runs"
    run_dirs = [d for d in runs.iterdir() if d.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    result = {}
    for record in sorted((run_dirs[0] / "steps").glob("*.json")):
        data = json.loads(record.read_text())
        result[record.stem] = {
            name: _tree_digest(Path(o["url"].removeprefix("file://")))
            for name, o in data["outputs"].items()
        }
    return result


_LOCAL_REFERENCE: dict = {}


def local_reference(pipeline_copy, name: str, params: dict | None = None) -> dict:
    key = (name, json.dumps(params or {}, sort_keys=True))
    if key not in _LOCAL_REFERENCE:
        p = pipeline_copy(name, dest=f"local-ref-{len(_LOCAL_REFERENCE)}")
        outcome, _ = run("local", p, p.parent / "out", params=params)
        assert outcome.ok, outcome.log
        _LOCAL_REFERENCE[key] = outputs_of_single_run(p)
    return _LOCAL_REFERENCE[key]


# ----------------------------------------------------------------------------------- scenarios


@by_target
def test_seed_sample_gives_the_local_runners_outputs(target, pipeline_copy, tmp_path):
    p = pipeline_copy("seed_pipeline")
    outcome, ran = run(target, p, tmp_path / "out")
    assert outcome.ok, outcome.log
    digest = outputs_of_single_run(p)
    assert set(digest) == {"prepare.py", "train.py", "compare", "iris_train"}
    assert all(files for outputs in digest.values() for files in outputs.values())
    assert digest == local_reference(pipeline_copy, "seed_pipeline")


@by_target
def test_chain_with_closure_and_run_after_keeps_its_order(target, pipeline_copy, tmp_path):
    p = pipeline_copy("chain_closure")
    outcome, ran = run(target, p, tmp_path / "out")
    assert outcome.ok, outcome.log
    assert ran == ["a", "b", "c", "d"]
    assert outputs_of_single_run(p) == local_reference(pipeline_copy, "chain_closure")


@by_target
def test_fanout_fanin_with_typed_parameter_overrides(target, pipeline_copy, tmp_path):
    p = pipeline_copy("fanout_fanin")
    outcome, ran = run(target, p, tmp_path / "out", params={"epochs": 5})
    assert outcome.ok, outcome.log
    assert ran[0] == "split" and ran[-1] == "merge"
    assert sorted(ran[1:-1]) == [f"work_{i}" for i in range(4)]
    digest = outputs_of_single_run(p)
    expected = (FIXTURES / "fanout_fanin" / "expected" / "epochs_5" / "merged.json").read_bytes()
    assert digest["merge"]["merged"] == {"merged.json": hashlib.sha256(expected).hexdigest()}
    assert digest == local_reference(pipeline_copy, "fanout_fanin", {"epochs": 5})


@by_target
def test_hostile_arguments_arrive_byte_exact(target, pipeline_copy, tmp_path):
    p = pipeline_copy("hostile_args")
    pwned = Path("/tmp/mlpipe_hostile_args_pwned")
    if pwned.exists():
        pwned.unlink()
    outcome, ran = run(target, p, tmp_path / "out")
    assert outcome.ok, outcome.log
    digest = outputs_of_single_run(p)
    files = [f for outputs in digest["echo_args"].values() for f in outputs.items()]
    expected = (FIXTURES / "hostile_args" / "expected_args.json").read_bytes()
    assert ("args.json", hashlib.sha256(expected).hexdigest()) in files
    assert not pwned.exists()
    assert "pwned\n" not in outcome.log.replace("echo pwned", "")


@by_target
def test_commandstep_parameter_is_overridden(target, pipeline_copy, tmp_path):
    """A CommandStep whose command list holds a PipelineParameter gets the run's value."""
    p = pipeline_copy("commandstep")
    outcome, ran = run(target, p, tmp_path / "out", params={"n": 5})
    assert outcome.ok, outcome.log
    assert sorted(ran) == ["check", "hello", "shout"]
    digest = outputs_of_single_run(p)
    body = json.dumps({"first": "hello #1", "greetings": 5, "last": "hello #5"}, sort_keys=True)
    expected = hashlib.sha256((body + "\n").encode()).hexdigest()
    assert digest["check"]["checked"] == {"check.json": expected}
    assert digest == local_reference(pipeline_copy, "commandstep", {"n": 5})


@by_target
def test_reuse_decisions(target, pipeline_copy, tmp_path):
    p = pipeline_copy("reuse")
    out = tmp_path / "out"

    def step_runs(**kw):
        outcome, ran = run(target, p, out, **kw)
        assert outcome.ok, outcome.log
        return sorted(ran)

    assert step_runs() == ["other", "prep", "report", "train"]
    assert step_runs() == ["report"]
    settings = p.parent / "train_src" / "settings.json"
    settings.write_text(settings.read_text().rstrip() + "\n\n")
    assert step_runs() == ["report", "train"]
    values = p.parent / "data" / "reuse_input" / "values.csv"
    values.write_text(values.read_text() + "central,7\n")
    assert step_runs() == ["prep", "report", "train"]
    assert step_runs(regenerate=True) == ["other", "prep", "report", "train"]


@by_target
def test_failing_step_stops_its_downstream_and_recovers(target, pipeline_copy, tmp_path):
    p = pipeline_copy("failing_step")
    out = tmp_path / "out"
    outcome, ran = run(target, p, out)
    assert not outcome.ok
    assert "failing on purpose" in outcome.log
    assert sorted(ran) == ["a", "b", "x"]
    # b's partial output was not published, and nothing of b is reusable
    (p.parent / "b_src" / "mode.txt").write_text("ok\n")
    outcome, ran = run(target, p, out)
    assert outcome.ok, outcome.log
    assert sorted(ran) == ["b", "c"]


def test_every_target_has_a_driver():
    for t in TARGETS:
        assert driver(t).name == t
    assert os.path.isdir(FIXTURES)
