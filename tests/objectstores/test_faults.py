"""Faults on both object stores (Azurite, moto), through `mlpipe run`: a run killed while a step
publishes, transient errors, a permanent error. Faults come from a real HTTP proxy in front of the
server (tests/objectstores/helpers.py FaultyProxy); nothing of mlpipe is mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from mlpipe.runtime import store
from tests.objectstores.helpers import FaultyProxy, make_many_project
from tests.targets import MLPIPE, child_env

pytestmark = pytest.mark.xdist_group("objectstores")

KINDS = ["az", "s3"]
CREDENTIAL_VARS = {"az": "AZURE_STORAGE_CONNECTION_STRING", "s3": "AWS_ACCESS_KEY_ID"}


def _run(p, env: dict, *extra: str) -> tuple[int, str]:
    proc = subprocess.run(
        [MLPIPE, "run", str(p.pipeline), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _runs_by_start(p) -> list[dict]:
    return sorted(p.step_records().values(), key=lambda recs: recs["write"]["started"])


@pytest.mark.parametrize("kind", KINDS)
def test_step_killed_mid_publish_leaves_nothing_complete(object_stores, tmp_path, kind):
    p = make_many_project(tmp_path, kind)
    env = child_env(MANY_FILES="800")
    dest = f"{p.az}/many/files"
    code, log = _run(p, env)
    assert code == 0, log
    assert store.output_complete(dest)

    # Rerun the writer and kill the whole run while it uploads (its old manifest is withdrawn).
    proc = subprocess.Popen(
        [MLPIPE, "run", str(p.pipeline), "--regenerate-outputs"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen_partial = False
    try:
        for line in proc.stdout:
            if "wrote 800 files" in line:
                break
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not _manifest_exists(p, dest):
                seen_partial = True
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert seen_partial, "never saw the publish in progress"
    assert not store.output_complete(dest)
    with pytest.raises(FileNotFoundError, match="not a complete output"):
        store.output_files(dest)

    code, log = _run(p, env)
    assert code == 0, log
    by_start = _runs_by_start(p)
    assert [recs["write"]["status"] for recs in by_start] == ["completed", "running", "completed"]
    assert "read" not in by_start[1]  # nothing read the partial output
    count = by_start[2]["read"]["outputs"]["count"]["url"]
    assert p.read(count + "/count.txt") == b"800"
    assert store.output_complete(dest)


def _manifest_exists(p, dest: str) -> bool:
    return p.fs(dest).exists(dest.split("://", 1)[1] + "/" + store.MANIFEST)


# Throttling as each store's SDK leaves it to mlpipe: botocore's own retries are switched off
# (AWS_MAX_ATTEMPTS=1, a standard variable); the Azure SDK retries 5xx itself (15 s back-off and
# up), but not 429, so Azure is throttled with 429.
@pytest.mark.parametrize(("kind", "status"), [("az", 429), ("s3", 503)])
def test_transient_errors_in_a_step_are_retried_and_reported(object_stores, tmp_path, kind, status):
    p = make_many_project(tmp_path, kind)
    proxy = FaultyProxy.before(kind, 3, status=status, match="/many/files/", methods=("PUT",))
    env = child_env(
        MANY_FILES="20", MLPIPE_STORE_RETRY_SECONDS="0.05", AWS_MAX_ATTEMPTS="1", **proxy.env(kind)
    )
    try:
        code, log = _run(p, env)
    finally:
        proxy.close()
    assert code == 0, log
    assert proxy.failed == 3
    retries = [line for line in log.splitlines() if "retry" in line and "uploading" in line]
    assert retries, log
    for line in retries:  # reported on the step's output, naming the datastore
        assert line.startswith("[write] mlpipe: datastore 'workspaceblobstore'"), line
        assert f"HTTP {status}" in line or f"{status} " in line, line
    (recs,) = p.step_records().values()
    assert {s: r["status"] for s, r in recs.items()} == {"write": "completed", "read": "completed"}
    assert p.read(recs["read"]["outputs"]["count"]["url"] + "/count.txt") == b"20"


@pytest.mark.parametrize("kind", KINDS)
def test_permanent_error_fails_the_step_and_publishes_nothing(object_stores, tmp_path, kind):
    p = make_many_project(tmp_path, kind)
    dest = f"{p.az}/many/files"
    # Writes into the output are refused (403) after the first 5 files went through.
    proxy = FaultyProxy.before(
        kind, -1, status=403, match="/many/files/", methods=("PUT",), after=5
    )
    env = child_env(
        MANY_FILES="40", MLPIPE_STORE_RETRY_SECONDS="0.05", AWS_MAX_ATTEMPTS="1", **proxy.env(kind)
    )
    try:
        code, log = _run(p, env)
    finally:
        proxy.close()
    assert code == 1, log
    assert "Traceback" not in log, log
    assert proxy.passed == 5 and proxy.failed >= 1
    (recs,) = p.step_records().values()
    assert recs["write"]["status"] == "failed" and recs["read"]["status"] == "skipped"
    error = recs["write"]["error"]
    assert f"datastore 'workspaceblobstore' ({p.az})" in error, error
    assert "access denied" in error and CREDENTIAL_VARS[kind] in error, error
    assert error.split(":")[0] in log  # the same message on the run's output
    # Some files landed, but without a manifest nobody takes them as the output.
    assert 0 < len([f for f in p.listing(dest) if f != store.MANIFEST]) < 40
    assert not store.output_complete(dest)

    # No cache entry was written: without the fault the step runs again and completes.
    code, log = _run(p, child_env(MANY_FILES="40"))
    assert code == 0, log
    last = _runs_by_start(p)[-1]
    assert last["write"]["status"] == "completed" and last["read"]["status"] == "completed"
    assert p.read(last["read"]["outputs"]["count"]["url"] + "/count.txt") == b"40"
