"""mlpipe.runtime.store against real servers: conditional writes, faults, credentials, packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid

import pytest

from mlpipe.runtime import store
from mlpipe.runtime.state import Datastores, State
from tests.objectstores.helpers import FaultyProxy
from tests.servers import ROOT, make_bucket, make_container

pytestmark = pytest.mark.xdist_group("objectstores")


def _fresh_instances():
    # fsspec caches filesystems by their arguments, not by the environment they read.
    import adlfs
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    adlfs.AzureBlobFileSystem.clear_instance_cache()


@pytest.fixture
def roots(object_stores):
    tag = uuid.uuid4().hex[:10]
    _fresh_instances()
    yield {"az": make_container(f"mlpipe-{tag}"), "s3": make_bucket(f"mlpipe-{tag}")}
    _fresh_instances()


@pytest.mark.parametrize("kind", ["az", "s3"])
def test_write_once_has_exactly_one_winner(roots, kind):
    url = f"{roots[kind]}/state/key.json"
    wins: list[int] = []

    def race(i: int) -> None:
        if store.write_once(url, str(i).encode()):
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert store.read_bytes(url) == str(wins[0]).encode()
    assert store.write_once(url, b"late") is False


@pytest.mark.parametrize("kind", ["az", "s3"])
def test_versions_from_concurrent_writers_are_all_kept(roots, kind):
    ir = {"datastores": [{"name": "workspaceblobstore", "url": roots[kind]}]}
    state = State(Datastores(ir))
    folder = store.join(state.root, "registry-test", "thing")
    got: list[int] = []
    threads = [
        threading.Thread(target=lambda i=i: got.append(state.add_version(folder, {"i": i})))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    seen = {store.read_json(store.join(folder, f"{v}.json"))["i"] for v in got}
    assert seen == set(range(6))


# botocore's own retries off (AWS_MAX_ATTEMPTS=1): see ours. The Azure SDK retries 5xx itself
# (15 s back-off and up) but not 429: Azure is throttled with 429.
@pytest.mark.parametrize(("kind", "status"), [("az", 429), ("s3", 503)])
def test_transient_errors_are_retried_and_reported(roots, monkeypatch, kind, status):
    url = f"{roots[kind]}/data/x.txt"
    store.write_bytes_atomic(url, b"payload")
    proxy = FaultyProxy.before(kind, 3, status=status)
    for key, value in {**proxy.env(kind), "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(store, "RETRY_BASE_SECONDS", 0.01)
    _fresh_instances()
    heard: list[str] = []
    token = store.reporter.set(heard.append)
    try:
        assert store.read_bytes(url) == b"payload"
    finally:
        store.reporter.reset(token)
        proxy.close()
    assert proxy.failed == 3
    assert len(heard) == 3, heard
    for n, line in enumerate(heard, 1):
        assert line.startswith(f"datastore {roots[kind]}: reading "), line
        assert f"(HTTP {status}); retry {n}/{store.RETRIES} in " in line, line


def test_permanent_errors_fail_clearly_and_publish_nothing(roots, monkeypatch, tmp_path):
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    proxy = FaultyProxy(endpoint, failures=-1)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(store, "RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setattr(store, "RETRIES", 2)
    _fresh_instances()
    src = tmp_path / "f.txt"
    src.write_text("x")
    dest = f"{roots['s3']}/out/run-1"
    try:
        with pytest.raises(store.StoreError, match=r"failed after 3 attempts"):
            store.publish_tree([(str(src), "f.txt")], dest)
    finally:
        proxy.close()
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        _fresh_instances()
    assert not store.output_complete(dest)


@pytest.mark.parametrize("kind", ["az", "s3"])
def test_missing_bucket_or_container_is_one_clear_error(roots, tmp_path, kind):
    root = f"{kind}://mlpipe-missing-{uuid.uuid4().hex[:8]}"
    Datastores({"datastores": [{"name": "lake", "url": root}]}).url("lake")
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(store.StoreError) as err:
        store.publish_tree([(str(src), "f.txt")], f"{root}/out")
    assert f"datastore 'lake' ({root})" in str(err.value)
    assert "the bucket / container must exist" in str(err.value)
    with pytest.raises(store.StoreError, match="datastore 'lake'"):
        store.write_once(f"{root}/state/1.json", b"{}")
    assert not store.output_complete(f"{root}/out")


def test_wrong_azure_key_is_one_clear_error(roots, monkeypatch):
    conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    key = conn.split("AccountKey=")[1].split(";")[0]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn.replace(key, "A" * len(key)))
    _fresh_instances()
    Datastores({"datastores": [{"name": "blobs", "url": roots["az"]}]}).url("blobs")
    with pytest.raises(store.StoreError) as err:
        store.read_bytes(f"{roots['az']}/anything.json")
    text = str(err.value)
    assert "datastore 'blobs'" in text and "AZURE_STORAGE_CONNECTION_STRING" in text
    assert "A" * 20 not in text


def test_missing_s3_credentials_is_one_clear_error(roots, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    _fresh_instances()
    with pytest.raises(store.StoreError) as err:
        store.read_bytes(f"{roots['s3']}/anything.json")
    assert "AWS_ACCESS_KEY_ID" in str(err.value) and roots["s3"] in str(err.value)


def test_missing_storage_package_names_it(tmp_path):
    blocked = tmp_path / "blocked" / "adlfs"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('adlfs is not installed here')\n")
    project = tmp_path / "p"
    project.mkdir()
    (project / "mlpipe.yaml").write_text(
        "workspace: w\ndatastores:\n  workspaceblobstore: az://nowhere\n", encoding="utf-8"
    )
    (project / "src").mkdir()
    (project / "src" / "s.py").write_text("print(1)\n")
    (project / "pipeline.py").write_text(
        "from azureml.core import Workspace\n"
        "from azureml.pipeline.core import Pipeline\n"
        "from azureml.pipeline.steps import PythonScriptStep\n"
        "ws = Workspace.from_config()\n"
        "s = PythonScriptStep(name='s', script_name='s.py', source_directory='src')\n"
        "pipeline = Pipeline(workspace=ws, steps=[s])\n",
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "blocked"))
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mlpipe"), "run", str(project / "pipeline.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "'adlfs'" in out and "pip install adlfs" in out, out
    assert "Traceback" not in out, out


def test_listing_signatures_survive_identical_reupload(roots):
    for kind in ("az", "s3"):
        url = f"{roots[kind]}/in/a.txt"
        store.write_bytes_atomic(url, b"same bytes")
        first = store.resolve_files(f"{roots[kind]}/in")[1]
        sig1 = store.remote_signature(first[0][0])
        store.write_bytes_atomic(url, b"same bytes")
        sig2 = store.remote_signature(store.resolve_files(f"{roots[kind]}/in")[1][0][0])
        store.write_bytes_atomic(url, b"other bytes")
        sig3 = store.remote_signature(url)
        assert sig1 == sig2 != sig3, (kind, sig1, sig3)


def test_manifest_decides_completeness(roots, tmp_path):
    src = tmp_path / "f.txt"
    src.write_text("x")
    dest = f"{roots['az']}/out/fixed"
    store.publish_tree([(str(src), "f.txt"), (str(src), "d/g.txt")], dest)
    assert store.output_complete(dest)
    assert [rel for _, rel in store.output_files(dest)] == ["d/g.txt", "f.txt"]
    # The manifest is never part of the data.
    assert [rel for _, rel in store.resolve_files(dest)[1]] == ["d/g.txt", "f.txt"]
    doc = json.loads(store.read_bytes(f"{dest}/{store.MANIFEST}"))
    assert doc["files"] == {"d/g.txt": 1, "f.txt": 1}
    # Republishing replaces the file set: files the new output lacks are gone.
    store.publish_tree([(str(src), "h.txt")], dest)
    assert [rel for _, rel in store.resolve_files(dest)[1]] == ["h.txt"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
