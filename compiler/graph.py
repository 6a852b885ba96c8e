"""`mlpipe graph`: the steps and their edges as Mermaid, Graphviz dot, or PNG (with graphviz)."""

from __future__ import annotations

import shutil
import subprocess

from .errors import MlpipeError
from .ir import PipelineIR, StepOutputSource


def _edges(p: PipelineIR) -> list[tuple[str, str, str]]:
    """(upstream, downstream, label) in a stable order; label names the data, or is empty."""
    out = []
    for step in p.steps:
        for inp in step.inputs:
            if isinstance(inp.source, StepOutputSource):
                out.append((inp.source.step, step.name, inp.source.output))
        for after in step.run_after:
            out.append((after, step.name, ""))
    return out


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def mermaid(pipelines: list[PipelineIR]) -> str:
    lines = ["flowchart TD"]
    for pi, p in enumerate(pipelines):
        ids = {s.name: f"p{pi}s{i}" for i, s in enumerate(p.steps)}
        if len(pipelines) > 1:
            lines.append(f'  subgraph p{pi}["{_q(p.name)}"]')
        for s in p.steps:
            lines.append(f'    {ids[s.name]}["{_q(s.name).replace(chr(34), "#quot;")}"]')
        for a, b, label in _edges(p):
            arrow = f' -->|"{_q(label)}"| ' if label else " -.-> "
            lines.append(f"    {ids[a]}{arrow}{ids[b]}")
        if len(pipelines) > 1:
            lines.append("  end")
    return "\n".join(lines) + "\n"


def dot(pipelines: list[PipelineIR]) -> str:
    lines = ["digraph mlpipe {", "  rankdir=TB;", "  node [shape=box, style=rounded];"]
    for pi, p in enumerate(pipelines):
        lines.append(f'  subgraph "cluster_{pi}" {{')
        lines.append(f'    label="{_q(p.name)}";')
        for s in p.steps:
            lines.append(f'    "{pi}:{_q(s.name)}" [label="{_q(s.name)}"];')
        for a, b, label in _edges(p):
            attrs = f'label="{_q(label)}"' if label else "style=dashed"
            lines.append(f'    "{pi}:{_q(a)}" -> "{pi}:{_q(b)}" [{attrs}];')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(pipelines: list[PipelineIR], fmt: str) -> str | bytes:
    if fmt == "mermaid":
        return mermaid(pipelines)
    text = dot(pipelines)
    if fmt == "dot":
        return text
    exe = shutil.which("dot")
    if exe is None:
        raise MlpipeError(
            "--format png needs Graphviz's `dot` on PATH (e.g. apt install graphviz); "
            "--format dot or mermaid work without it"
        )
    return subprocess.run(
        [exe, "-Tpng"], input=text.encode(), capture_output=True, check=True
    ).stdout
