"""`mlpipe lint FILE`: the Azure ML v1 habits that silently defeat step reuse, found without running
anything (libcst static analysis of the pipeline file and of the step scripts it names).

Each warning is one line, `file:line: warning[code]: what happens. Fix: what to do`:

  shared-source-directory  several steps running different scripts from one source_directory
  unnamed-output           OutputFileDatasetConfig() without a name
  unnamed-input            .as_input() without a name
  hash-paths               hash_paths=..., which v1 ignores
  absolute-path            a step script opening an absolute path that is not a declared input
  datastore-read           a step script reading a datastore / dataset / storage URL by itself

Exit status: 0 when clean, 1 when there are warnings, 2 on bad input (raised as MlpipeError).
Values are followed only as far as they are written literally in the file: string constants, names
bound once to one, and `os.path.join` of those. Anything computed at run time is not guessed at.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from .errors import MlpipeError, Problem

# Step classes that take a source_directory (v1 and mlpipe spell them the same).
STEP_CLASSES = {
    "PythonScriptStep",
    "CommandStep",
    "EstimatorStep",
    "MpiStep",
    "RScriptStep",
    "DatabricksStep",
    "ParallelRunStep",
}
# Positional parameters of the steps mlpipe knows, read from its own signatures.
_SIGNATURE_OF = ("PythonScriptStep", "CommandStep", "OutputFileDatasetConfig")

# An absolute POSIX path: two components or more, or one with a file extension.
_POSIX = re.compile(r"^/[\w.\-]+(?:/[\w.\-]+)+/?$|^/[\w\-]+\.\w+$")
_POSIX_PREFIX = re.compile(r"^/[\w.\-]+/")
_OTHER = re.compile(r"^(?:[A-Za-z]:[\\/]|~[\\/])\S")
# Places a script may use without them being data: scratch space, devices, interpreters.
_NOT_DATA = ("/tmp", "/dev/", "/proc/", "/sys/", "/usr/", "/bin/", "/etc/")
_STORAGE_URL = re.compile(
    r"^(?:(?:abfss?|az|wasbs?|adl|s3a?|gs|gcs|hdfs|azureml)://|https?://[^/\s]+\.(?:blob|dfs)"
    r"\.core\.windows\.net)",
    re.IGNORECASE,
)
# Calls that read a datastore or a registered dataset from inside a script.
_DATASTORE_CALLS = (
    ("get_default_datastore",),
    ("Datastore",),
    ("Datastore", "get"),
    ("Datastore", "get_default"),
    ("Dataset", "get_by_name"),
    ("Dataset", "get_by_id"),
    ("Dataset", "File", "from_files"),
    ("Dataset", "Tabular", "from_delimited_files"),
    ("Dataset", "Tabular", "from_parquet_files"),
    ("Dataset", "Tabular", "from_json_lines_files"),
    ("Dataset", "Tabular", "from_sql_query"),
)


@dataclass(frozen=True)
class LintWarning:
    file: str
    line: int
    code: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = Problem(self.file, self.line, "").where  # "nb.ipynb:cell 3:line 5" in notebooks
        return f"{where}: warning[{self.code}]: {self.message}. Fix: {self.fix}"


@dataclass
class _StepCall:
    line: int
    cls: str
    name: str | None
    script: str | None
    source_dir: str | None  # as written (None: not given)
    known: bool  # whether the folder is known statically
    folder: str | None = None  # resolved against the pipeline folder
    unresolved: list[str] = field(default_factory=list)  # `source_directory=cfg.src`, ...


@dataclass
class _Source:
    """One piece of Python: a .py file or a notebook's code cells run together."""

    text: str
    display: str
    cells: list[tuple[int, int]] = field(default_factory=list)  # (first line, cell number)

    def where(self, line: int) -> tuple[str, int]:
        if not self.cells:
            return self.display, line
        first, number = self.cells[0]
        for start, n in self.cells:
            if start <= line:
                first, number = start, n
        return f"{self.display}:cell {number}", line - first + 1


# ------------------------------------------------------------------------------- helpers


def _signatures() -> dict[str, list[str]]:
    import inspect

    import mlpipe

    result = {}
    for name in _SIGNATURE_OF:
        params = list(inspect.signature(getattr(mlpipe, name).__init__).parameters)[1:]
        result[name] = [p for p in params if not p.startswith("_")]
    return result


def _callee(node: cst.Call) -> tuple[str, ...]:
    name = get_full_name_for_node(node.func)
    return tuple(name.split(".")) if name else ()


def _arguments(call: cst.Call, positional: list[str]) -> tuple[dict[str, cst.BaseExpression], bool]:
    """Keyword -> value for a call; the second item says whether *args/**kwargs hide some."""
    values: dict[str, cst.BaseExpression] = {}
    hidden = False
    index = 0
    for arg in call.args:
        if arg.star:
            hidden = True
        elif arg.keyword is not None:
            values[arg.keyword.value] = arg.value
        else:
            if index < len(positional):
                values[positional[index]] = arg.value
            index += 1
    return values, hidden


class _Constants(cst.CSTVisitor):
    """Names bound exactly once, to something `_value` can evaluate."""

    def __init__(self):
        self.values: dict[str, object] = {}
        self.count: dict[str, int] = {}
        self.nodes: dict[str, cst.BaseExpression] = {}

    def _bind(self, target, value):
        if isinstance(target, cst.Name):
            self.count[target.value] = self.count.get(target.value, 0) + 1
            if value is not None:
                self.nodes[target.value] = value

    def visit_Assign(self, node):
        for t in node.targets:
            self._bind(t.target, node.value if len(node.targets) == 1 else None)

    def visit_AnnAssign(self, node):
        self._bind(node.target, node.value)

    def visit_AugAssign(self, node):
        self._bind(node.target, None)

    def visit_For(self, node):
        self._bind(node.target, None)

    def resolve(self) -> dict[str, object]:
        consts: dict[str, object] = {}
        for _ in range(3):  # names defined from other names
            for name, node in self.nodes.items():
                if self.count.get(name) == 1 and name not in consts:
                    v = _value(node, consts)
                    if v is not None:
                        consts[name] = v
        return consts


def _value(node: cst.BaseExpression | None, consts: dict[str, object]):
    """A literal string / list of strings as written, or None when it is not known statically."""
    if node is None:
        return None
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        v = node.evaluated_value
        return v if isinstance(v, str) else None
    if isinstance(node, cst.Name):
        return consts.get(node.value)
    if isinstance(node, cst.List | cst.Tuple):
        return [_value(e.value, consts) for e in node.elements]
    if isinstance(node, cst.Call) and _callee(node)[-2:] in (("path", "join"), ("os", "join")):
        parts = [_value(a.value, consts) for a in node.args]
        if parts and all(isinstance(p, str) for p in parts) and not any(a.star for a in node.args):
            return os.path.join(*parts)
    return None


def _script_of_command(command) -> str | None:
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError:
            return None
    if isinstance(command, list):
        for item in command:
            if isinstance(item, str) and item.endswith(".py"):
                return item
    return None


# ------------------------------------------------------------------------------ the pipeline


class _PipelineVisitor(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, consts, signatures, base: Path, module: cst.Module | None = None):
        self.module = module
        self.consts = consts
        self.signatures = signatures
        self.base = base
        self.steps: list[_StepCall] = []
        self.findings: list[tuple[int, str, str, str]] = []  # (line, code, message, fix)
        self.default_source_dir: str | None = None

    def line(self, node) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def visit_Call(self, node: cst.Call) -> None:
        callee = _callee(node)
        last = callee[-1] if callee else ""
        if last in STEP_CLASSES:
            self._step(node, last)
        elif last == "OutputFileDatasetConfig":
            values, hidden = _arguments(node, self.signatures["OutputFileDatasetConfig"])
            if not hidden and "name" not in values:
                self.findings.append(
                    (
                        self.line(node),
                        "unnamed-output",
                        "OutputFileDatasetConfig without a name: Azure ML names it randomly on "
                        "every submission, so the steps producing and consuming it are never "
                        "reused there, and mlpipe can only name it after its position",
                        'give it a stable name, e.g. OutputFileDatasetConfig(name="prepared_data"'
                        ", ...)",
                    )
                )
        elif last == "as_input" and isinstance(node.func, cst.Attribute):
            named = any(a.keyword is None and not a.star for a in node.args) or any(
                a.keyword is not None and a.keyword.value in ("name", "input_name")
                for a in node.args
            )
            hidden = any(a.star for a in node.args)
            if not named and not hidden:
                self.findings.append(
                    (
                        self.line(node),
                        "unnamed-input",
                        ".as_input() without a name: Azure ML generates a random input name on "
                        "every submission, so the consuming step is never reused there",
                        'name the input, e.g. .as_input(name="prepared_data")',
                    )
                )
        elif last == "Pipeline":
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "default_source_directory":
                    v = _value(arg.value, self.consts)
                    if isinstance(v, str):
                        self.default_source_dir = v

    def _step(self, node: cst.Call, cls: str) -> None:
        positional = self.signatures.get(cls, [])
        values, hidden = _arguments(node, positional)
        line = self.line(node)
        if "hash_paths" in values:
            self.findings.append(
                (
                    self.line(values["hash_paths"]),
                    "hash-paths",
                    "hash_paths is deprecated and ignored: Azure ML (and mlpipe) hash the whole "
                    "source_directory to decide reuse, whatever it lists",
                    "remove hash_paths; keep files the step does not need out of its "
                    "source_directory, or list them in an .amlignore file there",
                )
            )
        name = _value(values.get("name"), self.consts)
        if cls == "CommandStep":
            script = _script_of_command(_value(values.get("command"), self.consts))
        else:
            script = _value(values.get("script_name"), self.consts)
        given = values.get("source_directory")
        source_dir = _value(given, self.consts) if given is not None else None
        if given is None:
            known = not hidden
        else:
            known = isinstance(source_dir, str)
        unresolved = []
        for key in ("script_name" if cls != "CommandStep" else "command", "source_directory"):
            node_ = values.get(key)
            if node_ is not None and not isinstance(_value(node_, self.consts), str | list):
                text = self.module.code_for_node(node_) if self.module else "..."
                unresolved.append(f"{key}={' '.join(text.split())[:60]}")
        if hidden:
            unresolved.append("*args / **kwargs")
        self.steps.append(
            _StepCall(
                line,
                cls,
                name if isinstance(name, str) else None,
                script if isinstance(script, str) else None,
                source_dir if isinstance(source_dir, str) else None,
                known,
                unresolved=unresolved,
            )
        )


def _shared_folders(steps: list[_StepCall], base: Path, default: str | None) -> list:
    findings = []
    groups: dict[str, list[_StepCall]] = {}
    for step in steps:
        if not step.known:
            continue
        if step.source_dir is None:
            step.source_dir = default or "."
        step.folder = os.path.normpath(os.path.join(base, step.source_dir))
        groups.setdefault(step.folder, []).append(step)
    for members in groups.values():
        if len(members) < 2:
            continue
        scripts = {s.script if s.script else f"?{s.line}" for s in members}
        if len(scripts) < 2:
            continue  # one script (e.g. a fan-out built in a loop): nothing extra reruns
        for step in members:
            others = ", ".join(f"{_label(o)} (line {o.line})" for o in members if o is not step)
            written = step.source_dir or "."
            findings.append(
                (
                    step.line,
                    "shared-source-directory",
                    f"{_label(step)} shares source_directory {written!r} with {others}: each "
                    "step's snapshot is the whole folder, so a change to any file in it reruns "
                    "all of them",
                    "give each step its own folder holding only its script and what it imports "
                    "(e.g. prep_src/, train_src/), or list the other steps' files in an "
                    ".amlignore there",
                )
            )
    return findings


def _label(step: _StepCall) -> str:
    if step.name:
        return f"step {step.name!r}"
    if step.script:
        return f"step {step.script!r}"
    return f"the {step.cls}"


# ---------------------------------------------------------------------------- step scripts


def _looks_absolute(value: str, prefix_only: bool) -> bool:
    if value.startswith(_NOT_DATA) or any(c in value for c in "\n\t "):
        return False
    if _OTHER.match(value):
        return True
    return bool((_POSIX_PREFIX if prefix_only else _POSIX).match(value))


class _ScriptVisitor(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self):
        self.findings: list[tuple[int, str, str, str]] = []

    def line(self, node) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def visit_Expr(self, node: cst.Expr) -> bool:
        # A bare string statement is a docstring or a comment, not a path.
        return not isinstance(node.value, cst.SimpleString | cst.ConcatenatedString)

    def visit_Call(self, node: cst.Call) -> None:
        callee = _callee(node)
        for pattern in _DATASTORE_CALLS:
            if callee[-len(pattern) :] == pattern:
                shown = ".".join(callee)
                self.findings.append(
                    (
                        self.line(node),
                        "datastore-read",
                        f"{shown}(...) reads a datastore or dataset from inside the step "
                        "script: it is not a declared input, so changing that data never "
                        "invalidates reuse, and orchestrators cannot stage it for the step",
                        "declare it in the pipeline instead (e.g. Dataset.File.from_files("
                        "(datastore, 'path')).as_named_input('data').as_mount() in the step's "
                        "arguments) and read the path the script is given",
                    )
                )
                return

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        value = node.evaluated_value
        if isinstance(value, str):
            self._check_string(node, value)

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        if node.parts and isinstance(node.parts[0], cst.FormattedStringText):
            self._check_string(node, node.parts[0].value, prefix_only=True)

    def _check_string(self, node, value: str, prefix_only: bool = False) -> None:
        if _STORAGE_URL.match(value):
            self.findings.append(
                (
                    self.line(node),
                    "datastore-read",
                    f"{value!r} is storage the step script reaches by itself: it is not a "
                    "declared input, so changing that data never invalidates reuse",
                    "register the storage as a datastore in mlpipe.yaml and declare the data as "
                    "an input of the step (Dataset.File.from_files((datastore, 'path'))"
                    ".as_named_input('data').as_mount()); read the path the script is given",
                )
            )
            return
        if _looks_absolute(value, prefix_only):
            self.findings.append(
                (
                    self.line(node),
                    "absolute-path",
                    f"the step script uses the absolute path {value!r}: it is not a declared "
                    "input, so changes there never invalidate reuse, and it does not exist on "
                    "other machines or in the orchestrator's pods",
                    "put the data on a datastore and pass it in the step's arguments as an "
                    "input (Dataset.File.from_files((datastore, 'path')).as_named_input('data')"
                    ".as_mount()), or write scratch files under tempfile.gettempdir()",
                )
            )


# ----------------------------------------------------------------------------------- loading


_MAGIC_LINE = re.compile(r"^(\s*)([%!?].*)$")


def _load(path: Path, display: str) -> _Source:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MlpipeError(Problem(display, None, f"cannot read the file: {exc}")) from None
    if path.suffix != ".ipynb":
        return _Source(raw, display)
    try:
        cells = json.loads(raw)["cells"]
    except (ValueError, KeyError, TypeError):
        raise MlpipeError(Problem(display, None, "not a Jupyter notebook (no cells)")) from None
    lines: list[str] = []
    starts = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        body = src.splitlines()
        if body and body[0].startswith("%%"):
            continue  # a cell magic: not this notebook's Python
        starts.append((len(lines) + 1, number))
        for line in body:
            m = _MAGIC_LINE.match(line)
            lines.append(f"{m.group(1)}pass  # {m.group(2)}" if m else line)
        lines.append("")
    return _Source("\n".join(lines) + "\n", display, starts)


def _parse(source: _Source) -> MetadataWrapper:
    try:
        return MetadataWrapper(cst.parse_module(source.text))
    except cst.ParserSyntaxError as exc:
        line, message = exc.raw_line, exc.message
        try:
            ast.parse(source.text)
        except SyntaxError as syn:
            line, message = syn.lineno or line, syn.msg
        file, line = source.where(line)
        raise MlpipeError(Problem(file, line, f"cannot parse this file: {message}")) from None


def lint_file(path: Path | str) -> list[LintWarning]:
    """Every warning for the pipeline file at `path` (raises MlpipeError on bad input)."""
    return lint_report(path)[0]


def lint_report(path: Path | str) -> tuple[list[LintWarning], list[str]]:
    """The warnings, and notes on what could not be checked: values lint cannot read without
    running the file (settings from environment variables, helper modules, attributes)."""
    given = str(path)
    path = Path(path)
    if not path.exists():
        raise MlpipeError(
            Problem(given, None, "no such file: check the path to your pipeline file")
        )
    if path.is_dir() or path.suffix not in (".py", ".ipynb"):
        raise MlpipeError(Problem(given, None, "give the pipeline's .py or .ipynb file"))
    source = _load(path, given)
    wrapper = _parse(source)
    constants = _Constants()
    wrapper.module.visit(constants)
    consts = constants.resolve()
    base = path.resolve().parent
    visitor = _PipelineVisitor(consts, _signatures(), base, wrapper.module)
    wrapper.visit(visitor)
    findings = list(visitor.findings)
    findings += _shared_folders(visitor.steps, base, visitor.default_source_dir)
    warnings = []
    for line, code, message, fix in findings:
        file, at = source.where(line)
        warnings.append(LintWarning(file, at, code, message, fix))

    shown_base = os.path.dirname(given)
    seen = set()
    for step in visitor.steps:
        if step.folder is None or not step.script:
            continue
        script = os.path.normpath(os.path.join(step.folder, step.script))
        if script in seen or not os.path.isfile(script):
            continue
        seen.add(script)
        shown = os.path.normpath(os.path.join(shown_base, step.source_dir or ".", step.script))
        warnings += _lint_script(Path(script), shown)
    warnings.sort(key=lambda w: (w.file != given, w.file, w.line, w.code))
    return warnings, _notes(visitor.steps, source)


def _notes(steps: list[_StepCall], source: _Source) -> list[str]:
    if not steps:
        return [
            f"{source.display}: note: no step is built in this file itself (steps built in "
            "helper modules or from a loaded configuration are not checked); lint the module "
            "that calls PythonScriptStep(...)"
        ]
    notes = []
    for step in steps:
        if step.unresolved:
            file, line = source.where(step.line)
            notes.append(
                f"{file}:{line}: note: {_label(step)}: {', '.join(step.unresolved)}: known only "
                "when the file runs (an environment variable, a helper module, a computed "
                "value), so its source folder and script were not checked"
            )
    return notes


def _lint_script(path: Path, shown: str) -> list[LintWarning]:
    try:
        text = path.read_text(encoding="utf-8")
        wrapper = MetadataWrapper(cst.parse_module(text))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return []  # the step itself will say so when it runs
    visitor = _ScriptVisitor()
    wrapper.visit(visitor)
    return [LintWarning(shown, line, code, msg, fix) for line, code, msg, fix in visitor.findings]


def run_lint(path, out=None, err=None) -> int:
    """`mlpipe lint FILE`: warnings on `out`, a summary on `err`; 0 clean, 1 warnings."""
    out = out if out is not None else sys.stdout
    warnings, notes = lint_report(path)
    for w in warnings:
        out.write(str(w) + "\n")
    summary = f"mlpipe lint: {len(warnings)} warning(s)" if warnings else "mlpipe lint: no warnings"
    if notes:
        summary += (
            f" in what it could read; {len(notes)} place(s) not checked (see the notes above)"
        )
    for line in [*notes, summary]:
        if err is None:
            sys.stderr.write(line + "\n")
        elif hasattr(err, "out"):
            err.out(line, highlight=False)
        else:
            err.write(line + "\n")
    return 1 if warnings else 0
