"""Step environments: a cached venv per environment (built once per cache dir), `azureml.core` and
`mlpipe` importable inside it without mlpipe being installed there, pandas from pip_packages."""

from __future__ import annotations

import json
import os

from helpers import RECORD, env, from_dataset, out, output, pipeline, step, write_source

from mlpipe.runtime import envs

SIX = (
    RECORD
    + """
_record("six")
import six
import azureml.core
import mlpipe.azureml.core
from azureml.core import Run
from mlpipe import Run as MRun
import mlpipe
run = Run.get_context()
run.log("answer", 42)
info = {
    "six": six.__file__,
    "python": sys.executable,
    "prefix": sys.prefix,
    "same_module": azureml.core is mlpipe.azureml.core,
    "same_run": Run is MRun,
    "mlpipe_from": os.path.dirname(mlpipe.__file__),
    "run_id": run.id,
}
try:
    import pydantic  # the runtime's env must not need the compiler's dependencies
    info["pydantic"] = True
except ImportError:
    info["pydantic"] = False
open(os.path.join(sys.argv[1], "info.json"), "w").write(json.dumps(info))
"""
)


def _record_of(w, res, name):
    return json.loads(
        (w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / f"{name}.json").read_text()
    )


def test_environment_venv_with_azureml_run(world):
    w = world
    src = write_source(w.base / "six_src", {"main.py": SIX})
    e = env("six-env", ["six==1.16.0", "azureml-defaults", "pip"])
    ir = pipeline(
        "envs",
        w.ds,
        [
            step(
                "six",
                src,
                arguments=[out("o")],
                outputs=[output("o")],
                environment="six-env",
                base_dir=w.base,
            )
        ],
        environments=[e],
    )
    res = w.run(ir)
    assert res.ok, w.output()
    rec = _record_of(w, res, "six")
    info = json.loads(open(os.path.join(rec["outputs"]["o"]["url"], "info.json")).read())
    env_root = os.path.join(w.cache, "envs", envs.env_key(e.model_dump(mode="json")))
    assert info["prefix"] == env_root
    assert info["six"].startswith(env_root)
    assert info["same_module"] and info["same_run"]
    assert info["pydantic"] is False
    assert os.path.realpath(info["mlpipe_from"]) == os.path.realpath(
        os.path.dirname(os.path.dirname(envs.__file__))
    )
    assert rec["metrics"] == {"answer": 42}
    assert info["run_id"].startswith(res.run_id)
    # built once: the marker records what was installed (azureml-* and pip are left out)
    marker = open(os.path.join(env_root, envs.READY_MARKER)).read().split()
    assert marker == ["six==1.16.0"]
    # the venv is reused: a second run with regenerate builds nothing
    res = w.run(ir, regenerate_outputs=True)
    assert res.ok and "building environment" not in w.output()


def test_environment_build_failure_names_the_package(world):
    w = world
    src = write_source(w.base / "s", {"main.py": "print('never')\n"})
    bad = "mlpipe-no-such-package-zz9"
    e = env("bad-env", ["six==1.16.0", f"{bad}==0.0.1"])
    ir = pipeline(
        "bad",
        w.ds,
        [step("s", src, environment="bad-env", base_dir=w.base)],
        environments=[e],
    )
    res = w.run(ir)
    assert res.statuses == {"s": "failed"}
    assert bad in res.steps["s"].result.error
    assert "six" not in res.steps["s"].result.error.split("\n")[0].split(":", 1)[1]
    assert not os.path.exists(
        os.path.join(w.cache, "envs", envs.env_key(e.model_dump(mode="json")))
    )


IRIS = (
    RECORD
    + """
_record("iris")
from azureml.core import Run
df = Run.get_context().input_datasets["iris"].to_pandas_dataframe()
open(os.path.join(sys.argv[1], "shape.json"), "w").write(json.dumps(
    {"shape": list(df.shape), "columns": list(df.columns), "mean": float(df["x"].mean())}))
"""
)


def test_tabular_direct_input_with_pandas_from_environment(world):
    w = world
    (w.ds / "iris").mkdir()
    (w.ds / "iris" / "part1.csv").write_text("x|species\n1.0|a\n2.0|b\n")
    (w.ds / "iris" / "part2.csv").write_text("x|species\n3.0|a\n")
    src = write_source(w.base / "iris_src", {"main.py": IRIS})
    ir = pipeline(
        "tab",
        w.ds,
        [
            step(
                "iris",
                src,
                arguments=[out("o")],
                inputs=[
                    from_dataset("iris", "iris/", mode="direct", type_="tabular", separator="|")
                ],
                outputs=[output("o")],
                environment="pandas-env",
                base_dir=w.base,
            )
        ],
        environments=[env("pandas-env", ["pandas"])],
    )
    res = w.run(ir)
    assert res.ok, w.output()
    rec = _record_of(w, res, "iris")
    got = json.loads(open(os.path.join(rec["outputs"]["o"]["url"], "shape.json")).read())
    assert got == {"shape": [3, 2], "columns": ["x", "species"], "mean": 2.0}


def test_installable_packages_filter():
    e = {
        "pip_packages": [
            "azureml-sdk",
            "azureml_core==1.0",
            "python=3.8",
            "pip",
            " numpy>=1 ",
            "-r x.txt",
            "",
        ]
    }
    assert envs.installable_packages(e) == ["numpy>=1"]


def test_venv_and_pip_fallback_without_uv(tmp_path, monkeypatch):
    """Workers without uv (an orchestrator's own venv) build with `python -m venv` + pip."""
    import subprocess

    monkeypatch.setattr(envs, "find_uv", lambda: None)
    spec = {"name": "nouv", "pip_packages": ["six==1.16.0"], "content_hash": "nouv-" + "0" * 20}
    python = envs.ensure_env(spec, str(tmp_path))
    assert python.startswith(str(tmp_path))
    r = subprocess.run(
        [python, "-c", "import six, sys; print(sys.prefix)"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip().startswith(str(tmp_path))
    # built once: a second call returns at once
    assert envs.ensure_env(spec, str(tmp_path)) == python
