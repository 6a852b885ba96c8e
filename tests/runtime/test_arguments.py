"""Arguments and parameters reach the script byte-exact; the launcher behaves like `python script.py`."""

from __future__ import annotations

import json

import pytest
from helpers import RECORD, lit, out, output, par, pipeline, step, write_source

from mlpipe.ir import LiteralArg, Parameter, ParameterArg

HOSTILE = [
    "double \"quoted\" and 'single'",
    "{{ ds }} {{ params.x }} {% if %}",
    "$HOME; rm -rf / && echo $(whoami) `id` | cat > x",
    "line one\nline two\r\nline three",
    "tab\there",
    "unicode: äöü ß 日本語 🚀",
    "",
    "back\\slash \\n \\\\",
    "--flag=value with spaces",
    "-",
    "%s %d %(name)s {0} {name}",
    "*.csv ?",
    "  leading and trailing  ",
]

DUMP = (
    RECORD
    + """
_record("dump")
out_dir = sys.argv[-1]
info = {
    "argv": sys.argv[1:-1],
    "name": __name__,
    "file": __file__,
    "argv0": sys.argv[0],
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "aml": {k: v for k, v in os.environ.items() if k.startswith("AML_PARAMETER_")},
    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "env_var": os.environ.get("MY_VAR"),
}
with open(os.path.join(out_dir, "info.json"), "w", encoding="utf-8") as fh:
    json.dump(info, fh, ensure_ascii=False)
"""
)


def _info(w, res):
    rec = json.loads((w.ds / ".mlpipe" / "runs" / res.run_id / "steps" / "dump.json").read_text())
    return json.loads(open(rec["outputs"]["o"]["url"] + "/info.json", encoding="utf-8").read())


def test_hostile_arguments_arrive_byte_exact(world):
    w = world
    src = write_source(w.base / "src", {"main.py": DUMP})
    params = [
        Parameter(name="p_str", type="string", default="x"),
        Parameter(name="p_bool", type="bool", default=False),
        Parameter(name="p_int", type="int", default=1),
        Parameter(name="p_float", type="float", default=1.5),
    ]
    args = [lit(a) for a in HOSTILE] + [lit(True), lit(3), lit(2.5)]
    args += [par("p_str"), par("p_bool"), par("p_int"), par("p_float"), out("o")]
    ir = pipeline(
        "args",
        w.ds,
        [
            step(
                "dump",
                src,
                arguments=args,
                outputs=[output("o")],
                params={"mode": LiteralArg(value="fast; $x"), "flag": ParameterArg(name="p_bool")},
                env_vars={"MY_VAR": "a b $c"},
                base_dir=w.base,
            )
        ],
        parameters=params,
    )
    hostile_str = 'it\'s "$(x)"\n{{ y }}\t\\'
    res = w.run(
        ir, params={"p_str": hostile_str, "p_bool": "true", "p_int": "42", "p_float": "0.1"}
    )
    assert res.ok, w.output()
    info = _info(w, res)
    assert info["argv"] == HOSTILE + ["True", "3", "2.5", hostile_str, "True", "42", "0.1"]
    assert info["name"] == "__main__"
    assert info["file"].endswith("/main.py") and info["file"] == info["path0"] + "/main.py"
    assert info["argv0"] == "main.py"
    assert info["cwd"] == info["path0"]
    assert info["aml"] == {"AML_PARAMETER_mode": "fast; $x", "AML_PARAMETER_flag": "True"}
    assert info["unbuffered"] == "1"
    assert info["env_var"] == "a b $c"


def test_bad_parameter_values_are_rejected(world):
    from mlpipe.errors import MlpipeError

    w = world
    src = write_source(w.base / "src", {"main.py": DUMP})
    ir = pipeline(
        "args",
        w.ds,
        [step("dump", src, arguments=[par("n"), out("o")], outputs=[output("o")], base_dir=w.base)],
        parameters=[
            Parameter(name="n", type="int", default=1),
            Parameter(name="b", type="bool", default=True),
        ],
    )
    for bad in ({"n": "ten"}, {"n": "1.5"}, {"b": "maybe"}, {"nope": 1}):
        with pytest.raises(MlpipeError):
            w.run(ir, params=bad)
    assert not w.side.exists()


@pytest.mark.parametrize(
    "ptype,value,expected",
    [
        ("bool", "true", True),
        ("bool", "False", False),
        ("bool", "1", True),
        ("bool", 0, False),
        ("int", "7", 7),
        ("int", 7.0, 7),
        ("float", "1e-3", 0.001),
        ("float", 2, 2.0),
        ("string", 5, "5"),
        ("string", "", ""),
    ],
)
def test_parameter_coercion(ptype, value, expected):
    from mlpipe.runtime.params import resolve_parameters

    ir = {"parameters": [{"name": "p", "type": ptype, "default": expected}], "datastores": []}
    got = resolve_parameters(ir, {"p": value})["p"]
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "ptype,value",
    [("bool", "yes"), ("bool", 2), ("int", "x"), ("int", True), ("float", "nan"), ("float", "")],
)
def test_parameter_coercion_rejects(ptype, value):
    from mlpipe.runtime.params import ParameterError, resolve_parameters

    ir = {"parameters": [{"name": "p", "type": ptype, "default": 0}], "datastores": []}
    with pytest.raises(ParameterError, match="'p'"):
        resolve_parameters(ir, {"p": value})


def test_datapath_parameter_values():
    from mlpipe.runtime.params import ParameterError, resolve_parameters

    ir = {
        "parameters": [
            {
                "name": "d",
                "type": "datapath",
                "default": {"kind": "datapath", "datastore": "store", "path": "a"},
            }
        ],
        "datastores": [{"name": "store", "url": "/tmp/x"}],
    }
    assert resolve_parameters(ir, {})["d"] == {
        "kind": "datapath",
        "datastore": "store",
        "path": "a",
    }
    assert resolve_parameters(ir, {"d": "store/b/c"})["d"]["path"] == "b/c"
    assert resolve_parameters(ir, {"d": "s3://bucket/k"})["d"] == {
        "kind": "url",
        "url": "s3://bucket/k",
    }
    with pytest.raises(ParameterError):
        resolve_parameters(ir, {"d": "unknown/x"})


def test_dataset_parameter_keeps_how_its_files_are_read():
    """A tabular dataset parameter (default or override) keeps its format and which registered
    version it is: without them a parquet dataset was read as CSV by the step."""
    from mlpipe.runtime.params import ParameterError, resolve_parameters

    parquet = {
        "type": "tabular",
        "paths": [{"kind": "datapath", "datastore": "store", "path": "t.parquet"}],
        "format": "parquet",
        "registered_name": "flats",
        "registered_version": 3,
    }
    ir = {
        "parameters": [{"name": "d", "type": "dataset", "default": parquet}],
        "datastores": [{"name": "store", "url": "/tmp/x"}],
    }
    got = resolve_parameters(ir, {})["d"]
    assert (got["format"], got["registered_name"], got["registered_version"]) == (
        "parquet",
        "flats",
        3,
    )
    override = dict(parquet, format="json_lines", registered_name=None, registered_version=None)
    assert resolve_parameters(ir, {"d": override})["d"]["format"] == "json_lines"
    with pytest.raises(ParameterError, match="dataset format 'orc'"):
        resolve_parameters(ir, {"d": dict(parquet, format="orc")})
