"""`mlpipe migrate`: move code from `azureml.*` imports to mlpipe's own names (a libcst codemod).

What changes, and only that:
- `from azureml.core import Workspace, Run as R` -> `from mlpipe import Workspace, Run as R`;
- `import azureml.core` + `azureml.core.Workspace` -> `import mlpipe` + `mlpipe.Workspace`;
- `import azureml.core as aml` / `from azureml import core` -> `import mlpipe as aml` / `... as core`
  (references through a submodule, `aml.compute.AmlCompute`, become `aml.AmlCompute`).

A v1 name has an mlpipe equivalent when `mlpipe` exports an object under that name which is the very
object mlpipe's `azureml` compatibility layer serves for it (the table in `mlpipe.azureml.MODULES`),
and which is not one of the "not supported yet" stand-ins (`mlpipe.api.unsupported.ALTERNATIVES`).
Everything else stays on `azureml` — the compatibility layer keeps serving it — and is reported as
`file:line: reason`.

Line numbers never move (capture records origins as file:line, so a migrated pipeline must give
the same IR): one import statement becomes statements on the same line(s) joined by `;`, and a
name taken out of a parenthesised import leaves a comment line in its place.

Files are first all parsed and rewritten in memory; only when every one of them parsed are they
written, each through a temporary file in its own folder and `os.replace`.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import functools
import importlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider, ScopeProvider

from .errors import MlpipeError, Problem

ROOT = "azureml"
TARGET = "mlpipe"

# Folders never searched when migrating a directory.
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "build", "dist"}


# ---------------------------------------------------------------------------------- name table


@dataclass(frozen=True)
class Resolution:
    kind: str  # "name" (mlpipe offers it), "module" (an azureml submodule), "none"
    value: str = ""  # the mlpipe name, or the module path below azureml
    reason: str = ""  # why there is no equivalent (kind "none")


def _dotted(path: str, name: str = "") -> str:
    return ".".join(p for p in (ROOT, path, name) if p)


def _compat_tables() -> tuple[dict[str, list[str]], dict[str, str]]:
    from .api.unsupported import ALTERNATIVES
    from .azureml import MODULES

    return MODULES, ALTERNATIVES


@functools.cache
def resolve(path: str, name: str) -> Resolution:
    """What `azureml.<path>.<name>` becomes in mlpipe."""
    modules, alternatives = _compat_tables()
    sub = f"{path}.{name}" if path else name
    if sub in modules:
        return Resolution("module", sub)
    if name in alternatives:
        alt = alternatives[name]
        hint = f"use {alt} instead" if alt else "mlpipe has no equivalent yet"
        return Resolution("none", reason=f"{name} is not supported by mlpipe yet ({hint})")
    import mlpipe

    try:
        mine = getattr(mlpipe, name)
    except AttributeError:
        return Resolution(
            "none", reason=f"{_dotted(path, name)} has no mlpipe equivalent; left on azureml"
        )
    if name in modules.get(path, ()):
        # The compatibility layer serves this name here: it must be the same object.
        compat = importlib.import_module(".".join(p for p in ("mlpipe.azureml", path) if p))
        served = getattr(compat, name, None)
        if served is not mine:
            return Resolution(
                "none",
                reason=f"{_dotted(path, name)} is not the same as mlpipe.{name}; left on azureml",
            )
    return Resolution("name", name)


def _is_azureml(dotted: str | None) -> bool:
    return bool(dotted) and (dotted == ROOT or dotted.startswith(ROOT + "."))


def _below_root(dotted: str) -> str:
    return dotted[len(ROOT) + 1 :] if dotted != ROOT else ""


# ------------------------------------------------------------------------- whitespace helpers


def _newlines(node: cst.CSTNode) -> int:
    return cst.Module(body=[]).code_for_node(node).count("\n")


def _is_empty(ws: cst.BaseParenthesizableWhitespace) -> bool:
    return isinstance(ws, cst.SimpleWhitespace) and ws.value == ""


def _concat(a, b):
    """Two adjacent whitespace nodes as one, or None when that cannot be expressed."""
    if _is_empty(b):
        return a
    if _is_empty(a):
        return b
    return None


def _merge(before, after, note: str | None):
    """The whitespace that replaces `before NAME after` once NAME is taken out, keeping lines.

    When NAME ended a line, that line stays, holding `note` (and NAME's own trailing comment)."""
    if isinstance(after, cst.ParenthesizedWhitespace):
        if isinstance(before, cst.ParenthesizedWhitespace):
            comment = after.first_line.comment
            text = " ".join(
                c for c in (f"# {note}" if note else None, comment.value if comment else None) if c
            )
            line = cst.EmptyLine(
                indent=before.indent,
                whitespace=before.last_line if text else cst.SimpleWhitespace(""),
                comment=cst.Comment(text) if text else None,
                newline=after.first_line.newline,
            )
            return after.with_changes(
                first_line=before.first_line,
                empty_lines=[*before.empty_lines, line, *after.empty_lines],
            )
        return after
    return before


class _Unchanged(Exception):
    """The statement cannot be rewritten without moving lines."""


def _filtered_names(node: cst.ImportFrom, keep: list[bool], notes: list[str | None]):
    """`node` keeping only the aliases marked in `keep`, with the same number of lines."""
    aliases = list(node.names)
    kept = [a for a, k in zip(aliases, keep, strict=True) if k]
    if not kept:
        raise ValueError("nothing kept")
    if node.lpar is None:
        names = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in kept]
        names = [
            a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            if i < len(names) - 1
            else a
            for i, a in enumerate(names)
        ]
        # Keep the original separators where both neighbours stay.
        result = node.with_changes(names=names)
        if _newlines(result) != _newlines(node):
            raise _Unchanged
        return result
    # Parenthesised: separators W0 .. Wk around the names N1 .. Nk.
    trailing = not isinstance(aliases[-1].comma, cst.MaybeSentinel)
    seps = [node.lpar.whitespace_after]
    for i, alias in enumerate(aliases):
        comma = alias.comma
        after = comma.whitespace_after if isinstance(comma, cst.Comma) else cst.SimpleWhitespace("")
        if isinstance(comma, cst.Comma) and not _is_empty(comma.whitespace_before):
            raise _Unchanged
        if i == len(aliases) - 1:
            after = _concat(after, node.rpar.whitespace_before)
            if after is None:
                raise _Unchanged
        seps.append(after)
    names = list(aliases)
    i = 0
    flags = list(keep)
    labels = list(notes)
    while i < len(names):
        if flags[i]:
            i += 1
            continue
        seps[i] = _merge(seps[i], seps[i + 1], labels[i])
        del seps[i + 1], names[i], flags[i], labels[i]
    rebuilt = []
    for j, alias in enumerate(names):
        last = j == len(names) - 1
        if not last:
            rebuilt.append(alias.with_changes(comma=cst.Comma(whitespace_after=seps[j + 1])))
        elif trailing:
            rebuilt.append(alias.with_changes(comma=cst.Comma(whitespace_after=seps[j + 1])))
        else:
            rebuilt.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
    rpar = node.rpar.with_changes(
        whitespace_before=cst.SimpleWhitespace("") if trailing else seps[-1]
    )
    result = node.with_changes(
        names=rebuilt, lpar=node.lpar.with_changes(whitespace_after=seps[0]), rpar=rpar
    )
    if _newlines(result) != _newlines(node):
        raise _Unchanged
    return result


def _realign(old: cst.ImportFrom, new: cst.ImportFrom) -> cst.ImportFrom:
    """Continuation lines aligned under the opening parenthesis stay aligned under it."""
    if new.lpar is None:
        return new
    first = cst.Module(body=[]).code_for_node(old).split("\n", 1)[0]
    column = first.index("(") + 1
    shift = len(TARGET) - len(get_full_name_for_node(old.module))

    def fix(ws):
        if isinstance(ws, cst.ParenthesizedWhitespace) and len(ws.last_line.value) == column:
            return ws.with_changes(last_line=cst.SimpleWhitespace(" " * (column + shift)))
        return ws

    names = [
        a.with_changes(comma=a.comma.with_changes(whitespace_after=fix(a.comma.whitespace_after)))
        if isinstance(a.comma, cst.Comma)
        else a
        for a in new.names
    ]
    return new.with_changes(
        names=names,
        lpar=new.lpar.with_changes(whitespace_after=fix(new.lpar.whitespace_after)),
        rpar=new.rpar.with_changes(whitespace_before=fix(new.rpar.whitespace_before)),
    )


def _compact_from(module: cst.BaseExpression, aliases: list[cst.ImportAlias]) -> cst.ImportFrom:
    names = [
        cst.ImportAlias(
            name=a.name,
            asname=a.asname,
            comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            if i < len(aliases) - 1
            else cst.MaybeSentinel.DEFAULT,
        )
        for i, a in enumerate(aliases)
    ]
    return cst.ImportFrom(module=module, names=names)


def _import_mlpipe_as(name: str) -> cst.Import:
    return cst.Import(
        names=[cst.ImportAlias(name=cst.Name(TARGET), asname=cst.AsName(name=cst.Name(name)))]
    )


# ------------------------------------------------------------------------------ one module


@dataclass
class _Binding:
    """A name bound to an azureml module: `import azureml.core as aml`, `from azureml import core`,
    or the root `azureml` of `import azureml.core`."""

    stmt: cst.CSTNode
    alias: cst.ImportAlias
    name: str
    path: str
    root: bool
    scope: Any = None
    replacements: dict = field(default_factory=dict)
    unresolved: list = field(default_factory=list)  # (line, reason)


class _Planner:
    def __init__(self, wrapper: MetadataWrapper):
        self.wrapper = wrapper
        self.scopes = wrapper.resolve(ScopeProvider)
        self.positions = wrapper.resolve(PositionProvider)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.notes: list[tuple[int, str]] = []
        self.attr_replacements: dict[cst.CSTNode, tuple[str, str]] = {}  # node -> (binding, name)
        self.import_plans: dict[cst.CSTNode, Any] = {}

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def plan(self) -> None:
        imports: list[cst.CSTNode] = []

        class Collect(cst.CSTVisitor):
            def visit_Import(self, node):
                imports.append(node)

            def visit_ImportFrom(self, node):
                imports.append(node)

        self.wrapper.module.visit(Collect())
        bindings: list[_Binding] = []
        froms: dict[cst.ImportFrom, list] = {}
        for node in imports:
            if isinstance(node, cst.Import):
                for alias in node.names:
                    dotted = get_full_name_for_node(alias.name)
                    if not _is_azureml(dotted):
                        continue
                    if alias.asname is not None:
                        bound = alias.asname.name.value
                        bindings.append(_Binding(node, alias, bound, _below_root(dotted), False))
                    else:
                        bindings.append(_Binding(node, alias, ROOT, "", True))
            else:
                if node.relative or not _is_azureml(get_full_name_for_node(node.module)):
                    continue
                path = _below_root(get_full_name_for_node(node.module))
                if isinstance(node.names, cst.ImportStar):
                    self.notes.append(
                        (
                            self.line(node),
                            f"`from {_dotted(path)} import *` left as is: import the names you "
                            "use by name and run migrate again",
                        )
                    )
                    continue
                entries = []
                for alias in node.names:
                    name = get_full_name_for_node(alias.name)
                    res = resolve(path, name)
                    binding = None
                    if res.kind == "module":
                        bound = alias.asname.name.value if alias.asname else name
                        binding = _Binding(node, alias, bound, res.value, False)
                        bindings.append(binding)
                    entries.append((alias, res, binding))
                froms[node] = entries

        for b in bindings:
            self._references(b)
        self._decide(bindings, froms)

    # -- references through module bindings

    def _references(self, b: _Binding) -> None:
        scope = self.scopes.get(b.stmt)
        b.scope = scope
        if scope is None:
            return
        seen = set()
        for assignment in scope.assignments:
            if getattr(assignment, "node", None) is not b.stmt:
                continue
            aname = assignment.name
            if b.root:
                if not _is_azureml(aname):
                    continue
            elif aname != b.name:
                continue
            for access in assignment.references:
                node = access.node
                if not isinstance(node, (cst.Name, cst.Attribute)):
                    b.unresolved.append(
                        (self.line(node), f"{b.name} is referenced inside a string; left as is")
                    )
                    continue
                top = node
                while True:
                    parent = self.parents.get(top)
                    if isinstance(parent, cst.Attribute) and parent.value is top:
                        top = parent
                    else:
                        break
                if id(top) in seen:
                    continue
                seen.add(id(top))
                self._resolve_chain(b, top)

    def _resolve_chain(self, b: _Binding, top: cst.CSTNode) -> None:
        chain = []
        n = top
        while isinstance(n, cst.Attribute):
            chain.append(n)
            n = n.value
        chain.append(n)
        chain.reverse()  # chain[0] is the bound Name, chain[i] the Attribute ending in part i
        path = b.path
        for i in range(1, len(chain)):
            part = chain[i].attr.value
            res = resolve(path, part)
            if res.kind == "module":
                path = res.value
                continue
            if res.kind == "name":
                b.replacements[chain[i]] = part
            else:
                b.unresolved.append((self.line(chain[i]), res.reason))
            return
        b.unresolved.append(
            (
                self.line(top),
                f"the module {_dotted(path)} is used as an object; left as is",
            )
        )

    # -- decisions

    def _decide(self, bindings: list[_Binding], froms: dict) -> None:
        import_plans: dict[cst.Import, dict] = {}

        def plan_for(stmt):
            return import_plans.setdefault(stmt, {"rename": {}, "add_mlpipe": False})

        # Root bindings are decided per scope: all `import azureml.x` of one scope share the name.
        groups: dict[int, list[_Binding]] = {}
        for b in bindings:
            if b.root:
                groups.setdefault(id(b.scope), []).append(b)
        for group in groups.values():
            unresolved = [u for b in group for u in b.unresolved]
            replaced = any(b.replacements for b in group)
            for b in group:
                for node, part in b.replacements.items():
                    self.attr_replacements[node] = (TARGET, part)
                self.notes.extend(b.unresolved)
                if unresolved:
                    if replaced:
                        plan_for(b.stmt)["add_mlpipe"] = True
                else:
                    plan_for(b.stmt)["rename"][id(b.alias)] = None

        from_modules: dict[int, bool] = {}
        for b in bindings:
            if b.root:
                continue
            if b.unresolved:
                self.notes.extend(b.unresolved)
                self.notes.append(
                    (
                        self.line(b.alias),
                        f"{b.name} (module {_dotted(b.path)}) left on azureml: some of its uses "
                        "have no mlpipe equivalent",
                    )
                )
                ok = False
            else:
                for node, part in b.replacements.items():
                    self.attr_replacements[node] = (b.name, part)
                ok = True
            if isinstance(b.stmt, cst.Import):
                if ok:
                    plan_for(b.stmt)["rename"][id(b.alias)] = b.name
            else:
                from_modules[id(b.alias)] = ok

        for stmt, plan in import_plans.items():
            self.import_plans[stmt] = ("import", plan)

        for stmt, entries in froms.items():
            keep, notes, modules, residual = [], [], [], []
            for alias, res, binding in entries:
                if res.kind == "name":
                    keep.append(True)
                    notes.append(None)
                elif res.kind == "module" and from_modules.get(id(alias)):
                    keep.append(False)
                    notes.append(f"{binding.name}: imported as mlpipe below")
                    modules.append(binding.name)
                else:
                    keep.append(False)
                    name = get_full_name_for_node(alias.name)
                    notes.append(
                        f"{name}: still imported from {get_full_name_for_node(stmt.module)}"
                    )
                    residual.append(alias)
                    if res.kind == "none":
                        self.notes.append((self.line(alias), res.reason))
            if not any(keep) and not modules:
                continue
            self.import_plans[stmt] = ("from", keep, notes, modules, residual)

    # -- rewriting

    def rewrite(self) -> cst.Module:
        planner = self

        class Rewriter(cst.CSTTransformer):
            def leave_Attribute(self, original, updated):
                target = planner.attr_replacements.get(original)
                if target is None:
                    return updated
                binding, part = target
                return cst.Attribute(
                    value=cst.Name(binding),
                    attr=cst.Name(part),
                    dot=original.dot,
                    lpar=original.lpar,
                    rpar=original.rpar,
                )

            def leave_Import(self, original, updated):
                plan = planner.import_plans.get(original)
                if plan is None:
                    return updated
                return planner._rewrite_import(original, updated, plan[1])

            def leave_ImportFrom(self, original, updated):
                plan = planner.import_plans.get(original)
                if plan is None:
                    return updated
                try:
                    return planner._rewrite_from(original, plan)
                except _Unchanged:
                    planner.notes.append(
                        (
                            planner.line(original),
                            "this import could not be split without moving lines; put the "
                            "names without an mlpipe equivalent in their own import and run "
                            "migrate again",
                        )
                    )
                    return updated

        return self.wrapper.module.visit(Rewriter())

    def _rewrite_import(self, original: cst.Import, node: cst.Import, plan: dict) -> cst.Import:
        names = []
        seen = set()
        for first, alias in zip(original.names, node.names, strict=True):
            key = id(first)
            if key in plan["rename"]:
                asname = plan["rename"][key]
                alias = alias.with_changes(name=cst.Name(TARGET))
                ident = (TARGET, asname)
                if asname is None:
                    alias = alias.with_changes(asname=None)
            else:
                ident = (
                    get_full_name_for_node(alias.name),
                    alias.asname and alias.asname.name.value,
                )
            if ident in seen:
                continue
            seen.add(ident)
            names.append(alias)
        if plan["add_mlpipe"] and (TARGET, None) not in seen:
            names.append(cst.ImportAlias(name=cst.Name(TARGET)))
        fixed = []
        for i, alias in enumerate(names):
            if i < len(names) - 1:
                comma = alias.comma
                if not isinstance(comma, cst.Comma):
                    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                fixed.append(alias.with_changes(comma=comma))
            else:
                fixed.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        return node.with_changes(names=fixed)

    def _rewrite_from(self, node: cst.ImportFrom, plan):
        _, keep, notes, modules, residual = plan
        pieces: list[cst.BaseSmallStatement] = []
        mine = _realign(node, node.with_changes(module=cst.Name(TARGET)))
        if all(keep):
            pieces.append(mine)
        elif any(keep):
            pieces.append(_filtered_names(mine, keep, notes))
        pieces.extend(_import_mlpipe_as(name) for name in modules)
        if residual:
            if any(keep):
                pieces.append(_compact_from(node.module, residual))
            else:  # the azureml import keeps the statement's own layout
                pieces.append(
                    _filtered_names(
                        node, [any(a is r for r in residual) for a in node.names], notes
                    )
                )
        if sum(_newlines(p) for p in pieces) != _newlines(node):
            raise _Unchanged
        if len(pieces) == 1:
            return pieces[0]
        return cst.FlattenSentinel(pieces)


def migrate_python(source: str, display: str) -> tuple[str, list[Problem]]:
    """Rewrite one module's source. Raises MlpipeError when it does not parse."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        line, message = exc.raw_line, exc.message
        try:
            compile(source, display, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as syn:  # Python's own wording is shorter and familiar
            line, message = syn.lineno or line, syn.msg
        except ValueError:
            pass
        raise MlpipeError(Problem(display, line, f"cannot parse this file: {message}")) from None
    wrapper = MetadataWrapper(module)
    planner = _Planner(wrapper)
    planner.plan()
    new = planner.rewrite()
    code = new.code
    if code.count("\n") != source.count("\n"):  # never move lines: keep the file as it was
        return source, [
            Problem(
                display, None, "rewriting would have moved lines; file left as is (please report)"
            )
        ]
    notes = sorted(set(planner.notes))
    return code, [Problem(display, line, msg) for line, msg in notes]


# ------------------------------------------------------------------------------- notebooks

_MAGIC = "#mlpipe-migrate-magic:"
_MAGIC_LINE = re.compile(r"^(\s*)([%!?].*)$")
# Cell magics whose body is Python (a %%writefile cell is often a step script).
_PYTHON_CELL_MAGICS = {"%%writefile", "%%file", "%%time", "%%timeit", "%%capture", "%%prun"}


def _mask_magics(source: str) -> str:
    lines = source.splitlines(keepends=True)
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        m = _MAGIC_LINE.match(body)
        if m:
            line = m.group(1) + _MAGIC + m.group(2) + line[len(body) :]
        out.append(line)
    return "".join(out)


def _unmask_magics(source: str) -> str:
    return re.sub(r"(?m)^(\s*)" + re.escape(_MAGIC), r"\1", source)


def _notebook_format(text: str, nb: Any) -> tuple[int | None, bool]:
    for indent in (1, 2, 4, None):
        for sort_keys in (True, False):
            dumped = json.dumps(nb, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
            if text in (dumped, dumped + "\n"):
                return indent, sort_keys
    return 1, False


def migrate_notebook(text: str, display: str) -> tuple[str, list[Problem]]:
    try:
        nb = json.loads(text)
        cells = nb["cells"]
        if not isinstance(cells, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise MlpipeError(Problem(display, None, "not a Jupyter notebook (no cells)")) from None
    indent, sort_keys = _notebook_format(text, nb)
    problems: list[Problem] = []
    changed = False
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        raw = cell.get("source", "")
        source = "".join(raw) if isinstance(raw, list) else str(raw)
        if ROOT not in source:
            continue
        where = f"{display}:cell {number}"
        magic = source.lstrip().split(None, 1)[0] if source.lstrip().startswith("%%") else None
        if magic is not None and magic not in _PYTHON_CELL_MAGICS:
            problems.append(Problem(where, None, f"a {magic} cell is not Python; left as is"))
            continue
        try:
            new, notes = migrate_python(_mask_magics(source), where)
        except MlpipeError:
            problems.append(Problem(where, None, "not Python that mlpipe can parse; left as is"))
            continue
        new = _unmask_magics(new)
        problems.extend(notes)
        if new != source:
            changed = True
            cell["source"] = new.splitlines(keepends=True) if isinstance(raw, list) else new
    if not changed:
        return text, problems
    dumped = json.dumps(nb, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
    if text.endswith("\n"):
        dumped += "\n"
    return dumped, problems


# ---------------------------------------------------------------------------------- files


@dataclass
class FileChange:
    path: Path
    display: str
    before: str
    after: str
    problems: list[Problem]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _candidates(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not (Path(dirpath, d) / "pyvenv.cfg").exists()
        )
        for name in sorted(filenames):
            if name.endswith((".py", ".ipynb")):
                yield Path(dirpath, name)


def _read(path: Path, display: str) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MlpipeError(Problem(display, None, f"cannot read the file: {exc}")) from None
    if ROOT.encode() not in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MlpipeError(Problem(display, None, "not UTF-8 text; left as is")) from None


def plan_migration(path: Path | str) -> list[FileChange]:
    """Every file under `path` that mentions azureml, with its rewritten text (nothing written)."""
    given = str(path)
    path = Path(path)
    if not path.exists():
        raise MlpipeError(Problem(given, None, "no such file or folder"))
    if path.is_dir():
        files = [
            (p, os.path.normpath(os.path.join(given, os.path.relpath(p, path))))
            for p in _candidates(path)
        ]
    elif path.suffix in (".py", ".ipynb"):
        files = [(path, given)]
    else:
        raise MlpipeError(Problem(given, None, "give a .py or .ipynb file, or a folder"))
    changes, errors = [], []
    for file, display in files:
        try:
            text = _read(file, display)
            if text is None:
                continue
            if file.suffix == ".ipynb":
                after, problems = migrate_notebook(text, display)
            else:
                after, problems = migrate_python(text, display)
        except MlpipeError as exc:
            errors.extend(exc.problems)
            continue
        changes.append(FileChange(file, display, text, after, problems))
    if errors:
        raise MlpipeError(errors)
    return changes


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, then rename over the original."""
    data = text.encode("utf-8")
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".mlpipe-tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def unified_diff(change: FileChange) -> str:
    lines = difflib.unified_diff(
        change.before.splitlines(keepends=True),
        change.after.splitlines(keepends=True),
        fromfile=f"a/{change.display}",
        tofile=f"b/{change.display}",
    )
    text = ""
    for line in lines:
        text += line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
    return text


def _say(err, text: str) -> None:
    if err is None:
        sys.stderr.write(text + "\n")
    elif hasattr(err, "out"):
        err.out(text, highlight=False)
    else:
        err.write(text + "\n")


def run_migrate(path, diff: bool = False, out=None, err=None) -> int:
    """`mlpipe migrate PATH [--diff]`. Exit status: 0 when nothing is left on azureml, 1 when some
    constructs were left as they were (each reported as file:line: reason); bad input raises
    MlpipeError (status 2) before anything is written."""
    out = out if out is not None else sys.stdout
    changes = plan_migration(path)
    left = 0
    for change in changes:
        for problem in change.problems:
            _say(err, str(problem))
            left += 1
    changed = [c for c in changes if c.changed]
    if diff:
        for change in changed:
            out.write(unified_diff(change))
    else:
        for change in changed:
            try:
                atomic_write_text(change.path, change.after)
            except OSError as exc:
                raise MlpipeError(
                    Problem(change.display, None, f"cannot write the file: {exc}")
                ) from None
            _say(err, f"migrated {change.display}")
    verb = "would migrate" if diff else "migrated"
    summary = f"mlpipe migrate: {verb} {len(changed)} file(s)"
    if left:
        summary += f"; {left} construct(s) left on azureml (see above)"
    _say(err, summary)
    return 1 if left else 0
