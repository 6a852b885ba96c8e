"""Regenerate expected_args.json from pipeline.py's HOSTILE list and parameter default.

Reads pipeline.py as text (it is not run), so no azureml import is needed. The expected list is
HOSTILE, then str() of the literals 7, 2.5 and True, then str() of the defaults of the parameters
hostile_param, count, ratio and flag, written with the same json.dumps call echo_src/echo_args.py
uses.
"""

import ast
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARAMETERS = ("hostile_param", "count", "ratio", "flag")


def main() -> int:
    tree = ast.parse((HERE / "pipeline.py").read_text(encoding="utf-8"))
    hostile = None
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "HOSTILE":
            hostile = ast.literal_eval(node.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PipelineParameter":
            kwargs = {k.arg: k.value for k in node.keywords}
            defaults[ast.literal_eval(kwargs["name"])] = ast.literal_eval(kwargs["default_value"])
    if hostile is None or set(PARAMETERS) - set(defaults):
        raise SystemExit("make_expected: HOSTILE or a parameter not found in pipeline.py")
    expected = hostile + [str(7), str(2.5), str(True)] + [str(defaults[p]) for p in PARAMETERS]
    text = json.dumps(expected, ensure_ascii=False, indent=1) + "\n"
    (HERE / "expected_args.json").write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {len(expected)} expected arguments")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
