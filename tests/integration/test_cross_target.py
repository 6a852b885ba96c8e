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
import subprocess
from pathlib import Path

import pytest

from tests import chromium
from tests.targets import MLPIPE, driver

TARGETS = ["local", "airflow", "airflow2", "prefect", "kfp"]
# Airflow 2.10 runs the same DAG file, which records its runner as "airflow".
RUNNER_OF = {"airflow2": "airflow"}
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
def test_nested_step_lists_and_sequences_keep_their_order(target, pipeline_copy, tmp_path):
    p = pipeline_copy("nested_lists")
    outcome, ran = run(target, p, tmp_path / "out")
    assert outcome.ok, outcome.log
    assert sorted(ran) == ["s1", "s2", "s3", "seq_a", "seq_b", "seq_c", "seq_d"]
    assert max(ran.index("seq_a"), ran.index("seq_b")) < ran.index("seq_c") < ran.index("seq_d")


@by_target
def test_output_file_dataset_config_forms_give_the_local_outputs(target, pipeline_copy, tmp_path):
    p = pipeline_copy("ofdc_as_input")
    outcome, ran = run(target, p, tmp_path / "out")
    assert outcome.ok, outcome.log
    assert ran[0] == "produce"
    assert sorted(ran[1:]) == ["read_default", "read_named", "read_tabular", "read_uploaded"]
    assert outputs_of_single_run(p) == local_reference(pipeline_copy, "ofdc_as_input")


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


# An override of each parameter type, as a run on each target gives it (typed JSON; the local
# driver passes NAME=str(value)): the script must get str() of the typed value, byte for byte.
OVERRIDES = {
    "hostile_param": 'an "override" {{ x }} {% y %} $(id) `id` \\ ünïcødé ✓  ',
    "count": 2**53 - 1,  # the largest integer every target (KFP: a double) carries exactly
    "ratio": 0.1,
    "flag": False,
}


def args_received(pipeline: Path) -> bytes:
    runs = pipeline.parent / "data" / ".mlpipe" / "runs"
    (record,) = runs.glob("*/steps/echo_args.json")
    url = json.loads(record.read_text())["outputs"]["args_out"]["url"]
    return (Path(url.removeprefix("file://")) / "args.json").read_bytes()


@by_target
def test_an_override_of_every_parameter_type_arrives_byte_exact(target, pipeline_copy, tmp_path):
    p = pipeline_copy("hostile_args")
    outcome, ran = run(target, p, tmp_path / "out", params=OVERRIDES)
    assert outcome.ok, outcome.log
    expected = json.loads((FIXTURES / "hostile_args" / "expected_args.json").read_bytes())
    expected[-4:] = [OVERRIDES["hostile_param"], "9007199254740991", "0.1", "False"]
    assert args_received(p) == (json.dumps(expected, ensure_ascii=False, indent=1) + "\n").encode()


NEW = "no earlier run"
ALWAYS = "allow_reuse=False"


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
    """Which steps run after which change, and the reason each step's log line gives for it;
    then `mlpipe runs` lists the runs and `mlpipe report` draws the one after the edit."""
    p = pipeline_copy("reuse")
    out = tmp_path / "out"

    def step_runs(reasons: dict[str, str], **kw):
        outcome, ran = run(target, p, out, **kw)
        assert outcome.ok, outcome.log
        for step in ("prep", "train", "report", "other"):
            if step in reasons:
                line = f"mlpipe: step '{step}' running ({reasons[step]}; fingerprint"
            else:
                line = f"mlpipe: step '{step}' reused from run "
            assert line in outcome.log, f"{target}: no line {line!r} in:\n{outcome.log}"
        return sorted(ran)

    assert step_runs({"prep": NEW, "train": NEW, "report": ALWAYS, "other": NEW}) == [
        "other",
        "prep",
        "report",
        "train",
    ]
    assert step_runs({"report": ALWAYS}) == ["report"]
    settings = p.parent / "train_src" / "settings.json"
    settings.write_text(settings.read_text().rstrip() + "\n\n")
    edited = {"train": "source changed: settings.json", "report": ALWAYS}
    assert step_runs(edited) == ["report", "train"]
    values = p.parent / "data" / "reuse_input" / "values.csv"
    values.write_text(values.read_text() + "central,7\n")
    new_input = {
        "prep": "input raw changed: values.csv",
        "train": "output of upstream step prep changed",
        "report": ALWAYS,
    }
    assert step_runs(new_input) == ["prep", "report", "train"]
    new_param = {"train": "parameter epochs: 41 → 42", "report": ALWAYS}
    assert step_runs(new_param, params={"epochs": 42}) == ["report", "train"]
    regenerate = dict.fromkeys(["prep", "train", "other"], "regenerate_outputs")
    assert step_runs({**regenerate, "report": ALWAYS}, regenerate=True) == [
        "other",
        "prep",
        "report",
        "train",
    ]
    check_history(target, p, tmp_path)


def mlpipe(*args: str, cwd: Path) -> str:
    proc = subprocess.run([MLPIPE, *args], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def check_history(target: str, p: Path, tmp_path: Path) -> None:
    """`mlpipe runs` of the reuse scenario's six runs, and the report of the run after the edit."""
    runs = json.loads(mlpipe("runs", str(p), "--json", cwd=p.parent))
    assert [(r["runner"], r["status"], r["pipeline"]) for r in runs] == [
        (RUNNER_OF.get(target, target), "succeeded", "reuse")
    ] * 6
    counts = [(r["steps"]["ran"], r["steps"]["reused"], r["steps"]["failed"]) for r in runs]
    # newest first: regenerate, epochs=42, new input, edited source, unchanged, first
    assert counts == [(4, 0, 0), (2, 2, 0), (3, 1, 0), (2, 2, 0), (1, 3, 0), (4, 0, 0)]
    after_edit = runs[3]["run_id"]
    report = tmp_path / "report.html"
    mlpipe("report", after_edit, str(p), "-o", str(report), cwd=p.parent)
    _, text = chromium.dom_text(report, tmp_path)
    assert f"Run {after_edit} succeeded" in text
    assert "Why: source changed: settings.json" in text
    html = report.read_text(encoding="utf-8")
    assert html.count('class="node"') == 4 and html.count('class="edge"') == 2
    if target == "local":  # one look at the pixels is enough: the page is the same on every target
        colours = chromium.colour_census(chromium.screenshot(report, tmp_path))
        assert colours.get(b"\xff\xff\xff", 0) < 0.9 * sum(colours.values())
        assert colours.get(bytes.fromhex("dcfce7"), 0) > 200  # nodes of steps that ran
        assert colours.get(bytes.fromhex("dbeafe"), 0) > 200  # nodes of reused steps


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
