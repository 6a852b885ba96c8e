"""Datastore URLs in mlpipe.yaml: object-store forms that cannot work are refused with the fix."""

from __future__ import annotations

import subprocess

import pytest

from mlpipe.workspace_config import object_store_problem
from tests.targets import MLPIPE


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("wasbs://data@acct.blob.core.windows.net/x", "az://data/<path>"),
        ("https://acct.blob.core.windows.net/data/x", "AZURE_STORAGE_ACCOUNT_NAME=acct"),
        ("s3://", "needs a bucket"),
        ("az:///x", "needs a bucket / container"),
    ],
)
def test_unusable_object_store_urls(url, expect):
    assert expect in (object_store_problem(url) or "")


@pytest.mark.parametrize("url", ["s3://bucket/x", "az://c", "abfs://c/p", "./data", "memory://m"])
def test_usable_urls(url):
    assert object_store_problem(url) is None


def test_mlpipe_yaml_points_at_the_line(tmp_path):
    (tmp_path / "mlpipe.yaml").write_text(
        "datastores:\n  workspaceblobstore: ./d\n  lake: wasbs://c@acct.blob.core.windows.net\n"
    )
    (tmp_path / "pipeline.py").write_text(
        "from azureml.core import Workspace\nws = Workspace.from_config()\n"
    )
    proc = subprocess.run(
        [MLPIPE, "validate", "pipeline.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "mlpipe.yaml:3: datastore 'lake': Azure Blob Storage is reached as az://c" in proc.stderr
