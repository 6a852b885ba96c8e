"""Shared fixtures: copies of pipelines in temp folders, and one env cache per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "tests" / "pipelines"
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session", autouse=True)
def _env_cache(tmp_path_factory):
    # Environment venvs are expensive: build each once per session (or reuse a developer's cache).
    cache = os.environ.get("MLPIPE_TEST_CACHE_DIR") or str(ROOT / ".mlpipe-test-cache")
    os.environ["MLPIPE_TEST_CACHE_DIR"] = cache
    os.environ["MLPIPE_CACHE_DIR"] = cache
    yield


@pytest.fixture
def pipeline_copy(tmp_path):
    """Copy a fixture (tests/pipelines/<name>) or sample (samples/<name>) into a temp folder and
    return the path of its pipeline.py."""

    def make(name: str, dest: str = "p") -> Path:
        src = PIPELINES / name if (PIPELINES / name).is_dir() else SAMPLES / name
        target = tmp_path / dest
        shutil.copytree(src, target, ignore=shutil.ignore_patterns(".mlpipe", "__pycache__"))
        return target / "pipeline.py"

    return make


# Session servers (a real MLflow tracking server, ...), usable from every test folder.
from tests.servers import mlflow_server  # noqa: E402, F401
