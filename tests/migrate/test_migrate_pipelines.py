"""Migrating real v1 pipelines keeps their meaning: the same IR, the same compiled artifacts on
every installed target, and the same results when the migrated pipeline runs locally."""

from __future__ import annotations

import difflib
import io
import json
import re
import shutil
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from mlpipe.migrate import run_migrate
from tests.migrate.migrate_helpers import (
    GOOD_PIPELINES,
    ROOT,
    azureml_uses,
    copy_pipeline,
    mlpipe,
    python_files,
    run_outputs,
    step_metrics,
    tree_bytes,
)

PIPELINES = ["seed_pipeline", *GOOD_PIPELINES]
TARGETS = ["airflow", "prefect", "kfp"]


def ir_of(pipeline: Path) -> list[dict]:
    """The captured IR of every pipeline the file builds (in-process, as `mlpipe ir` does)."""
    from mlpipe.capture import capture

    return [json.loads(p.model_dump_json()) for p in capture(str(pipeline)).pipelines]


def migrate(path: Path) -> None:
    err = io.StringIO()
    code = run_migrate(path, out=io.StringIO(), err=err)
    assert code == 0, err.getvalue()  # everything here has an mlpipe equivalent


@pytest.mark.parametrize("name", PIPELINES)
def test_migrated_pipeline_captures_to_the_same_ir(tmp_path, name):
    pipeline = copy_pipeline(name, tmp_path / name)
    folder = pipeline.parent
    scripts_before = {p: p.read_bytes() for p in python_files(folder) if p != pipeline}
    before = ir_of(pipeline)

    # The pipeline file alone: its line numbers (the IR's origins) must not move.
    migrate(pipeline)
    assert azureml_uses(pipeline.read_text(encoding="utf-8")) == []
    assert ir_of(pipeline) == before

    # The whole folder: step scripts importing azureml change, and so do their snapshots.
    migrate(folder)
    for path in python_files(folder):
        assert azureml_uses(path.read_text(encoding="utf-8")) == [], path
    changed = {p for p, data in scripts_before.items() if p.read_bytes() != data}
    after = ir_of(pipeline)
    for old_pipeline, new_pipeline in zip(before, after, strict=True):
        for old_step, new_step in zip(old_pipeline["steps"], new_pipeline["steps"], strict=True):
            source = (folder / old_step["source_directory"]).resolve()
            if any(source in p.resolve().parents for p in changed):
                assert new_step["snapshot"]["hash"] != old_step["snapshot"]["hash"]
                new_step["snapshot"] = old_step["snapshot"]
    assert after == before

    # Idempotent on migrated code.
    migrated = tree_bytes(folder)
    migrate(folder)
    assert tree_bytes(folder) == migrated


def _installed_backend(target: str):
    eps = {ep.name: ep for ep in entry_points(group="mlpipe.backends")}
    return eps[target].load()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", PIPELINES)
def test_migrated_pipeline_compiles_to_identical_artifacts(tmp_path, name, target):
    """What `mlpipe compile FILE --target T -o OUT` does, before and after migration."""
    backend_class = _installed_backend(target)
    from mlpipe.backends.base import compile_pipelines
    from mlpipe.capture import capture

    pipeline = copy_pipeline(name, tmp_path / name)
    folder = pipeline.parent
    out = tmp_path / "out"

    def compile_tree() -> dict[str, bytes]:
        pipelines = capture(str(pipeline)).pipelines
        compile_pipelines(backend_class(), pipelines, folder, out, None)
        tree = tree_bytes(out, skip=("__pycache__",))
        shutil.rmtree(out)  # the second compile starts from an empty folder too
        return tree

    before = compile_tree()
    assert before
    # Step scripts untouched: only the pipeline file is migrated.
    migrate(pipeline)
    after = compile_tree()
    assert sorted(after) == sorted(before)
    differ = [rel for rel in before if after[rel] != before[rel]]
    if differ:
        rel = next((r for r in differ if not r.endswith("manifest.json")), differ[0])
        diff = difflib.unified_diff(
            before[rel].decode("utf-8", "replace").splitlines(),
            after[rel].decode("utf-8", "replace").splitlines(),
            "before",
            "after",
            lineterm="",
        )
        pytest.fail(f"{target}: {differ} differ after migration; {rel}:\n" + "\n".join(diff))


@pytest.mark.parametrize("name", ["seed_pipeline", "ofdc_as_input", "fanout_fanin"])
def test_migrated_pipeline_runs_with_the_same_results(tmp_path, name):
    """seed_pipeline and ofdc_as_input have step scripts reading tabular datasets through
    Run.get_context() (now mlpipe's Run); fanout_fanin carries parameters of every type."""
    original = copy_pipeline(name, tmp_path / "original")
    migrated = copy_pipeline(name, tmp_path / "migrated")
    migrate(migrated.parent)
    for path in python_files(migrated.parent):
        assert azureml_uses(path.read_text(encoding="utf-8")) == []
    results, metrics = [], []
    for pipeline in (original, migrated):
        run = mlpipe("run", pipeline.name, cwd=pipeline.parent)
        assert run.returncode == 0, run.stdout + run.stderr
        results.append(run_outputs(pipeline.parent / "data"))
        metrics.append(step_metrics(pipeline.parent))
    assert results[0], "the run wrote nothing into the datastore"
    assert results[1] == results[0]
    # Run.get_context().log(...) from mlpipe's Run records the same metrics as azureml's did.
    assert metrics[1] == metrics[0]
    if name == "seed_pipeline" and metrics[0]:
        assert metrics[0]["iris_train"][1]["rows"] == 150


NOTEBOOKS = ROOT / "tests" / "notebooks" / "intro"
INTRO_NOTEBOOKS = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) if NOTEBOOKS.is_dir() else []


# Dates and times, and epoch seconds (`f"fit-{int(time.time())}"`): capture before and after the
# migration may fall on different seconds.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[-T ]?\d{2}:?\d{2}:?\d{2}|\b1\d{9}\b")


def _untimed(value):
    return json.loads(_TIME.sub("<time>", json.dumps(value)))


def _mask_magics(source: str) -> str:
    return "\n".join(
        "pass" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()
    )


@pytest.mark.parametrize("name", INTRO_NOTEBOOKS)
def test_migrated_notebook_captures_to_the_same_ir(tmp_path, name):
    """The v1 intro notebooks: code cells (and %%writefile step scripts) migrate in place and the
    notebook captures to the same IR, except the snapshots of steps whose folder holds a changed
    file (a step whose source_directory is the notebook's own folder snapshots the notebook)."""
    folder = tmp_path / "intro"
    shutil.copytree(NOTEBOOKS, folder, ignore=shutil.ignore_patterns(".mlpipe", "__pycache__"))
    notebook = folder / name
    before = ir_of(notebook)
    files_before = tree_bytes(folder)  # after capture: %%writefile cells have written their files
    err = io.StringIO()
    assert run_migrate(notebook, out=io.StringIO(), err=err) in (0, 1), err.getvalue()
    reported = set()
    for line in err.getvalue().splitlines()[:-1]:
        if not line.startswith("migrated "):
            assert "no mlpipe equivalent" in line, line  # e.g. azureml.core.VERSION
            reported.add(int(line.split(":cell ", 1)[1].split(":", 1)[0]))
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") == "code" and number not in reported:
            source = "".join(cell["source"])
            if not source.lstrip().startswith("%%") or source.startswith("%%writefile"):
                assert azureml_uses(_mask_magics(source)) == [], f"cell {number}"
    after = ir_of(notebook)
    files_after = tree_bytes(folder)
    changed = {folder / rel for rel in files_after if files_before.get(rel) != files_after[rel]}
    for old_pipeline, new_pipeline in zip(before, after, strict=True):
        for old_step, new_step in zip(old_pipeline["steps"], new_pipeline["steps"], strict=True):
            source = (folder / old_step["source_directory"]).resolve()
            if any(source in p.resolve().parents for p in changed):
                new_step["snapshot"] = old_step["snapshot"]
    # Like the v1 samples, some notebooks put the current time into publish names: mask it.
    assert _untimed(after) == _untimed(before)


BAD = ROOT / "tests" / "pipelines" / "bad"
# syntax_error.py is left out: migrate refuses a file that does not parse (tested elsewhere).
BAD_FILES = sorted(p.name for p in BAD.glob("*.py") if p.name != "syntax_error.py")


def _problems(pipeline: Path) -> list[str]:
    from mlpipe.capture import capture
    from mlpipe.errors import MlpipeError

    try:
        capture(str(pipeline))
    except MlpipeError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize("name", BAD_FILES)
def test_migrated_bad_pipeline_reports_the_same_problems_at_the_same_lines(tmp_path, name):
    """Line stability seen from the user's side: every error keeps its file:line."""
    folder = tmp_path / "bad"
    shutil.copytree(BAD, folder, ignore=shutil.ignore_patterns(".mlpipe", "__pycache__"))
    pipeline = folder / name
    before = _problems(pipeline)
    err = io.StringIO()
    assert run_migrate(pipeline, out=io.StringIO(), err=err) in (0, 1), err.getvalue()
    assert _problems(pipeline) == before
