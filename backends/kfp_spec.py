"""KFP's own data model for the kfp backend: the `kfp-pipeline-spec` protobuf classes, the value
formats kfp's compiler writes (resources, parameter types), and its YAML serialisation.

Nothing here knows about mlpipe's IR: `backends/kfp.py` maps the IR onto these helpers.
"""

from __future__ import annotations

import json
import re

from ..passes.placement import GPU_RESOURCE

# The kfp SDK release whose compiler output this backend reproduces (and whose executor the pods
# run: `kfp.dsl.executor_main`). The spec format is the one kfp-pipeline-spec 2.17 defines.
KFP_SDK_VERSION = "2.17.3"
SCHEMA_VERSION = "2.1.0"

# KFP ParameterType -> the annotation kfp's executor needs on the component function.
PYTHON_ANNOTATIONS = {
    "STRING": "str",
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "BOOLEAN": "bool",
}
# The comment kfp writes in the YAML header for each type.
COMMENT_TYPES = {
    "STRING": "str",
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "BOOLEAN": "bool",
}
_GI = 1 << 30
_MI = 1 << 20
_G = 10**9

_pb2 = None


def pb2():
    """`kfp.pipeline_spec.pipeline_spec_pb2`, imported on first use (protobuf import is not free)."""
    global _pb2
    if _pb2 is None:
        from kfp.pipeline_spec import pipeline_spec_pb2

        _pb2 = pipeline_spec_pb2
    return _pb2


# ------------------------------------------------------------------------------------ resources


def cpu_float(quantity: str) -> float:
    """The deprecated float field kfp still fills next to the quantity (cores)."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_float(quantity: str) -> float:
    """The deprecated float field kfp still fills next to the quantity (decimal GB, as kfp does)."""
    if quantity.endswith("Gi"):
        return float(quantity[:-2]) * _GI / _G
    if quantity.endswith("Mi"):
        return float(quantity[:-2]) * _MI / _G
    raise ValueError(quantity)


def set_resources(resources, pod: dict[str, dict[str, str]]) -> None:
    """Fill a PipelineContainerSpec.ResourceSpec from the resolve pass's requests and limits
    (passes/placement.py: requests below the VM's nominal size, a memory limit, GPU limits) the
    way kfp's compiler does for set_cpu_request, set_memory_request/limit and
    set_accelerator_type/limit: the quantity fields plus the deprecated float / typed accelerator
    fields, so old and new KFP backends agree."""
    requests, limits = pod["requests"], pod["limits"]
    if "cpu" in requests:
        resources.resource_cpu_request = requests["cpu"]
        resources.cpu_request = cpu_float(requests["cpu"])
    if "memory" in requests:
        resources.resource_memory_request = requests["memory"]
        resources.memory_request = memory_float(requests["memory"])
    if "memory" in limits:
        resources.resource_memory_limit = limits["memory"]
        resources.memory_limit = memory_float(limits["memory"])
    gpus = limits.get(GPU_RESOURCE)
    if gpus:
        acc = resources.accelerator
        acc.resource_type = GPU_RESOURCE
        acc.resource_count = gpus
        acc.type = GPU_RESOURCE
        acc.count = int(gpus)


# -------------------------------------------------------------------------------------- writing
#
# A block-style YAML writer for the JSON data model MessageToDict returns (dict, list, str, int,
# float, bool). It writes what kfp's compiler writes (sorted keys, 2-space indent, lists at their
# key's column) with two differences: multi-line text such as an executor's module becomes a
# literal block (`|`), readable as the code it is; and on a 1000-step spec it is ~6x faster than
# PyYAML's libyaml dumper, ~40x faster than the pure-Python `yaml.dump` kfp's compiler calls.
# Anything not provably safe as a plain scalar or a literal block is written as a JSON string, which
# is a valid YAML double-quoted scalar. tests/backends/test_kfp.py checks that yaml.safe_load gives
# back exactly the input, including for arbitrary text (hypothesis).

_PLAIN = re.compile(r"(?:--?)?[A-Za-z_][A-Za-z0-9_./-]*(?::[A-Za-z0-9_./-]+)*")
# Words YAML 1.1 readers (PyYAML, Go's yaml.v2 behind sigs.k8s.io/yaml) take for a bool or null.
_RESERVED = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nil", "none"})
# Characters a YAML stream may not hold raw, or that YAML reads as line breaks: escaped in quotes.
_UNPRINTABLE = re.compile("[\\x7f-\\x9f\\u2028\\u2029\\ufeff\\ufffe\\uffff]")
# What a literal block may not hold: control characters (tab and carriage return included), YAML
# line breaks other than \n, and the characters a YAML stream may not hold raw. Listed, not as the
# complement of what it may hold: that negated class takes ~15 ms to compile, at every start.
_BLOCK_UNSAFE = re.compile("[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f\\u2028\\u2029\\ufeff\\ufffe\\uffff]")


def _quoted(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    if _UNPRINTABLE.search(out):
        out = _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)
    return out


def _scalar(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e")
        return text
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    return _quoted(value)


def _literal(text: str, indent: str) -> str | None:
    """`|` block lines for multi-line text, or None when a block cannot hold it exactly."""
    if (
        text.startswith((" ", "\n"))
        or " \n" in text
        or text.endswith(" ")
        or _BLOCK_UNSAFE.search(text)
    ):
        return None
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    chomp = {0: "-", 1: ""}.get(trailing, "+")
    lines = body.split("\n") + [""] * (trailing - 1 if trailing > 1 else 0)
    return "|" + chomp + "".join(f"\n{indent}{line}" if line else "\n" for line in lines)


class _Writer:
    """One document's lines; scalars and key lines are memoised (a spec repeats the same keys and
    values). The dicts come from MessageToDict: plain dicts, lists, str, int, float, bool."""

    def __init__(self):
        self.lines: list[str] = []
        self.scalars: dict = {}
        self.strings: dict[str, str] = {}  # the scalars that are str: the most common, keyed fast
        self.heads: dict[str, dict] = {}  # indent -> {key: "<indent><key>:"}

    def scalar(self, value) -> str:
        if type(value) is str:
            out = self.strings.get(value)
            if out is None:
                out = self.strings[value] = _scalar(value)
            return out
        # Floats by their text: -0.0 == 0.0 (and hashes alike), but must stay negative.
        key = (float, repr(value)) if isinstance(value, float) else (type(value), value)
        out = self.scalars.get(key)
        if out is None:
            out = self.scalars[key] = _scalar(value)
        return out

    def inline(self, value, indent: str) -> str:
        if isinstance(value, dict):
            return "{}"
        if isinstance(value, list):
            return "[]"
        if isinstance(value, str) and "\n" in value:
            key = (value, indent)
            out = self.scalars.get(key)
            if out is None:
                out = self.scalars[key] = _literal(value, indent) or _quoted(value)
            return out
        return self.scalar(value)

    def mapping(self, value: dict, indent: str) -> None:
        out = self.lines
        deeper = indent + "  "
        heads = self.heads.get(indent)
        if heads is None:
            heads = self.heads[indent] = {}
        for key in sorted(value):
            item = value[key]
            head = heads.get(key)
            if head is None:
                head = heads[key] = f"{indent}{self.scalar(key)}:"
            kind = type(item)
            if kind is str and "\n" not in item:  # the common case first, without a call
                text = self.strings.get(item)
                if text is None:
                    text = self.strings[item] = _scalar(item)
                out.append(head + " " + text)
            elif (kind is dict or isinstance(item, dict)) and item:
                out.append(head)
                self.mapping(item, deeper)
            elif (kind is list or isinstance(item, list)) and item:
                out.append(head)
                self.sequence(item, indent)
            else:
                out.append(f"{head} {self.inline(item, deeper)}")

    def sequence(self, value: list, indent: str) -> None:
        out = self.lines
        deeper = indent + "  "
        for item in value:
            if isinstance(item, dict | list) and item:
                first = len(out)
                if isinstance(item, dict):
                    self.mapping(item, deeper)
                else:
                    self.sequence(item, deeper)
                out[first] = f"{indent}- {out[first][len(deeper) :]}"
            else:
                out.append(f"{indent}- {self.inline(item, deeper)}")


def dump_yaml(documents: list[dict], header: str = "") -> bytes:
    """The comment header, then each document (the PipelineSpec, the platform spec), `---` between."""
    parts = []
    for doc in documents:
        writer = _Writer()
        writer.mapping(doc, "")
        parts.append("\n".join(writer.lines) + "\n")
    return (header + "---\n".join(parts)).encode("utf-8")


def comment_text(text: str) -> list[str]:
    """User text made safe for YAML comment lines: one list item per line, no control characters."""
    lines = str(text).splitlines() or [""]
    return [
        line
        if line.isprintable()
        else "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
        for line in lines
    ]
