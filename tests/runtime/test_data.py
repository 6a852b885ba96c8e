"""What a script receives for inputs and what lands at the outputs' destinations."""

from __future__ import annotations

import json
import os

import pytest
from helpers import RECORD, from_dataset, from_step, inp, out, output, pipeline, step, write_source

from mlpipe.ir import (
    DataPath,
    DataPathSource,
    Dataset,
    DatasetSource,
    Parameter,
    ParameterSource,
    StepInput,
    UrlPath,
)

# For each input in run.input_datasets: the files under its local path (relative) and their
# contents; plus the argv paths, which must be the same paths.
INSPECT = (
    RECORD
    + """
_record("inspect")
from azureml.core import Run
run = Run.get_context()
out_dir = sys.argv[-1]
seen = {}
for name, ds in sorted(run.input_datasets.items()):
    path = ds if isinstance(ds, str) else os.path.dirname(ds.files[0])
    files = {}
    for root, dirs, names in os.walk(path, followlinks=True):
        for n in names:
            full = os.path.join(root, n)
            files[os.path.relpath(full, path).replace(os.sep, "/")] = open(full).read()
    seen[name] = {
        "path": path,
        "files": files,
        "dataset": ds if isinstance(ds, str) else type(ds).__name__,
        "is_dir": os.path.isdir(path),
    }
    if not isinstance(ds, str):
        seen[name]["tabular"] = {
            "files": [os.path.basename(f) for f in ds.files], "sep": ds.separator, "header": ds.header
        }
run.log("inputs", len(seen))
run.log("loss", 0.5)
run.log("loss", 0.25)
run.log_list("lst", [1, 2])
run.log_row("rows", a=1, b=2)
seen["_run"] = {"id": run.id, "experiment": run.experiment.name, "parent": run.parent.id,
                "workspace": run.experiment.workspace.name, "outputs": sorted(run.output_datasets),
                "argv": sys.argv[1:-1]}
open(os.path.join(out_dir, "seen.json"), "w").write(json.dumps(seen))
"""
)


@pytest.fixture
def data(world):
    w = world
    (w.ds / "images" / "sub").mkdir(parents=True)
    (w.ds / "images" / "a.txt").write_text("A")
    (w.ds / "images" / "b.csv").write_text("B")
    (w.ds / "images" / "sub" / "c.csv").write_text("C")
    (w.ds / "other").mkdir()
    (w.ds / "other" / "d.txt").write_text("D")
    return w


def test_folder_file_glob_and_multi_path_inputs(data):
    w = data
    inputs = [
        from_dataset("folder_dl", "images/", mode="download"),
        from_dataset("folder_mount", "images/", mode="mount"),
        from_dataset("file_dl", "images/a.txt", mode="download"),
        from_dataset("file_mount", "images/a.txt", mode="mount"),
        from_dataset("glob", "images/**/*.csv", mode="download"),
        StepInput(
            name="multi",
            source=DatasetSource(
                dataset=Dataset(
                    type="file",
                    paths=[
                        DataPath(datastore="workspaceblobstore", path="images/sub"),
                        DataPath(datastore="workspaceblobstore", path="other/d.txt"),
                    ],
                )
            ),
            mode="download",
        ),
        StepInput(
            name="dp",
            source=DataPathSource(path=DataPath(datastore="workspaceblobstore", path="other")),
            mode="mount",
        ),
        StepInput(
            name="url",
            source=DatasetSource(
                dataset=Dataset(type="file", paths=[UrlPath(url=f"file://{w.ds}/other/d.txt")])
            ),
            mode="download",
        ),
        StepInput(
            name="onc",
            source=DataPathSource(path=DataPath(datastore="workspaceblobstore", path="other")),
            mode="download",
            path_on_compute="local_copy/here",
        ),
    ]
    src = write_source(w.base / "inspect_src", {"main.py": INSPECT})
    ir = pipeline(
        "data",
        w.ds,
        [
            step(
                "inspect",
                src,
                arguments=[*[inp(i.name) for i in inputs], out("o")],
                inputs=inputs,
                outputs=[output("o")],
                base_dir=w.base,
            )
        ],
    )
    res = w.run(ir)
    assert res.ok, w.output()
    rec = json.loads(
        (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "inspect.json").read_text()
    )
    seen = json.loads(open(os.path.join(rec["outputs"]["o"]["url"], "seen.json")).read())
    everything = {"a.txt": "A", "b.csv": "B", "sub/c.csv": "C"}
    assert seen["folder_dl"]["files"] == everything
    assert seen["folder_mount"]["files"] == everything
    # a local mount reads through: the datastore folder itself, no copy
    assert seen["folder_mount"]["path"] == str(w.ds / "images")
    assert seen["file_dl"]["files"] == {"a.txt": "A"} and seen["file_dl"]["is_dir"]
    assert seen["file_mount"]["files"] == {"a.txt": "A"} and seen["file_mount"]["is_dir"]
    assert seen["glob"]["files"] == {"b.csv": "B", "sub/c.csv": "C"}
    assert seen["multi"]["files"] == {"images/sub/c.csv": "C", "other/d.txt": "D"}
    assert seen["dp"]["files"] == {"d.txt": "D"} and seen["dp"]["path"] == str(w.ds / "other")
    assert seen["url"]["files"] == {"d.txt": "D"}
    assert seen["onc"]["files"] == {"d.txt": "D"} and seen["onc"]["path"].endswith(
        "/src/local_copy/here"
    )
    assert seen["_run"]["parent"] == res.run_id
    assert seen["_run"]["experiment"] == "data" and seen["_run"]["workspace"] == "local"
    assert seen["_run"]["outputs"] == ["o"]
    # the argument paths are the paths input_datasets gives (file inputs)
    assert seen["_run"]["argv"] == [seen[i.name]["path"] for i in inputs]
    # metrics end up in the step record
    assert rec["metrics"]["loss"] == [0.5, 0.25]
    assert rec["metrics"]["lst"] == [1, 2] and rec["metrics"]["rows"] == {"a": 1, "b": 2}
    assert rec["metrics"]["inputs"] == len(inputs)
    # nothing was copied into the datastore for mounts; the snapshot work dirs are gone
    assert sorted(os.listdir(w.ds / "images")) == ["a.txt", "b.csv", "sub"]


def test_tabular_direct_input_object(data):
    w = data
    (w.ds / "tab").mkdir()
    (w.ds / "tab" / "t1.csv").write_text("a;b\n1;2\n")
    (w.ds / "tab" / "t2.csv").write_text("a;b\n3;4\n")
    inputs = [from_dataset("table", "tab/*.csv", mode="direct", type_="tabular", separator=";")]
    write_source(w.base / "inspect_src", {"main.py": INSPECT})
    src = w.base / "inspect_src"
    ir = pipeline(
        "data",
        w.ds,
        [
            step(
                "inspect",
                src,
                arguments=[inp("table"), out("o")],
                inputs=inputs,
                outputs=[output("o")],
                base_dir=w.base,
            )
        ],
    )
    res = w.run(ir)
    assert res.ok, w.output()
    rec = json.loads(
        (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "inspect.json").read_text()
    )
    seen = json.loads(open(os.path.join(rec["outputs"]["o"]["url"], "seen.json")).read())
    assert seen["table"]["dataset"] == "TabularInput"
    assert seen["table"]["tabular"] == {"files": ["t1.csv", "t2.csv"], "sep": ";", "header": True}


UPLOAD = (
    RECORD
    + """
_record("writer")
o = sys.argv[1]
os.makedirs(os.path.join(o, "logs"), exist_ok=True)
for rel in ("model.pkl", "notes.txt", "logs/run.log"):
    open(os.path.join(o, rel), "w").write(rel)
open(os.path.join(sys.argv[2], "r.txt"), "w").write("registered")
"""
)


def test_upload_globs_and_registration(world):
    w = world
    src = write_source(w.base / "w_src", {"main.py": UPLOAD})
    ir = pipeline(
        "up",
        w.ds,
        [
            step(
                "writer",
                src,
                arguments=[out("up"), out("reg")],
                outputs=[
                    output(
                        "up",
                        destination="uploads/{run-id}",
                        mode="upload",
                        source_globs=["*.pkl", "logs/*"],
                    ),
                    output(
                        "reg",
                        destination="fixed/reg",
                        register_as="my_data",
                        register_description="d",
                    ),
                ],
                base_dir=w.base,
            )
        ],
    )
    res = w.run(ir)
    assert res.ok, w.output()
    up = w.ds / "uploads" / f"{res.run_id}_writer"  # {run-id}: the step run
    files = sorted(str(p.relative_to(up)) for p in up.rglob("*") if p.is_file())
    assert files == ["logs/run.log", "model.pkl"]
    versions = registered_versions(w.ds, "my_data")
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["paths"] == [
        {"kind": "datapath", "datastore": "workspaceblobstore", "path": "fixed/reg"}
    ]
    assert versions[0]["description"] == "d"
    # reused: no new version; regenerated: a new one, fixed destination replaced in place
    w.run(ir)
    res = w.run(ir, regenerate_outputs=True)
    versions = registered_versions(w.ds, "my_data")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["source"]["run_id"] == res.run_id
    assert (w.ds / "fixed" / "reg" / "r.txt").read_text() == "registered"
    assert [p.name for p in (w.ds / "fixed").iterdir()] == ["reg"]  # no temp leftovers


def registered_versions(datastore, name: str) -> list[dict]:
    """The write-once version files of a registered dataset, oldest first."""
    folder = datastore / ".mlpipe" / "datasets" / name
    return sorted(
        (json.loads(f.read_text()) for f in folder.glob("*.json")), key=lambda v: v["version"]
    )


def test_parameter_backed_data_and_datastore_override(world, monkeypatch, tmp_path):
    w = world
    (w.ds / "v1").mkdir()
    (w.ds / "v1" / "f.txt").write_text("one")
    (w.ds / "v2").mkdir()
    (w.ds / "v2" / "f.txt").write_text("two")
    write_source(w.base / "inspect_src", {"main.py": INSPECT})
    src = w.base / "inspect_src"
    ir = pipeline(
        "pdata",
        w.ds,
        [
            step(
                "inspect",
                src,
                arguments=[inp("d"), out("o")],
                inputs=[
                    StepInput(name="d", source=ParameterSource(parameter="where"), mode="download")
                ],
                outputs=[output("o")],
                base_dir=w.base,
            )
        ],
        parameters=[
            Parameter(
                name="where",
                type="datapath",
                default=DataPath(datastore="workspaceblobstore", path="v1"),
            )
        ],
    )

    def seen_of(res, root=w.ds):
        rec = json.loads(
            (root / ".mlpipe" / "runs" / res.run_id / "steps" / "inspect.json").read_text()
        )
        return json.loads(open(os.path.join(rec["outputs"]["o"]["url"], "seen.json")).read())

    assert seen_of(w.run(ir))["d"]["files"] == {"f.txt": "one"}
    assert seen_of(w.run(ir, params={"where": "workspaceblobstore/v2"}))["d"]["files"] == {
        "f.txt": "two"
    }
    # the datastore's location can be overridden per worker with MLPIPE_DATASTORE_<NAME>
    other = tmp_path / "elsewhere"
    (other / "v1").mkdir(parents=True)
    (other / "v1" / "f.txt").write_text("moved")
    monkeypatch.setenv("MLPIPE_DATASTORE_WORKSPACEBLOBSTORE", str(other))
    assert seen_of(w.run(ir), other)["d"]["files"] == {"f.txt": "moved"}


def test_remote_datastore_through_fsspec(world):
    """A non-local datastore (fsspec's in-memory filesystem) for inputs, outputs and all state."""
    import fsspec

    w = world
    fs = fsspec.filesystem("memory")
    root = "memory://mlpipe-test-" + os.urandom(4).hex()
    fs.pipe(root + "/raw/a.txt", b"remote A")
    fs.pipe(root + "/raw/sub/b.txt", b"remote B")
    src1 = write_source(
        w.base / "p_src",
        {
            "main.py": RECORD
            + '\n_record("p")\nimport shutil\nshutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True)\n'
        },
    )
    src2 = write_source(
        w.base / "c_src",
        {
            "main.py": RECORD
            + '\n_record("c")\nopen(os.path.join(sys.argv[2], "n"), "w").write(str(sorted(os.listdir(sys.argv[1]))))\n'
        },
    )
    ir = pipeline(
        "remote",
        w.ds,
        [
            step(
                "p",
                src1,
                arguments=[inp("raw"), out("copy")],
                inputs=[from_dataset("raw", "raw", mode="mount")],
                outputs=[output("copy")],
                base_dir=w.base,
            ),
            step(
                "c",
                src2,
                arguments=[inp("x"), out("n")],
                inputs=[from_step("x", "p", "copy")],
                outputs=[output("n")],
                base_dir=w.base,
            ),
        ],
    )
    ir.datastores[0].url = root
    res = w.run(ir)
    assert res.ok, w.output()
    rec = json.loads(fs.cat(f"{root}/.mlpipe/runs/{res.run_id}/steps/c.json"))
    assert rec["outputs"]["n"]["url"].startswith("memory://")
    assert fs.cat(rec["outputs"]["n"]["url"] + "/n") == b"['a.txt', 'sub']"
    copied = json.loads(fs.cat(f"{root}/.mlpipe/runs/{res.run_id}/steps/p.json"))["outputs"]["copy"]
    assert fs.cat(copied["url"] + "/sub/b.txt") == b"remote B"
    # rerun: reused through the remote cache index
    res = w.run(ir)
    assert res.statuses == {"p": "reused", "c": "reused"}
    # a changed remote input reruns its consumer
    fs.pipe(root + "/raw/a.txt", b"remote A2")
    res = w.run(ir)
    assert res.statuses["p"] == "completed"
