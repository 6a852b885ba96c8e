"""Concurrent runs sharing one datastore keep the reuse state consistent.

The state (`<default datastore>/.mlpipe/`: step records, cache entries, the dataset registry,
snapshots) is shared by every runner that uses the datastore. Two `mlpipe run`s of the same
pipeline at the same time must both succeed, leave no torn or half-written record behind, never
reuse a result that is not completely published, and leave a state from which the next run reuses
everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mlpipe.runtime import store
from mlpipe.runtime.state import Datastores, State
from tests.targets import MLPIPE, child_env

FANOUT = 4
FILES_PER_OUTPUT = 12

WORK = '''\
"""A step: copies its inputs' digest into FILES_PER_OUTPUT files, slowly, and logs that it ran."""
import hashlib
import os
import sys
import time

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
name, out, log = args["--name"], args["--out"], args["--log"]
digest = hashlib.sha256(name.encode())
for key in sorted(k for k in args if k.startswith("--in")):
    for root, _, files in sorted(os.walk(args[key])):
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                digest.update(fh.read())
with open(log, "a", encoding="utf-8") as fh:  # one short O_APPEND write per execution
    fh.write(f"start {name} {os.environ['MLPIPE_RUN_ID']}\\n")
gate = args.get("--gate")
if gate:  # wait until the test opens the gate (a file), so runs overlap for sure
    while not os.path.exists(gate):
        time.sleep(0.05)
os.makedirs(out, exist_ok=True)
for i in range(N_FILES):
    with open(os.path.join(out, f"part-{i:02d}.txt"), "w", encoding="utf-8") as fh:
        fh.write(f"{name} {i} {digest.hexdigest()}\\n" * 200)
    time.sleep(float(args.get("--sleep", "0")))
with open(log, "a", encoding="utf-8") as fh:
    fh.write(f"done {name} {os.environ['MLPIPE_RUN_ID']}\\n")
'''.replace("N_FILES", str(FILES_PER_OUTPUT))


def write_pipeline(folder: Path, gate: Path | None = None, sleep: str = "0.02") -> Path:
    """prep -> work_0..work_{FANOUT-1} -> merge, outputs of three kinds:

    - prep writes a fixed destination (no {run-id}): both runs publish to the same folder;
    - the fan-out steps write PipelineData (a folder per run);
    - merge registers its output as a dataset (a registry version per execution)."""
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "work.py").write_text(WORK, encoding="utf-8")
    (folder / "mlpipe.yaml").write_text(
        "workspace: conc\ndatastores:\n  workspaceblobstore: ./data\n"
    )
    log = folder / "data" / "executions.log"
    gate_args = f', "--gate", {str(gate)!r}' if gate else ""
    text = textwrap.dedent(
        f"""\
        from azureml.core import Experiment, Workspace
        from azureml.data import OutputFileDatasetConfig
        from azureml.pipeline.core import Pipeline, PipelineData
        from azureml.pipeline.steps import PythonScriptStep

        ws = Workspace.from_config()
        store = ws.get_default_datastore()
        LOG = {str(log)!r}

        shared = OutputFileDatasetConfig(name="shared", destination=(store, "fixed/shared"))
        prep = PythonScriptStep(
            name="prep", script_name="work.py", source_directory="src",
            arguments=["--name", "prep", "--out", shared, "--log", LOG, "--sleep", {sleep!r}{gate_args}],
        )
        parts = []
        workers = []
        for i in range({FANOUT}):
            part = PipelineData(f"part_{{i}}", datastore=store)
            parts.append(part)
            workers.append(PythonScriptStep(
                name=f"work_{{i}}", script_name="work.py", source_directory="src",
                arguments=["--name", f"work_{{i}}", "--in", shared.as_input(name="shared"),
                           "--out", part, "--log", LOG, "--sleep", "0.01"],
                outputs=[part],
            ))
        merged = OutputFileDatasetConfig(name="merged").register_on_complete(name="merged_parts")
        args = ["--name", "merge", "--out", merged, "--log", LOG]
        for i, part in enumerate(parts):
            args += [f"--in{{i}}", part]
        merge = PythonScriptStep(
            name="merge", script_name="work.py", source_directory="src",
            arguments=args, inputs=parts,
        )
        pipeline = Pipeline(ws, [prep, *workers, merge])
        Experiment(ws, "conc").submit(pipeline)
        """
    )
    path = folder / "pipeline.py"
    path.write_text(text, encoding="utf-8")
    return path


STEPS = ["prep", *[f"work_{i}" for i in range(FANOUT)], "merge"]


def start_run(path: Path, cache: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [MLPIPE, "run", str(path), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(MLPIPE_CACHE_DIR=str(cache), MLPIPE_MAX_PARALLEL="3"),
        start_new_session=True,
    )


def finish(proc: subprocess.Popen, timeout: int = 600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def state_of(folder: Path) -> State:
    doc = {
        "default_datastore": "workspaceblobstore",
        "datastores": [{"name": "workspaceblobstore", "url": str(folder / "data")}],
    }
    return State(Datastores(doc))


def run_records(folder: Path) -> dict[str, dict]:
    """{run id: run.json} of every run in the datastore."""
    runs = folder / "data" / ".mlpipe" / "runs"
    found = {}
    for d in sorted(runs.iterdir()):
        doc = json.loads((d / "run.json").read_text())
        found[doc["run_id"]] = doc
    return found


def tree_fingerprint(path: str) -> str:
    """The content fingerprint the runtime records for a published output."""
    from mlpipe.runtime.fingerprint import local_tree_fingerprint

    files = [
        (p, os.path.relpath(p, path).replace(os.sep, "/"))
        for p in store._walk_local(path)
        if os.path.isfile(p)
    ]
    return local_tree_fingerprint(files)


def assert_state_consistent(folder: Path, allow_failed: bool = False) -> None:
    """Every state file parses; every cache entry points at complete outputs; no leftovers."""
    state = state_of(folder)
    root = Path(store.local_path(state.root))
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    data = folder / "data"
    leftovers += [
        p for p in data.rglob("*") if ".mlpipe-" in p.name and p.name.endswith((".partial", ".old"))
    ]
    assert not leftovers, leftovers
    for path in sorted(root.rglob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:  # a torn record
            raise AssertionError(f"{path} is not valid JSON: {exc}") from None
    entries = sorted((root / "cache").glob("*.json"))
    assert entries, "no cache entry at all"
    for entry_path in entries:
        entry = json.loads(entry_path.read_text())
        assert entry["status"] == "completed", entry_path
        assert entry["fingerprint"] == entry_path.stem
        for name, out in entry["outputs"].items():
            location = out["url"]
            assert os.path.isdir(location), (entry_path, name, location)
            assert len(os.listdir(location)) == FILES_PER_OUTPUT, (entry_path, name)
            assert tree_fingerprint(location) == out["fingerprint"], (
                f"{entry_path.name}: output {name!r} at {location} is not what was recorded"
            )
    for record_path in sorted(root.glob("runs/*/steps/*.json")):
        record = json.loads(record_path.read_text())
        allowed = ("completed", "reused") + (("failed", "skipped") if allow_failed else ())
        assert record["status"] in allowed, (record_path, record["status"])
        if record["status"] == "reused":
            # reused from a run whose own record of that step says it completed
            origin = state.step_record(record["reused_from"], record["step"])
            assert json.loads(Path(origin).read_text())["status"] == "completed", record_path


def registry_versions(folder: Path) -> list[int]:
    versions = Path(state_of(folder).dataset_versions("merged_parts"))
    return sorted(json.loads(f.read_text())["version"] for f in versions.glob("*.json"))


def executions(folder: Path) -> list[tuple[str, str, str]]:
    log = folder / "data" / "executions.log"
    return [tuple(line.split()) for line in log.read_text().splitlines() if line.strip()]


def test_two_concurrent_runs_share_the_datastore_consistently(tmp_path):
    folder = tmp_path / "p"
    path = write_pipeline(folder)
    cache = tmp_path / "cache"
    # Both runs start together; neither finds anything to reuse, so both execute every step
    # and publish to the same fixed destination and the same cache entries.
    procs = [start_run(path, cache) for _ in range(2)]
    results = [finish(p) for p in procs]
    for code, out in results:
        assert code == 0, out[-4000:]
    runs = run_records(folder)
    assert len(runs) == 2
    for doc in runs.values():
        assert doc["status"] == "completed", doc
        assert set(doc["steps"]) == set(STEPS)
    assert_state_consistent(folder)
    # Every execution that started finished, and no step ran more than once per run.
    ran = executions(folder)
    starts = sorted((name, run) for kind, name, run in ran if kind == "start")
    dones = sorted((name, run) for kind, name, run in ran if kind == "done")
    assert starts == dones
    assert len(starts) == len(set(starts))
    # Registry: one version per execution of merge, numbered without gaps or duplicates.
    merges = [run for name, run in starts if name == "merge"]
    assert registry_versions(folder) == list(range(1, len(merges) + 1))

    # The next run reuses every step, and its outputs are what the cache recorded.
    code, out = finish(start_run(path, cache))
    assert code == 0, out[-4000:]
    last = [doc for rid, doc in run_records(folder).items() if rid not in runs]
    assert len(last) == 1
    assert {n: s["status"] for n, s in last[0]["steps"].items()} == dict.fromkeys(STEPS, "reused")
    assert executions(folder) == ran
    assert_state_consistent(folder)


def test_many_concurrent_runs_never_fail_on_a_shared_fixed_destination(tmp_path):
    # Four runs publish `prep` to the same fixed folder (`fixed/shared`) at the same moment (their
    # prep scripts wait at one gate): every run must succeed and the folder stay complete.
    folder = tmp_path / "p"
    gate = tmp_path / "gate"
    path = write_pipeline(folder, gate=gate, sleep="0")
    cache = tmp_path / "cache"
    log = folder / "data" / "executions.log"
    procs = [start_run(path, cache) for _ in range(4)]
    for proc in procs:
        wait_for(lambda: log.exists() and log.read_text().count("start prep") == 4, proc)
    gate.write_text("open")
    results = [finish(p) for p in procs]
    failed = [out[-3000:] for code, out in results if code != 0]
    assert not failed, failed[0]
    assert_state_consistent(folder)
    shared = folder / "data" / "fixed" / "shared"
    assert len(list(shared.iterdir())) == FILES_PER_OUTPUT


def test_a_run_never_reuses_a_step_still_running_in_another(tmp_path):
    folder = tmp_path / "p"
    gate = tmp_path / "gate"
    path = write_pipeline(folder, gate=gate)
    cache = tmp_path / "cache"
    log = folder / "data" / "executions.log"
    first = start_run(path, cache)
    wait_for(lambda: log.exists() and "start prep" in log.read_text(), first)
    # `prep` of the first run is executing (held at the gate): the second run finds no cache
    # entry, so it must execute prep itself rather than reuse something unfinished.
    second = start_run(path, cache)
    wait_for(lambda: log.read_text().count("start prep") == 2, second)
    gate.write_text("open")
    for proc in (first, second):
        code, out = finish(proc)
        assert code == 0, out[-4000:]
    runs = run_records(folder)
    assert all(doc["steps"]["prep"]["status"] == "completed" for doc in runs.values())
    assert_state_consistent(folder)


def test_a_killed_run_leaves_nothing_reusable_behind(tmp_path):
    folder = tmp_path / "p"
    gate = tmp_path / "gate"
    path = write_pipeline(folder, gate=gate)
    cache = tmp_path / "cache"
    log = folder / "data" / "executions.log"
    victim = start_run(path, cache)
    wait_for(lambda: log.exists() and "start prep" in log.read_text(), victim)
    os.killpg(victim.pid, signal.SIGTERM)  # the runner stops its scripts and unwinds
    finish(victim)
    state = state_of(folder)
    assert not list(Path(store.local_path(state.root), "cache").glob("*.json"))
    assert not (folder / "data" / "fixed" / "shared").exists()
    # A run afterwards executes prep (nothing of the killed run is reused) and succeeds.
    gate.write_text("open")
    code, out = finish(start_run(path, cache))
    assert code == 0, out[-4000:]
    assert log.read_text().count("done prep") == 1
    assert_state_consistent(folder, allow_failed=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the run ended early ({proc.returncode}):\n{out[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.05)


# ------------------------------------------------------------------- the primitives, directly


def test_readers_never_see_a_torn_state_file(tmp_path):
    target = str(tmp_path / "cache" / "entry.json")
    docs = [{"fingerprint": str(i), "outputs": {"x": "y" * (50_000 + i)}} for i in range(4)]
    store.write_json_atomic(target, docs[0])
    stop = threading.Event()
    bad: list[str] = []

    def writer(doc):
        while not stop.is_set():
            store.write_json_atomic(target, doc)

    def reader():
        while not stop.is_set():
            data = Path(target).read_bytes()
            try:
                json.loads(data)
            except ValueError:
                bad.append(hashlib.sha256(data).hexdigest())

    threads = [threading.Thread(target=writer, args=(d,)) for d in docs]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    assert not bad
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name != "entry.json"]


REGISTER = """
import sys
from mlpipe.runtime.registry import DatasetRegistry, WorkspaceInfo
root, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
registry = DatasetRegistry(WorkspaceInfo("w", {"d": root}, "d"))
for i in range(n):
    registry.register(
        "ds", {"type": "file", "paths": [{"kind": "datapath", "datastore": "d", "path": "x"}]},
        dedupe=False, source={"run_id": tag, "i": i},
    )
"""


def test_concurrent_registrations_get_distinct_consecutive_versions(tmp_path):
    import sys

    procs = [
        subprocess.Popen([sys.executable, "-c", REGISTER, str(tmp_path), "25", f"p{k}"])
        for k in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    folder = Path(state_of_root(tmp_path).dataset_versions("ds"))
    versions = [json.loads(f.read_text()) for f in folder.glob("*.json")]
    assert sorted(v["version"] for v in versions) == list(range(1, 101))
    per_writer = {}
    for v in versions:
        per_writer.setdefault(v["source"]["run_id"], []).append(v["source"]["i"])
    assert all(sorted(x) == list(range(25)) for x in per_writer.values())


def state_of_root(root: Path) -> State:
    return State(
        Datastores({"default_datastore": "d", "datastores": [{"name": "d", "url": str(root)}]})
    )


@pytest.mark.parametrize("writers", [4])
def test_concurrent_publishes_of_one_destination_all_succeed(tmp_path, writers):
    # What two runs of one step with a fixed destination do at the end: publish the same folder.
    import sys

    code = """
import os, sys
from mlpipe.runtime import store
src, dest, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = [(os.path.join(src, f), f) for f in sorted(os.listdir(src))]
for _ in range(n):
    store.publish_tree(files, dest)
"""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(FILES_PER_OUTPUT):
        (src / f"f{i}").write_text("x" * 1000)
    dest = tmp_path / "store" / "fixed"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(src), str(dest), "40"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(writers)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, [e[-1500:] for e in errors if e]
    assert sorted(os.listdir(dest)) == sorted(f"f{i}" for i in range(FILES_PER_OUTPUT))
    assert os.listdir(dest.parent) == ["fixed"]
