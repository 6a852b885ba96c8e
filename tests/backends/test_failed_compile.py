"""A compile that fails writes nothing anywhere: not the -o folder, not the datastore (KFP stores
large snapshots there, but only once every pipeline of the file compiled)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MLPIPE = str(Path(sys.executable).parent / "mlpipe")

PIPELINE = """
from azureml.core import Experiment, Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
for experiment in EXPERIMENTS:
    step = PythonScriptStep(name="train", script_name="train.py", source_directory="src")
    Experiment(ws, experiment).submit(Pipeline(workspace=ws, steps=[step]))
"""


def project(root: Path, experiments: list[str]) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text("print('hi')\n")
    # Incompressible, so the snapshot is too large to embed in a KFP executor: KFP stores it in
    # the default datastore.
    (root / "src" / "blob.bin").write_bytes(os.urandom(200_000))
    (root / "data").mkdir()
    (root / "mlpipe.yaml").write_text(
        "workspace: late\ndatastores:\n  workspaceblobstore: ./data\n"
    )
    (root / "pipeline.py").write_text(f"EXPERIMENTS = {experiments!r}\n" + PIPELINE)
    return root


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def compile_to(root: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MLPIPE, "compile", "pipeline.py", "--target", target, "-o", "out"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("target", ["airflow", "prefect", "kfp"])
def test_a_late_failure_leaves_output_folder_and_datastore_untouched(tmp_path, target):
    # "x" and ".x" are different pipelines whose files would have the same name: the compile
    # fails only after the first pipeline rendered (and KFP planned its snapshot upload).
    root = project(tmp_path, ["x", ".x"])
    (root / "out").mkdir()
    (root / "out" / "mine.txt").write_text("the user's own file\n")
    before = tree(root / "out"), tree(root / "data")
    proc = compile_to(root, target)
    assert proc.returncode == 2, proc.stderr
    assert "two pipelines would write" in proc.stderr
    assert (tree(root / "out"), tree(root / "data")) == before


def test_kfp_stores_large_snapshots_when_the_compile_succeeds(tmp_path):
    root = project(tmp_path, ["x"])
    proc = compile_to(root, "kfp")
    assert proc.returncode == 0, proc.stderr
    stored = [p for p in tree(root / "data") if p.startswith(".mlpipe/snapshots/")]
    assert len(stored) == 1 and stored[0].endswith(".tar.gz")
