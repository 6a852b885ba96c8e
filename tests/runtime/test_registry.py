"""Model and dataset registries, datastores at run time (compiler/runtime/registry.py, models.py,
compiler/api/_live.py): semantics, concurrency across processes, plain-script and in-step use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlpipe.runtime.models import ModelRegistry
from mlpipe.runtime.registry import DatasetRegistry, RegistryError, WorkspaceInfo

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "compiler"


@pytest.fixture
def ws(tmp_path) -> WorkspaceInfo:
    (tmp_path / "store").mkdir()
    return WorkspaceInfo("w", {"main": str(tmp_path / "store")}, "main")


def definition(path: str, kind="tabular") -> dict:
    return {"type": kind, "paths": [{"kind": "datapath", "datastore": "main", "path": path}]}


# ---------------------------------------------------------------------------------- datasets


def test_dataset_versions_latest_digits_and_ids(ws, tmp_path):
    (tmp_path / "store" / "a.csv").write_text("x\n1\n")
    reg = DatasetRegistry(ws)
    first, created = reg.register("rows", definition("a.csv"), tags={"k": "v"})
    assert created and first["version"] == 1 and first["id"] == "rows:1"
    # same definition, same bytes: no new version (re-applying a registration is a no-op)
    again, created = reg.register("rows", definition("a.csv"))
    assert not created and again["version"] == 1
    (tmp_path / "store" / "a.csv").write_text("x\n2\n")
    changed, created = reg.register("rows", definition("a.csv"))
    assert created and changed["version"] == 2
    assert reg.get("rows")["version"] == 2
    assert reg.get("rows", "latest")["version"] == 2
    assert reg.get("rows", 1)["tags"] == {"k": "v"}
    assert reg.get("rows", "1")["version"] == 1
    assert reg.get_by_id("rows:1")["version"] == 1
    assert reg.names() == ["rows"]
    with pytest.raises(RegistryError, match="no version 7"):
        reg.get("rows", 7)
    with pytest.raises(RegistryError, match="dataset 'other' is not registered.*registered: rows"):
        reg.get("other")


def test_dataset_without_create_new_version_refuses_another_definition(ws, tmp_path):
    reg = DatasetRegistry(ws)
    reg.register("rows", definition("a.csv"), create_new_version=False)
    same, created = reg.register("rows", definition("a.csv"), create_new_version=False)
    assert not created and same["version"] == 1
    with pytest.raises(RegistryError, match="create_new_version=True"):
        reg.register("rows", definition("b.csv"), create_new_version=False)


def test_old_single_file_registry_is_read_and_numbered_on(ws, tmp_path):
    legacy = tmp_path / "store" / ".mlpipe" / "registry"
    legacy.mkdir(parents=True)
    (legacy / "out.json").write_text(
        json.dumps(
            {
                "name": "out",
                "versions": [
                    {"version": 1, "datastore": "main", "path": "o/1", "run_id": "r1"},
                    {"version": 2, "datastore": "main", "path": "o/2", "run_id": "r2"},
                ],
            }
        )
    )
    reg = DatasetRegistry(ws)
    assert [v["version"] for v in reg.versions("out")] == [1, 2]
    assert reg.get("out")["paths"][0]["path"] == "o/2"
    doc, _ = reg.register("out", definition("o/3", "file"), dedupe=False)
    assert doc["version"] == 3
    assert sorted(os.listdir(tmp_path / "store" / ".mlpipe" / "datasets" / "out")) == [
        "1.json",
        "2.json",
        "3.json",
    ]


# ------------------------------------------------------------------------------------ models


def test_model_register_list_filters_and_edits(ws, tmp_path):
    reg = ModelRegistry(ws)
    f = tmp_path / "model.pkl"
    f.write_text("one")
    one = reg.register("m", str(f), tags={"mse": 0.5, "area": "x"}, properties={"p": 1})
    f.write_text("two")
    two = reg.register("m", str(f), tags={"mse": 0.3})
    folder = tmp_path / "dir_model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.bin").write_text("w")
    other = reg.register("n", str(folder), description="a folder")
    assert (one["id"], two["id"], other["id"]) == ("m:1", "m:2", "n:1")
    assert [d["id"] for d in reg.list()] == ["m:2", "m:1", "n:1"]
    assert [d["id"] for d in reg.list(latest=True)] == ["m:2", "n:1"]
    assert [d["id"] for d in reg.list(tags=["area"])] == ["m:1"]
    assert [d["id"] for d in reg.list(tags=[["mse", "0.3"]])] == ["m:2"]
    assert [d["id"] for d in reg.list(tags=[["mse", "0.3"], "area"])] == []
    assert [d["id"] for d in reg.list(properties={"p": 1})] == ["m:1"]
    # files are immutable: version 1 still has its own bytes
    target = tmp_path / "dl"
    assert Path(reg.download(reg.get("m", 1), str(target))).read_text() == "one"
    with pytest.raises(FileExistsError):
        reg.download(reg.get("m", 2), str(target))
    assert Path(reg.download(reg.get("m", 2), str(target), exist_ok=True)).read_text() == "two"
    got = Path(reg.download(reg.get("n"), str(tmp_path / "dl2")))
    assert got.name == "dir_model" and (got / "sub" / "w.bin").read_text() == "w"
    # edits: add / remove tags, add-only properties
    reg.edit("m", 1, "add_tags", {"k": "v"})
    reg.edit("m", 1, "remove_tags", ["mse"])
    reg.edit("m", 1, "add_properties", {"p": 99, "q": 2})
    doc = reg.get("m", 1)
    assert doc["tags"] == {"area": "x", "k": "v"}
    assert doc["properties"] == {"p": 1, "q": 2}


CONCURRENT = """
import sys
from mlpipe.runtime.models import ModelRegistry
from mlpipe.runtime.registry import WorkspaceInfo
root, model, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
reg = ModelRegistry(WorkspaceInfo("w", {"main": root}, "main"))
for i in range(n):
    doc = reg.register("m", model, tags={"writer": tag, "i": i})
    reg.edit("m", 1, "add_tags", {f"{tag}-{i}": i})
"""


def test_concurrent_processes_each_get_a_version_and_keep_every_edit(ws, tmp_path):
    model = tmp_path / "model.txt"
    model.write_text("m")
    ModelRegistry(ws).register("m", str(model))  # version 1, edited by every writer below
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(tmp_path / "store"), str(model), f"p{k}", "8"]
        )
        for k in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * 4
    reg = ModelRegistry(ws)
    versions = reg.versions("m")
    assert [d["version"] for d in versions] == list(range(1, 34))
    per_writer: dict[str, list[int]] = {}
    for d in versions[1:]:
        per_writer.setdefault(d["tags"]["writer"], []).append(d["tags"]["i"])
    assert {w: sorted(i) for w, i in per_writer.items()} == {
        f"p{k}": list(range(8)) for k in range(4)
    }
    tags = reg.get("m", 1)["tags"]
    assert sorted(tags) == sorted(f"p{k}-{i}" for k in range(4) for i in range(8))


# ---------------------------------------------------------------------- scripts and steps


def run_script(code: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


PLAIN = """
import json, os
from mlpipe import Dataset, Datastore, Model, Workspace
ws = Workspace.from_config()
store = ws.get_default_datastore()
os.makedirs("up/sub", exist_ok=True)
open("up/a.csv", "w").write("x,y\\n1,2\\n")
open("up/sub/b.txt", "w").write("b")
store.upload(src_dir="up", target_path="folder", overwrite=True, show_progress=False)
store.upload_files(["up/a.csv"], relative_root="up", target_path="files", show_progress=False)
tab = Dataset.Tabular.from_delimited_files(path=(store, "files/a.csv"))
tab = tab.register(ws, "tab", description="d", tags={"t": 1}, create_new_version=True)
files = Dataset.File.from_files(path=[(store, "folder/")]).register(ws, "tree")
open("model.bin", "w").write("bytes")
model = Model.register(ws, model_path="model.bin", model_name="mod", tags={"a": "1"})
n = Datastore.get(ws, "workspaceblobstore").download("dl", prefix="folder", show_progress=False)
with Dataset.get_by_name(ws, "tree").mount() as ctx:
    mounted = sorted(os.listdir(ctx.mount_point))
print(json.dumps({
    "tab": tab.id, "tree": files.id, "model": model.id, "downloaded": n,
    "tree_files": Dataset.get_by_id(ws, "tree:1").to_path(), "mounted": mounted,
    "by_name": Dataset.get_by_name(ws, "tab", version=1).description,
    "datasets": sorted(ws.datasets), "models": sorted(ws.models),
}))
"""


def test_plain_script_registers_and_reads_back_in_a_second_script(tmp_path):
    proc = run_script(PLAIN, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "tab": "tab:1",
        "tree": "tree:1",
        "model": "mod:1",
        "downloaded": 2,
        "tree_files": ["/a.csv", "/sub/b.txt"],
        "mounted": ["a.csv", "sub"],
        "by_name": "d",
        "datasets": ["tab", "tree"],
        "models": ["mod"],
    }
    assert (tmp_path / "dl" / "folder" / "sub" / "b.txt").read_text() == "b"
    back = run_script(
        """
        from mlpipe import Model, Workspace
        ws = Workspace.from_config()
        print(Model(ws, name="mod").download("again"), Model.get_model_path("mod", _workspace=ws))
        """,
        tmp_path,
    )
    assert back.returncode == 0, back.stderr
    downloaded, cached = back.stdout.split()
    assert Path(downloaded).read_text() == "bytes"
    assert cached == str(tmp_path / "azureml-models" / "mod" / "1" / "model.bin")


IN_STEP = """
import sys
sys.modules["pydantic"] = None  # a step environment has neither of mlpipe's compiler deps
sys.modules["yaml"] = None
sys.path.insert(0, {package_parent!r})
from mlpipe.runtime.launch import install_import_hooks
install_import_hooks()
from azureml.core import Dataset, Datastore, Model, Workspace
from azureml.core.model import Model as M2
assert M2 is Model
ws = Workspace.from_config()
assert ws.name == "pipeline-ws", ws.name
assert sorted(ws.datastores) == ["main", "other"]
assert ws.get_default_datastore().name == "main"
Datastore(ws, "other").upload_files(["model.bin"], target_path="x", show_progress=False)
ds = Dataset.File.from_files(path=(Datastore.get(ws, "other"), "x/model.bin"))
ds = ds.register(ws, "in-step", create_new_version=True)
m = Model.register(ws, "model.bin", "step-model")
print(ds.id, m.id, m.run_id, Dataset.get_by_name(ws, "in-step").to_path())
from mlpipe.api.model import register_model  # what Run.register_model calls
class StepRun:
    id = "r1_train_run"
via_run = register_model(ws, model_name="step-model", model_path="model.bin", run=StepRun(),
                         tags=dict(via="run"))
print(via_run.id, [x.id for x in Model.list(ws, run_id="r1_train_run")])
try:
    Dataset.get_by_name(ws, "missing")
except Exception as exc:
    print(type(exc).__name__, "UserErrorException" in [c.__name__ for c in type(exc).__mro__])
"""


def test_in_a_step_the_pipeline_workspace_comes_from_the_run_context(tmp_path):
    (tmp_path / "main").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "model.bin").write_text("m")
    context = tmp_path / "run_context.json"
    context.write_text(
        json.dumps(
            {
                "id": "r1_train",
                "run_id": "r1",
                "step": "train",
                "workspace": "pipeline-ws",
                "datastores": {"main": str(tmp_path / "main"), "other": str(tmp_path / "other")},
                "default_datastore": "main",
            }
        )
    )
    code = IN_STEP.format(package_parent=str(PACKAGE_DIR.parent))
    proc = run_script(
        code,
        tmp_path / "cwd",
        {"MLPIPE_RUN_CONTEXT": str(context), "MLPIPE_PACKAGE_DIR": str(PACKAGE_DIR)},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "in-step:1 step-model:1 r1_train ['/model.bin']"
    assert lines[1] == "step-model:2 ['step-model:2']"
    assert lines[2] == "NotFound True"
    assert (tmp_path / "other" / "x" / "model.bin").read_text() == "m"
    assert (tmp_path / "main" / ".mlpipe" / "models" / "step-model" / "1.json").exists()


# -------------------------------------------------------------------- capture-time side effects

MLPIPE = str(Path(sys.executable).parent / "mlpipe")

READS_REGISTRY = """
from azureml.core import Dataset, Workspace
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
assert "regtest_rows" in ws.datasets
rows = Dataset.get_by_name(ws, "regtest_rows", version="latest")
step = PythonScriptStep("train.py", source_directory="src", inputs=[rows.as_named_input("rows")])
Pipeline(ws, [step])
"""


def mlpipe(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([MLPIPE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_validate_and_ir_write_nothing_compile_applies_once(pipeline_copy, tmp_path):
    p = pipeline_copy("registry")
    data = p.parent / "data"
    for args in (["validate", str(p)], ["ir", str(p)]):
        proc = mlpipe(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert not data.exists()

    out = tmp_path / "out"
    first = mlpipe("compile", str(p), "--target", "airflow", "-o", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "mlpipe: upload to workspaceblobstore/training-data: 1 uploaded" in first.stderr
    assert "mlpipe: dataset 'regtest_rows' registered version 1" in first.stderr
    csv = data / "training-data" / "rows.csv"
    assert csv.read_bytes() == (p.parent / "rows.csv").read_bytes()
    mtime = csv.stat().st_mtime_ns

    again = mlpipe("compile", str(p), "--target", "airflow", "-o", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 uploaded, 1 unchanged" in again.stderr
    assert "dataset 'regtest_rows' unchanged: version 1" in again.stderr
    assert csv.stat().st_mtime_ns == mtime  # same bytes: not rewritten

    (p.parent / "rows.csv").write_text("x,y\n5,50\n")
    changed = mlpipe("compile", str(p), "--target", "airflow", "-o", str(out), cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert "dataset 'regtest_rows' registered version 2" in changed.stderr

    # A later pipeline file finds the registered dataset while it is captured (read only).
    reader = p.parent / "reader.py"
    reader.write_text(READS_REGISTRY)
    ir = mlpipe("ir", str(reader), cwd=tmp_path)
    assert ir.returncode == 0, ir.stderr
    dataset = json.loads(ir.stdout)["steps"][0]["inputs"][0]["source"]["dataset"]
    assert (dataset["registered_name"], dataset["registered_version"]) == ("regtest_rows", 2)


def test_a_missing_upload_source_is_reported_at_its_line(pipeline_copy, tmp_path):
    p = pipeline_copy("registry")
    (p.parent / "rows.csv").unlink()
    proc = mlpipe("run", str(p), cwd=tmp_path)
    assert proc.returncode == 2
    assert "pipeline.py:29: uploading to datastore 'workspaceblobstore'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (p.parent / "data" / ".mlpipe" / "datasets").exists()


# ----------------------------------------------------------------- parquet and JSON lines tables

FORMATS_PIPELINE = """
import os
from azureml.core import Dataset, Environment, Workspace
from azureml.core.runconfig import RunConfiguration
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
store = ws.get_default_datastore()
store.upload_files(["rows.jsonl"], target_path="tables", overwrite=True, show_progress=False)
jsonl = Dataset.Tabular.from_json_lines_files(path=(store, "tables/rows.jsonl"))
parquet = Dataset.Tabular.from_parquet_files(path=(store, "tables/out/rows.parquet"))
config = RunConfiguration()
config.environment = Environment.from_pip_requirements("tables", "requirements.txt")
tables = OutputFileDatasetConfig(name="tables", destination=(store, "tables/out"))
make = PythonScriptStep("make.py", source_directory="src", arguments=[tables], runconfig=config)
read = PythonScriptStep(
    "read.py",
    source_directory="src",
    inputs=[jsonl.as_named_input("jsonl"), parquet.as_named_input("parquet")],
    runconfig=config,
)
read.run_after(make)
Pipeline(ws, [make, read])
"""

MAKE = """
import sys
import pandas as pd
from azureml.core import Dataset, Workspace
pd.DataFrame({"a": [1, 2, 3]}).to_parquet(sys.argv[1] + "/rows.parquet")
"""

READ = """
import json
from azureml.core import Dataset, Run, Workspace
run = Run.get_context()
ws = Workspace.from_config()
store = ws.get_default_datastore()
by_name = Dataset.Tabular.from_parquet_files(path=(store, "tables/out/rows.parquet"))
by_name = by_name.register(ws, "pq", create_new_version=True)
again = Dataset.get_by_name(ws, "pq").to_pandas_dataframe()
print(json.dumps({
    "jsonl": run.input_datasets["jsonl"].to_pandas_dataframe()["b"].tolist(),
    "parquet": run.input_datasets["parquet"].to_pandas_dataframe()["a"].tolist(),
    "by_name": again["a"].tolist(),
}))
"""


def test_parquet_and_json_lines_tables_as_inputs_and_by_name(tmp_path):
    p = tmp_path / "p"
    (p / "src").mkdir(parents=True)
    (p / "pipeline.py").write_text(FORMATS_PIPELINE)
    (p / "requirements.txt").write_text("pandas\npyarrow\n")
    (p / "rows.jsonl").write_text('{"b": 4}\n{"b": 5}\n')
    (p / "src" / "make.py").write_text(MAKE)
    (p / "src" / "read.py").write_text(READ)
    cache = os.environ.get("MLPIPE_TEST_CACHE_DIR") or str(
        PACKAGE_DIR.parent / ".mlpipe-test-cache"
    )
    proc = subprocess.run(
        [MLPIPE, "run", str(p / "pipeline.py")],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, MLPIPE_CACHE_DIR=cache),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("[read.py] {"))
    assert json.loads(line.split(" ", 1)[1]) == {
        "jsonl": [4, 5],
        "parquet": [1, 2, 3],
        "by_name": [1, 2, 3],
    }
