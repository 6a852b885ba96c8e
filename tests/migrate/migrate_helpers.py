"""Shared by the migrate / lint tests: the CLI in a subprocess, azureml detection, tree snapshots."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "tests" / "pipelines"
SAMPLES = ROOT / "samples"
HERE = Path(__file__).resolve().parent

# v1 pipelines of tests/pipelines that capture cleanly (bad/ holds deliberate failures).
GOOD_PIPELINES = sorted(
    p.name for p in PIPELINES.iterdir() if (p / "pipeline.py").is_file() and p.name != "bad"
)


def mlpipe(*args: str, cwd: Path | str | None = None, check: bool = False):
    """Run the `mlpipe` command line in a fresh interpreter (capture runs user code)."""
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    cmd = [sys.executable, "-c", "from mlpipe.cli import main; main()", *args]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(
            f"mlpipe {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def azureml_uses(source: str) -> list[int]:
    """Lines that still import or reference the azureml package (strings do not count)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            if any(a.name == "azureml" or a.name.startswith("azureml.") for a in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.module and (node.module == "azureml" or node.module.startswith("azureml.")):
                lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id == "azureml":
            lines.append(node.lineno)
    return sorted(lines)


def python_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.py") if ".mlpipe" not in p.parts and "__pycache__" not in p.parts
    )


def tree_bytes(folder: Path, skip=(".mlpipe", "__pycache__")) -> dict[str, bytes]:
    """relative path -> content for every file under folder."""
    result = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part in skip for part in rel.parts):
            result[rel.as_posix()] = p.read_bytes()
    return result


def copy_pipeline(name: str, dest: Path) -> Path:
    """A clean copy of a fixture / sample folder; returns its pipeline.py."""
    src = PIPELINES / name if (PIPELINES / name).is_dir() else SAMPLES / name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".mlpipe", "__pycache__", "out"))
    if name == "seed_pipeline":
        # Only the inputs ship in data/; earlier local runs may have left outputs there.
        for child in (dest / "data").iterdir():
            if child.name not in ("train-images", "iris"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    return dest / "pipeline.py"


_RUN_ID = re.compile(r"[A-Za-z0-9_.\-]*_\d{8}T\d{6}_[0-9a-f]{6}")


def run_outputs(datastore: Path) -> dict[str, object]:
    """What a local run left in a datastore folder, with run ids taken out of the paths.
    Logs that several parallel steps append to are compared as sorted lines."""
    result: dict[str, object] = {}
    for rel, data in tree_bytes(datastore).items():
        key = _RUN_ID.sub("<run>", rel)
        if rel.endswith(".log"):
            result[key] = sorted(data.decode("utf-8").splitlines())
        else:
            result[key] = data
    return result


def step_metrics(folder: Path) -> dict[str, object]:
    """step -> (status, metrics logged with Run.log) from the local runner's step records."""
    result = {}
    for record in sorted(folder.rglob("runs/*/steps/*.json")):
        data = json.loads(record.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "step" in data:
            result[data["step"]] = (data.get("status"), data.get("metrics"))
    return result
