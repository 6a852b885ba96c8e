"""Python source text for the files the backends generate (Airflow DAGs, Prefect flows).

Everything here writes code the way `ruff format` would, so a generated file passes
`ruff format --check` as written and a user's reformatting run leaves it alone.
"""

from __future__ import annotations

import math
import unicodedata

# The repository's ruff line length: generated code is laid out to need no reformatting.
LINE_LENGTH = 100


def py_str(text: str) -> str:
    """`text` as a Python string literal the way `ruff format` writes it (so the generated file is
    already formatted): double quotes unless single quotes need fewer escapes; control and other
    non-printable characters escaped, so a literal is always one line."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    return quote + "".join(out) + quote


def py_float(value: float) -> str:
    if not math.isfinite(value):
        # Python has no literal for inf / nan (capture refuses them where code would need one).
        raise ValueError(f"cannot write the non-finite number {value!r}")
    return repr(float(value)).replace("e+", "e")  # ruff writes exponents without '+'


def py_literal(value, indent: int = 0) -> str:
    """A JSON-like value as Python source; dicts and lists exploded one item per line with a
    trailing comma (ruff keeps that layout whatever the line length)."""
    pad = " " * indent
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return py_float(value)
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{pad}    {py_str(str(k))}: {py_literal(v, indent + 4)},\n" for k, v in value.items()
        ]
        return "{\n" + "".join(items) + pad + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [f"{pad}    {py_literal(v, indent + 4)},\n" for v in value]
        return "[\n" + "".join(items) + pad + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def text_width(text: str) -> int:
    """Columns as ruff counts them (East Asian wide characters take two)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
