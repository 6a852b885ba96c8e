"""The package's shape: functions that fit on a screen, and modules that do not import each other.

Both are read from the source with `ast` (nothing is imported). Imports inside functions count as
much as module-level ones: a function-level import only moves a cycle to run time. Imports under
`if TYPE_CHECKING:` are never executed and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> import name (pyproject.toml's package-dir).
PACKAGES = {"compiler": "mlpipe", "backends": "mlpipe.backends", "templates": "mlpipe.templates"}
MAX_FUNCTION_LINES = 80
# Functions still over the limit, each being split by another change of this session; remove an
# entry when its split lands (the test fails on an entry that no longer needs to be here).
TOO_LONG_FOR_NOW: set[str] = set()  # functions being split on a branch: "file:Class.func"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Import name -> (file, is a package's __init__)."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found[".".join([package, *parts])] = (path, is_package)
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _imported(node: ast.AST, name: str, is_package: bool, modules) -> list[str]:
    """The package modules one import statement of module `name` loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = (name if is_package else name.rpartition(".")[0]).split(".")
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    # `from package import module` loads that module; `from module import name` the module.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {module of the package it imports: first line doing so}."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skipped = _type_checking_nodes(tree)
        edges: dict[str, int] = {}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            for target in _imported(node, name, is_package, modules):
                if target in modules and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    described = [
        " / ".join(
            f"{a} -> {b} (line {line})"
            for a in component
            for b, line in graph[a].items()
            if b in component
        )
        for component in found
    ]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}, "e": {}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_function_level_and_relative_imports_count(tmp_path):
    source = "def f():\n    from ..api import data\n    from .other import thing\n"
    tree = ast.parse(source)
    modules = {
        "mlpipe.x.y": None,
        "mlpipe.api": None,
        "mlpipe.api.data": None,
        "mlpipe.x.other": None,
    }
    seen = [
        target
        for node in ast.walk(tree)
        for target in _imported(node, "mlpipe.x.y", False, modules)
    ]
    assert seen == ["mlpipe.api.data", "mlpipe.x.other"]


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            yield f"{prefix}{node.name}", node.end_lineno - start + 1
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def test_functions_fit_on_a_screen():
    too_long = {}
    for folder in ("compiler", "backends"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), rel)
            for name, lines in _functions(tree):
                if lines > MAX_FUNCTION_LINES:
                    too_long[f"{rel}:{name}"] = lines
    new = {k: v for k, v in too_long.items() if k not in TOO_LONG_FOR_NOW}
    assert not new, (
        f"functions over {MAX_FUNCTION_LINES} lines (split them by responsibility): {new}"
    )
    stale = sorted(TOO_LONG_FOR_NOW - set(too_long))
    assert not stale, f"split already: remove from TOO_LONG_FOR_NOW: {stale}"
