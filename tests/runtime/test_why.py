"""Why a step ran: the reason in its log line and record, against the newest completed run of the
same step; the per-step history pointers that find that run without reading other runs."""

from __future__ import annotations

import json
import shutil
import threading

from helpers import (
    RECORD,
    from_dataset,
    from_step,
    inp,
    lit,
    out,
    output,
    par,
    pipeline,
    step,
    write_source,
)

from mlpipe.ir import Parameter
from mlpipe.runtime import store, why
from mlpipe.runtime.fingerprint import combine

PREP = (
    RECORD
    + """
_record("prep")
src, dst = sys.argv[1], sys.argv[2]
text = "".join(open(os.path.join(src, f)).read() for f in sorted(os.listdir(src)))
open(os.path.join(dst, "prepared.txt"), "w").write(text.upper())
"""
)
TRAIN = (
    RECORD
    + """
_record("train")
if sys.argv[3] == "9.0":
    sys.exit("train: lr 9.0 is far too high")
print("train: lr", sys.argv[3])
open(os.path.join(sys.argv[2], "model.txt"), "w").write(sys.argv[3] + sys.argv[4])
"""
)


def build(w, lr_arg=None, extra_arg="x"):
    srcs = {"prep": w.base / "prep_src", "train": w.base / "train_src"}
    return pipeline(
        "why",
        w.ds,
        [
            step(
                "prep",
                srcs["prep"],
                arguments=[inp("raw"), out("prepared")],
                inputs=[from_dataset("raw", "raw/")],
                outputs=[output("prepared")],
                base_dir=w.base,
            ),
            step(
                "train",
                srcs["train"],
                arguments=[inp("data"), out("model"), lr_arg or par("lr"), lit(extra_arg)],
                inputs=[from_step("data", "prep", "prepared")],
                outputs=[output("model")],
                base_dir=w.base,
            ),
        ],
        parameters=[Parameter(name="lr", type="float", default=0.5)],
    )


def seed(w):
    write_source(w.base / "prep_src", {"main.py": PREP})
    write_source(w.base / "train_src", {"main.py": TRAIN, "utils/io.py": "x = 1\n"})
    (w.ds / "raw").mkdir()
    (w.ds / "raw" / "one.txt").write_text("alpha ")
    (w.ds / "raw" / "two.txt").write_text("beta")


def reasons(w, res) -> dict[str, str]:
    """{step: reason} from the records, checked against the log lines."""
    out_ = {}
    text = w.output()
    for name in res.steps:
        rec = json.loads(
            (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / f"{name}.json").read_text()
        )
        assert rec["runner"] == "local"
        out_[name] = rec["reason"]
        if rec["status"] == "reused":
            assert f"mlpipe: step '{name}' reused from run {rec['reused_from']}" in text
            assert rec["reason"] == f"reused from run {rec['reused_from']}"
        else:
            assert f"mlpipe: step '{name}' running ({rec['reason']}; fingerprint" in text, text
    return out_


def test_each_change_is_named(world):
    w = world
    seed(w)
    first = w.run(build(w))
    assert reasons(w, first) == {"prep": "no earlier run", "train": "no earlier run"}

    again = w.run(build(w))
    assert reasons(w, again) == {
        "prep": f"reused from run {first.run_id}",
        "train": f"reused from run {first.run_id}",
    }

    (w.base / "train_src" / "utils" / "io.py").write_text("x = 2\n")
    (w.base / "train_src" / "new.txt").write_text("new\n")
    res = w.run(build(w))
    assert reasons(w, res)["train"] == "source changed: new.txt, utils/io.py"
    rec = json.loads((w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "train.json").read_text())
    assert rec["compared_with"] == again.run_id  # the newest completed run, a reused one here
    assert rec["fingerprint_parts"]["parameters"] == {"lr": 0.5}

    res = w.run(build(w), params={"lr": 0.7})
    assert reasons(w, res)["train"] == "parameter lr: 0.5 → 0.7"

    res = w.run(build(w, extra_arg="y"), params={"lr": 0.7})
    assert reasons(w, res)["train"] == "argument 4 changed"

    (w.ds / "raw" / "two.txt").write_text("gamma")
    res = w.run(build(w, extra_arg="y"), params={"lr": 0.7})
    assert reasons(w, res) == {
        "prep": "input raw changed: two.txt",
        "train": "output of upstream step prep changed",
    }

    res = w.run(build(w, extra_arg="y"), params={"lr": 0.7}, regenerate_outputs=True)
    assert reasons(w, res) == {"prep": "regenerate_outputs", "train": "regenerate_outputs"}


def test_gone_outputs_and_allow_reuse_false(world):
    w = world
    seed(w)
    first = w.run(build(w))
    shutil.rmtree(w.ds / "dataset" / f"{first.run_id}_prep" / "prepared")
    res = w.run(build(w))
    assert reasons(w, res)["prep"] == f"the outputs of run {first.run_id} are gone"
    ir = build(w)
    ir.steps[1].allow_reuse = False
    res = w.run(ir)
    assert reasons(w, res)["train"] == "allow_reuse=False"


def test_differences_name_script_arguments_environment_and_more():
    base = {
        "mlpipe_fingerprint": 1,
        "script": "train.py",
        "arguments": [{"kind": "literal", "value": "a"}] * 3,
        "parameters": {"epochs": 41},
        "environment": "e1",
        "compute": "cpu",
        "inputs": [{"name": "raw", "mode": "mount", "content": "c1"}],
        "outputs": [],
    }
    changed = dict(
        base,
        script="train2.py",
        arguments=[{"kind": "literal", "value": "a"}] * 2 + [{"kind": "literal", "value": "b"}],
        parameters={"epochs": 42},
        environment="e2",
        inputs=[{"name": "raw", "mode": "download", "content": "c1"}],
    )
    got = why.differences(
        {"parts": base, "packages": ["numpy==2.0"]},
        {"parts": changed, "packages": ["numpy==2.0", "pandas==2.3"]},
        lambda digest: None,
        {},
    )
    assert got == [
        "script changed: train.py → train2.py",
        "parameter epochs: 41 → 42",
        "argument 3 changed",
        "environment changed: + pandas==2.3",
        "input raw changed (mode)",
    ]
    assert why.explain([]) == "fingerprint changed"
    many = [f"c{i}" for i in range(8)]
    assert why.explain(many).endswith("c5 (+2 more changes)")


def test_source_listing_names_at_most_three_files(tmp_path):
    from mlpipe.runtime.state import Datastores, State

    state = State(
        Datastores({"datastores": [{"name": "workspaceblobstore", "url": str(tmp_path)}]})
    )
    old = [(f"f{i}.py", "a") for i in range(6)]
    new = [(f"f{i}.py", "b") for i in range(5)] + [("f5.py", "a")]
    why.save_manifest(state, combine(old), old)
    why.save_manifest(state, combine(new), new)
    got = why.differences(
        {"parts": {"snapshot": combine(old)}},
        {"parts": {"snapshot": combine(new)}},
        lambda d: why.load_manifest(state, d),
        {},
    )
    assert got == ["source changed: f0.py, f1.py, f2.py (+2 more)"]


def test_history_pointers_are_never_lost_by_concurrent_writers(tmp_path):
    folder = str(tmp_path / "history" / "p" / "s")
    assert why.newest(folder) is None
    numbers: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(10):
            n = why.add_pointer(folder, {"run_id": f"w{k}-{i}"})
            with lock:
                numbers.append(n)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(numbers) == list(range(1, 41))  # each writer got its own number
    assert why.newest(folder)["run_id"] in {f"w{k}-9" for k in range(4)}
    # the hint is only a hint: stale or lost, readers still find the newest pointer
    store.write_bytes_atomic(str(tmp_path / "history" / "p" / "s" / "latest"), b"3")
    assert why.newest(folder) == json.loads((tmp_path / "history/p/s/40.json").read_text())
    (tmp_path / "history" / "p" / "s" / "latest").unlink()
    assert why.newest(folder) == json.loads((tmp_path / "history/p/s/40.json").read_text())
    assert why.add_pointer(folder, {"run_id": "next"}) == 41
