"""Jupyter notebooks as pipeline files: the code cells run in order as one program.

Each code cell becomes one chunk of the program, compiled under its own name so that every problem
points at `NOTEBOOK.ipynb:cell N:line M` (N counts all cells of the notebook from 1, M the lines of
that cell from 1). IPython syntax is handled the way the notebook needs it to capture:

- `%%writefile [-a] PATH` writes its body to PATH (relative to the working directory, the notebook's
  folder) when the cell would run: step scripts and conda files are often created that way. The
  write is deterministic: unchanged content is not rewritten, and `-a` does not append the same
  text twice to a file this capture did not create.
- `%%capture` and `%%time` (and `%time STATEMENT`) run their Python body.
- any other cell magic skips its cell; other line magics (`%pip`, `%matplotlib`...), `!shell`
  lines and `obj?` help are skipped. Each skip is a warning naming the cell and line, and a skipped
  line becomes `pass` so that the cell's line numbers stay the cell's own.

Plain JSON is read (nbformat 4, and the cells of nbformat 3): no Jupyter package is needed.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import tokenize
from pathlib import Path

from .errors import MlpipeError, Problem, UserError
from .ir import Origin
from .program import Chunk, Program

# cell magics whose body is Python that runs once
_RUN_BODY = {"capture", "time", "timeit", "prun", "python", "python3", "pypy"}
_WRITEFILE = {"writefile", "file"}
_ASSIGN = re.compile(r"^(\s*)([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*([!%])(.*)$")
_HELP = re.compile(r"^\s*(\?{1,2}[\w.]+|[\w.]+\?{1,2})\s*$")


def load_notebook(path: Path, display: str) -> Program:
    """The notebook's code cells as a Program (raises MlpipeError for an unreadable notebook)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MlpipeError(Problem(display, None, f"cannot read the notebook: {exc}")) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MlpipeError(
            Problem(display, None, f"not a Jupyter notebook (invalid JSON: {exc})")
        ) from None
    cells = _cells(data)
    if cells is None:
        raise MlpipeError(
            Problem(display, None, "not a Jupyter notebook: no list of cells in the file")
        )
    language = _language(data)
    if language and language.lower() != "python":
        raise MlpipeError(
            Problem(
                display,
                None,
                f"this is a {language} notebook: mlpipe captures Python notebooks only",
            )
        )
    name = Path(path).name
    resolved = Path(path).resolve()
    written: dict[str, bool] = {}  # files %%writefile created during this capture
    program = Program(chunks=[])
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", cell.get("input", ""))
        if isinstance(source, list):
            source = "".join(str(s) for s in source)
        source = str(source).replace("\r\n", "\n").replace("\r", "\n")
        rel = f"{name}:cell {number}"
        where = f"{display}:cell {number}"
        code, action, notes = transform_cell(source, rel, written)
        chunk = Chunk(f"{resolved}:cell {number}", code, rel, where, 0)
        chunk.action = action
        program.chunks.append(chunk)
        program.warnings.extend(Problem(where, line, text) for line, text in notes)
    program.globals = {"display": _display, "get_ipython": _get_ipython}
    return program


def _cells(data) -> list | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("cells"), list):
        return data["cells"]
    worksheets = data.get("worksheets")  # nbformat 3
    if isinstance(worksheets, list):
        return [c for ws in worksheets if isinstance(ws, dict) for c in ws.get("cells") or []]
    return None


def _language(data) -> str | None:
    meta = data.get("metadata") or {}
    for value in (
        (meta.get("kernelspec") or {}).get("language"),
        (meta.get("language_info") or {}).get("name"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


# ------------------------------------------------------------------------------ one cell


def transform_cell(source: str, rel: str, written: dict | None = None):
    """(Python source with the same line count, action to run first or None, [(line, warning)])."""
    lines = source.split("\n")
    notes: list[tuple[int, str]] = []
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is not None and lines[first].startswith("%%"):
        magic_line = lines[first][2:]
        magic = magic_line.split(None, 1)[0] if magic_line.strip() else ""
        args = magic_line[len(magic) :].strip() if magic else ""
        line_no = first + 1
        if magic in _WRITEFILE:
            body = "\n".join(lines[first + 1 :])
            if body and not body.endswith("\n"):
                body += "\n"
            origin = Origin(file=rel, line=line_no)
            action = _writefile(args, body, origin, written if written is not None else {})
            return "\n" * (len(lines) - 1), action, notes
        if magic in _RUN_BODY:
            lines[first] = ""
            action = _capture_var(args) if magic == "capture" else None
            code, more = _line_magics(lines)
            return code, action, notes + more
        notes.append(
            (
                line_no,
                f"%%{magic or ''} cell skipped: mlpipe runs only the notebook's Python code "
                "while capturing",
            )
        )
        return "\n" * (len(lines) - 1), None, notes
    code, more = _line_magics(lines)
    return code, None, notes + more


def _line_magics(lines: list[str]) -> tuple[str, list[tuple[int, str]]]:
    notes: list[tuple[int, str]] = []
    candidates = [i for i, ln in enumerate(lines) if _looks_like_ipython(ln)]
    if not candidates:
        return "\n".join(lines), notes
    starts = _statement_starts(lines, candidates)
    out = list(lines)
    for i in candidates:
        if starts is not None and i not in starts:
            continue
        line = lines[i]
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        assign = _ASSIGN.match(line)
        if stripped.startswith("!"):
            out[i] = indent + "pass"
            notes.append((i + 1, f"shell command skipped: {_short(stripped)}"))
        elif stripped.startswith("%"):
            name = stripped[1:].split(None, 1)[0] if stripped[1:].strip() else ""
            rest = stripped[1 + len(name) :].strip()
            if name == "time" and rest:
                out[i] = indent + rest
            else:
                out[i] = indent + "pass"
                notes.append((i + 1, f"line magic skipped: {_short(stripped)}"))
        elif assign is not None:
            value = "[]" if assign.group(3) == "!" else "None"
            out[i] = f"{assign.group(1)}{assign.group(2)} = {value}"
            kind = "shell command" if assign.group(3) == "!" else "line magic"
            notes.append(
                (
                    i + 1,
                    f"{kind} skipped: {_short(assign.group(3) + assign.group(4))} "
                    f"({assign.group(2).strip()} is set to {value})",
                )
            )
        elif _HELP.match(line):
            out[i] = indent + "pass"
            notes.append((i + 1, f"help request skipped: {stripped}"))
    return "\n".join(out), notes


def _looks_like_ipython(line: str) -> bool:
    stripped = line.lstrip()
    if stripped.startswith(("!", "%")):
        return True
    return _ASSIGN.match(line) is not None or _HELP.match(line) is not None


def _statement_starts(lines: list[str], candidates: list[int]) -> set[int] | None:
    """Indexes of lines where a Python statement may begin (not inside a string or brackets),
    found by tokenizing the cell with the candidate lines neutralised; None if it cannot tell."""
    probe = list(lines)
    for i in candidates:
        stripped = lines[i].lstrip()
        probe[i] = lines[i][: len(lines[i]) - len(stripped)] + "pass"
    text = "\n".join(probe) + "\n"
    starts: set[int] = set()
    inside: set[int] = set()
    depth = 0
    seen: set[int] = set()
    skip = {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            row = tok.start[0] - 1
            if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                inside.update(range(tok.start[0], tok.end[0]))
            if tok.type not in skip and row not in seen:
                seen.add(row)
                if depth == 0:
                    starts.add(row)
            if tok.type == tokenize.OP:
                if tok.string in "([{":
                    depth += 1
                elif tok.string in ")]}":
                    depth = max(0, depth - 1)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return starts - inside


def _short(text: str, limit: int = 70) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -------------------------------------------------------------------------- cell magics


def _expand(text: str, namespace: dict) -> str:
    """IPython's expansion of magic arguments: `{expr}` and `$name` from the notebook's
    variables (`$$` is a literal `$`); anything that does not evaluate stays as written."""

    def evaluate(expr: str, original: str) -> str:
        try:
            return str(eval(expr, namespace))  # noqa: S307 - the notebook's own expression
        except Exception:  # noqa: BLE001
            return original

    text = re.sub(r"\{([^{}]+)\}", lambda m: evaluate(m.group(1), m.group(0)), text)
    text = re.sub(
        r"\$(\$|[A-Za-z_][\w.]*)",
        lambda m: "$" if m.group(1) == "$" else evaluate(m.group(1), m.group(0)),
        text,
    )
    return text


def _writefile(args: str, body: str, origin: Origin, written: dict):
    def run(namespace: dict) -> None:
        try:
            argv = shlex.split(_expand(args, namespace))
        except ValueError as exc:
            raise UserError(f"%%writefile: cannot read its arguments: {exc}", origin) from None
        append = any(a in ("-a", "--append") for a in argv)
        names = [a for a in argv if not a.startswith("-")]
        if len(names) != 1:
            raise UserError("%%writefile needs one file name: %%writefile [-a] PATH", origin)
        target = os.path.abspath(os.path.expanduser(names[0]))
        try:
            old = Path(target).read_text(encoding="utf-8") if os.path.isfile(target) else None
        except (OSError, UnicodeDecodeError):
            old = None
        if append and old is not None:
            if target not in written and old.endswith(body):
                return  # a capture before this one already appended this text
            new = old + body
        else:
            new = body
        written[target] = True
        if new == old:
            return
        try:
            with open(target, "w", encoding="utf-8", newline="") as f:
                f.write(new)
        except OSError as exc:
            raise UserError(
                f"%%writefile {names[0]}: cannot write the file: {exc.strerror or exc}", origin
            ) from None

    return run


def _capture_var(args: str):
    names = [a for a in args.split() if not a.startswith("-")]
    if not names:
        return None

    def run(namespace: dict) -> None:
        namespace[names[0]] = _CapturedIO()

    return run


class _CapturedIO:
    """What `%%capture NAME` leaves in NAME (the output is not kept during capture)."""

    stdout = ""
    stderr = ""
    outputs: list = []

    def show(self):
        return None

    def __call__(self):
        return None


def _display(*objs, **kwargs):
    for obj in objs:
        print(repr(obj))


class _Shell:
    """`get_ipython()` during capture: magics and shell commands do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    def run_cell_magic(self, *args, **kwargs):
        return None

    def system(self, *args, **kwargs):
        return None

    def getoutput(self, *args, **kwargs):
        return []

    def magic(self, *args, **kwargs):
        return None


def _get_ipython():
    return _Shell()
