"""`mlpipe lint`: each v1 reuse trap with a case that warns and one that does not."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from mlpipe.errors import MlpipeError
from mlpipe.lint import lint_file, run_lint
from tests.migrate.migrate_helpers import SAMPLES, mlpipe

HEADER = """\
from azureml.core import Dataset, Workspace
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import CommandStep, PythonScriptStep

ws = Workspace.from_config()
"""
SCRIPT = "import argparse\nprint('hello')\n"


def project(tmp_path: Path, pipeline: str, scripts: dict[str, str] | None = None) -> Path:
    """A pipeline folder: pipeline.py (HEADER + body) and the step scripts named in `scripts`."""
    for rel, text in (scripts or {}).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "pipeline.py"
    path.write_text(HEADER + textwrap.dedent(pipeline), encoding="utf-8")
    return path


def codes(path: Path) -> list[tuple[str, int, str]]:
    """(file relative to the pipeline folder, line, code) of every warning."""
    result = []
    for w in lint_file(path):
        rel = Path(w.file).resolve().relative_to(path.parent.resolve()).as_posix()
        result.append((rel, w.line, w.code))
    return result


LINE = HEADER.count("\n")  # the first line of a test's own pipeline text is LINE + 1


# --------------------------------------------------------------------- shared source directory


def test_steps_with_different_scripts_sharing_a_folder_warn(tmp_path):
    path = project(
        tmp_path,
        """\
        SRC = "./src"
        prep = PythonScriptStep(script_name="prep.py", source_directory=SRC)
        train = PythonScriptStep(name="train", script_name="train.py", source_directory="src")
        other = PythonScriptStep(script_name="other.py", source_directory="other_src")
        """,
        {"src/prep.py": SCRIPT, "src/train.py": SCRIPT, "other_src/other.py": SCRIPT},
    )
    assert codes(path) == [
        ("pipeline.py", LINE + 2, "shared-source-directory"),
        ("pipeline.py", LINE + 3, "shared-source-directory"),
    ]
    warning = lint_file(path)[0]
    assert "'train' (line 9)" in warning.message
    assert "own folder" in warning.fix


def test_steps_without_source_directory_share_the_pipeline_folder(tmp_path):
    path = project(
        tmp_path,
        """\
        a = PythonScriptStep(script_name="a.py")
        b = CommandStep(command=["python", "b.py"])
        """,
        {"a.py": SCRIPT, "b.py": SCRIPT},
    )
    assert [c[2] for c in codes(path)] == ["shared-source-directory"] * 2


def test_separate_folders_a_loop_and_unknown_folders_do_not_warn(tmp_path):
    path = project(
        tmp_path,
        """\
        import os
        prep = PythonScriptStep(script_name="prep.py", source_directory="prep_src")
        train = PythonScriptStep(script_name="train.py", source_directory="train_src")
        workers = [
            PythonScriptStep(name=f"w{i}", script_name="work.py", source_directory="work_src")
            for i in range(4)
        ]
        here = os.environ.get("SRC", "x")
        dynamic = PythonScriptStep(script_name="d.py", source_directory=here)
        dynamic2 = PythonScriptStep(script_name="e.py", source_directory=here)
        """,
        {"prep_src/prep.py": SCRIPT, "train_src/train.py": SCRIPT, "work_src/work.py": SCRIPT},
    )
    assert codes(path) == []


# ------------------------------------------------------------------------------- unnamed data


def test_unnamed_outputs_and_inputs_warn(tmp_path):
    path = project(
        tmp_path,
        """\
        datastore = ws.get_default_datastore()
        out = OutputFileDatasetConfig(destination=(datastore, "out/{run-id}"))
        bare = OutputFileDatasetConfig()
        consume = out.as_input()
        """,
    )
    assert codes(path) == [
        ("pipeline.py", LINE + 2, "unnamed-output"),
        ("pipeline.py", LINE + 3, "unnamed-output"),
        ("pipeline.py", LINE + 4, "unnamed-input"),
    ]
    fixes = [w.fix for w in lint_file(path)]
    assert 'OutputFileDatasetConfig(name="' in fixes[0]
    assert '.as_input(name="' in fixes[2]


def test_named_outputs_and_inputs_do_not_warn(tmp_path):
    path = project(
        tmp_path,
        """\
        out = OutputFileDatasetConfig(name="prepared")
        positional = OutputFileDatasetConfig("scores")
        settings = {"name": "x"}
        hidden = OutputFileDatasetConfig(**settings)
        a = out.as_input(name="prepared")
        b = positional.as_input("scores")
        data = PipelineData("numbers")
        c = data.as_input(input_name="numbers_in")
        d = out.read_delimited_files().as_input(name="rows")
        """,
    )
    assert codes(path) == []


# -------------------------------------------------------------------------------- hash_paths


def test_hash_paths_warns(tmp_path):
    path = project(
        tmp_path,
        """\
        step = PythonScriptStep(
            script_name="train.py",
            source_directory="train_src",
            hash_paths=["train.py"],
        )
        """,
        {"train_src/train.py": SCRIPT},
    )
    assert codes(path) == [("pipeline.py", LINE + 4, "hash-paths")]
    assert "remove hash_paths" in lint_file(path)[0].fix


def test_no_hash_paths_no_warning(tmp_path):
    path = project(
        tmp_path,
        'step = PythonScriptStep(script_name="train.py", source_directory="train_src")\n',
        {"train_src/train.py": SCRIPT},
    )
    assert codes(path) == []


# ------------------------------------------------------------------------- inside step scripts


def test_absolute_paths_in_a_step_script_warn(tmp_path):
    script = """\
        import pandas as pd
        table = pd.read_csv("/mnt/data/train.csv")
        lookup = open(f"/datasets/lookup/{1}.json")
        windows = r"C:\\data\\train.csv"
        home = "~/data/x.csv"
    """
    path = project(
        tmp_path,
        'step = PythonScriptStep(script_name="train.py", source_directory="train_src")\n',
        {"train_src/train.py": script},
    )
    assert codes(path) == [
        ("train_src/train.py", 2, "absolute-path"),
        ("train_src/train.py", 3, "absolute-path"),
        ("train_src/train.py", 4, "absolute-path"),
        ("train_src/train.py", 5, "absolute-path"),
    ]
    assert "declared" in lint_file(path)[0].message


def test_relative_scratch_and_argument_paths_do_not_warn(tmp_path):
    script = '''\
        """Reads /mnt/data/train.csv (the docstring is not code)."""
        import argparse, os, tempfile
        parser = argparse.ArgumentParser()
        parser.add_argument("--input")
        args = parser.parse_args()
        data = open(os.path.join(args.input, "train.csv"))
        scratch = open("/tmp/scratch.txt", "w")
        local = open("data/train.csv")
        route = "/predict"
        python = "/usr/bin/python3"
    '''
    path = project(
        tmp_path,
        'step = PythonScriptStep(script_name="train.py", source_directory="train_src")\n',
        {"train_src/train.py": script},
    )
    assert codes(path) == []


def test_datastore_reads_in_a_step_script_warn(tmp_path):
    script = """\
        from azureml.core import Dataset, Datastore, Run
        run = Run.get_context()
        ws = run.experiment.workspace
        store = ws.get_default_datastore()
        blob = Datastore.get(ws, "raw")
        table = Dataset.get_by_name(ws, "iris").to_pandas_dataframe()
        files = Dataset.File.from_files((store, "images/"))
        url = "abfss://data@account.dfs.core.windows.net/raw/"
    """
    path = project(
        tmp_path,
        'step = PythonScriptStep(script_name="s.py", source_directory="s_src")\n',
        {"s_src/s.py": script},
    )
    assert codes(path) == [("s_src/s.py", line, "datastore-read") for line in (4, 5, 6, 7, 8)]
    assert "declare it in the pipeline" in lint_file(path)[0].fix


def test_declared_inputs_and_the_pipeline_file_itself_do_not_warn(tmp_path):
    script = """\
        from azureml.core import Run
        run = Run.get_context()
        table = run.input_datasets["iris"].to_pandas_dataframe()
        run.log("rows", len(table))
    """
    path = project(
        tmp_path,
        """\
        store = ws.get_default_datastore()
        iris = Dataset.Tabular.from_delimited_files(path=[(store, "iris/iris.csv")])
        step = PythonScriptStep(
            script_name="s.py",
            source_directory="s_src",
            inputs=[iris.as_named_input("iris")],
        )
        """,
        {"s_src/s.py": script},
    )
    assert codes(path) == []


def test_command_step_scripts_are_checked_too(tmp_path):
    path = project(
        tmp_path,
        'step = CommandStep(command="python run.py --fast", source_directory="c_src")\n',
        {"c_src/run.py": 'DATA = "/data/in/values.csv"\n'},
    )
    assert codes(path) == [("c_src/run.py", 1, "absolute-path")]


# ------------------------------------------------------------------------ the command itself


def test_exit_status_and_output_format(tmp_path):
    clean = project(tmp_path / "clean", 'x = OutputFileDatasetConfig(name="x")\n')
    result = mlpipe("lint", str(clean))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no warnings" in result.stderr

    dirty = project(tmp_path / "dirty", "x = OutputFileDatasetConfig()\n")
    result = mlpipe("lint", str(dirty))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{dirty}:{LINE + 1}: warning[unnamed-output]: ")
    assert ". Fix: " in result.stdout
    assert "1 warning(s)" in result.stderr


def test_bad_input_exits_2(tmp_path):
    missing = mlpipe("lint", str(tmp_path / "nope.py"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'nope.py'}: no such file" in missing.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\ndef f(:\n", encoding="utf-8")
    result = mlpipe("lint", str(broken))
    assert result.returncode == 2
    assert f"{broken}:2: cannot parse this file" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(MlpipeError):
        run_lint(tmp_path, out=io.StringIO(), err=io.StringIO())


def test_notebook_cells_are_linted_with_cell_lines(tmp_path):
    cells = [
        HEADER.splitlines(keepends=True),
        ["%pip install pandas\n", "out = OutputFileDatasetConfig()\n"],
    ]
    nb = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": []} for c in cells],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "pipe.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    warnings = lint_file(path)
    assert [(w.file, w.line, w.code) for w in warnings] == [(f"{path}:cell 2", 2, "unnamed-output")]


def test_the_seed_sample(tmp_path):
    """The sample is the v1 article as written: its unnamed output and input are real traps."""
    warnings = lint_file(SAMPLES / "seed_pipeline" / "pipeline.py")
    assert sorted({w.code for w in warnings}) == ["unnamed-input", "unnamed-output"]
