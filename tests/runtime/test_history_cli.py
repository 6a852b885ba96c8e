"""`mlpipe runs`, `mlpipe show` and `mlpipe report` over the records the runs left."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from test_why import build, seed
from typer.testing import CliRunner

from mlpipe.cli import app
from mlpipe.runtime.state import safe_name
from tests import chromium


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def fake_run(ds: Path, run_id: str, steps: dict[str, str], runner: str, cancel: bool = False):
    """A run as another runner leaves it: step records only (and cancel.json when canceled)."""
    folder = ds / ".mlpipe" / "runs" / run_id
    (folder / "steps").mkdir(parents=True)
    now = time.time() + 100  # newer than the real runs
    for i, (name, status) in enumerate(steps.items()):
        rec = {"run_id": run_id, "step": name, "pipeline": "why", "runner": runner}
        rec.update(status=status, started=now + i, upstream=[] if i == 0 else ["prep"])
        if status != "running":
            rec.update(finished=now + i + 2, duration=2.0)
        (folder / "steps" / f"{name}.json").write_text(json.dumps(rec))
    if cancel:
        (folder / "cancel.json").write_text("{}")


@pytest.fixture
def history(world, monkeypatch):
    w = world
    seed(w)
    (w.base / "mlpipe.yaml").write_text("datastores:\n  workspaceblobstore: ./ds\n")
    runs = [w.run(build(w)), w.run(build(w))]
    (w.base / "train_src" / "utils" / "io.py").write_text("x = 2\n")
    runs.append(w.run(build(w)))
    runs.append(w.run(build(w), params={"lr": 9.0}))
    monkeypatch.chdir(w.base)
    return w, runs


def test_runs_lists_every_runner_newest_first(history):
    w, runs = history
    fake_run(
        w.ds,
        "manual__2026-12-01T10_00_00",
        {"prep": "completed", "train": "canceled"},
        "airflow",
        cancel=True,
    )
    time.sleep(0.01)
    fake_run(w.ds, "kfp-run-2", {"prep": "reused", "train": "running"}, "kfp")
    listed = json.loads(cli("runs", "--json"))
    assert [r["run_id"] for r in listed] == [
        "kfp-run-2",
        "manual__2026-12-01T10_00_00",
        *[r.run_id for r in reversed(runs)],
    ]
    assert [(r["runner"], r["status"]) for r in listed] == [
        ("kfp", "running"),
        ("airflow", "canceled"),
        ("local", "failed"),
        ("local", "succeeded"),
        ("local", "succeeded"),
        ("local", "succeeded"),
    ]
    counts = [(r["steps"]["ran"], r["steps"]["reused"], r["steps"]["failed"]) for r in listed]
    assert counts[2:] == [(0, 1, 1), (1, 1, 0), (0, 2, 0), (2, 0, 0)]
    assert listed[1]["steps"]["canceled"] == 1
    table = cli("runs")
    assert table.splitlines()[0].split() == [
        "RUN",
        "PIPELINE",
        "RUNNER",
        "STARTED",
        "(UTC)",
        "DURATION",
        "STATUS",
        "RAN",
        "REUSED",
        "FAILED",
    ]
    assert re.search(r"manual__2026-12-01T10_00_00\s+why\s+Airflow\s+.*canceled", table)
    assert re.search(rf"{runs[2].run_id}\s+why\s+local\s+.*succeeded\s+1\s+1\s+0", table)
    assert len(cli("runs", "--limit", "2").splitlines()) == 3


def test_show_says_why_each_step_ran(history):
    w, runs = history
    text = cli("show", runs[2].run_id)
    assert "pipeline why on local: succeeded" in text
    assert "train: ran in" in text
    assert "why: source changed: utils/io.py" in text
    assert f"why: reused from run {runs[0].run_id}" in text
    assert "output model: ds/dataset/" in text
    assert f"log ds/.mlpipe/runs/{runs[2].run_id}/logs/train.stdout.log" in text
    failed = cli("show", runs[3].run_id[:-3])  # a unique prefix is enough
    assert "train: failed" in failed and "why: parameter lr: 0.5 → 9.0" in failed
    assert "lr 9.0 is far too high" in failed
    doc = json.loads(cli("show", runs[3].run_id, "--json"))
    assert {s["step"]: s["status"] for s in doc["steps"]} == {"prep": "reused", "train": "failed"}


def test_an_airflow_run_is_found_by_the_id_as_airflow_shows_it(history, tmp_path, monkeypatch):
    """Its folder name replaces ':' and '+' (plus a hash); a prefix typed from Airflow's UI
    still finds it, also when the workers' datastore is elsewhere (their override)."""
    w, runs = history
    run_id = "manual__2026-12-02T07:30:01.123+00:00"
    elsewhere = tmp_path / "worker-ds"
    fake_run(elsewhere, safe_name(run_id), {"prep": "completed"}, "airflow")
    monkeypatch.setenv("MLPIPE_DATASTORE_WORKSPACEBLOBSTORE", str(elsewhere))
    assert [r["run_id"] for r in json.loads(cli("runs", "--json"))] == [safe_name(run_id)]
    assert "pipeline why on Airflow" in cli("show", "manual__2026-12-02T07:30")


def test_show_of_an_unknown_run_is_a_clear_error(history):
    result = CliRunner().invoke(app, ["show", "nope"])
    assert result.exit_code == 2
    assert "no run 'nope'" in result.output and "mlpipe runs" in result.output


def report_of(run_id: str, dest: Path) -> str:
    CliRunner().invoke(app, ["report", run_id, "-o", str(dest)], catch_exceptions=False)
    html = dest.read_text(encoding="utf-8")
    # self-contained: nothing is fetched (no stylesheet, script or image from elsewhere)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    return html


def test_report_is_one_self_contained_page(history, tmp_path):
    w, runs = history
    html = report_of(runs[2].run_id, tmp_path / "report.html")
    assert html.count('class="node"') == 2 and html.count('class="edge"') == 1
    assert "source changed: utils/io.py" in html
    assert '<svg id="timeline"' in html


@pytest.mark.integration
def test_report_renders_in_chromium(history, tmp_path):
    w, runs = history
    page = tmp_path / "report.html"
    report_of(runs[3].run_id, page)
    dom, text = chromium.dom_text(page, tmp_path)
    assert "Times in your time zone" in text  # its script ran
    assert f"Run {runs[3].run_id} failed" in text
    assert "Why: parameter lr: 0.5 → 9.0" in text
    assert f"Why: reused from run {runs[0].run_id}" in text
    assert "lr 9.0 is far too high" in text
    colours = chromium.colour_census(chromium.screenshot(page, tmp_path))
    total = sum(colours.values())
    assert colours.get(b"\xff\xff\xff", 0) < 0.9 * total  # not a blank page
    assert colours.get(bytes.fromhex("dbeafe"), 0) > 200  # the reused node's fill
    assert colours.get(bytes.fromhex("fee2e2"), 0) > 200  # the failed node's fill
