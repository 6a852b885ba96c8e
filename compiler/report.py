"""`mlpipe report RUN -o report.html`: one self-contained HTML page about a run.

The page (templates/run_report.html.j2) needs no network: CSS, the pipeline graph (inline SVG,
nodes coloured by result) and the step timeline (inline SVG) are all in the file. The graph comes
from the step records (`upstream`), laid out in layers: a step sits one layer below its lowest
upstream step.
"""

from __future__ import annotations

import json
from importlib import resources

from .runs import (
    Run,
    human_duration,
    iso,
    runner_label,
    short_value,
    step_details,
)

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 180, 48, 36, 56, 16
TIMELINE_W, LABEL_W, ROW_H = 640, 170, 26
COLORS = {  # result -> (fill, stroke, text)
    "completed": ("#dcfce7", "#16a34a", "#14532d"),
    "reused": ("#dbeafe", "#2563eb", "#1e3a8a"),
    "failed": ("#fee2e2", "#dc2626", "#7f1d1d"),
    "skipped": ("#f3f4f6", "#9ca3af", "#374151"),
    "canceled": ("#fef3c7", "#d97706", "#78350f"),
    "running": ("#fef9c3", "#ca8a04", "#713f12"),
}
UNKNOWN = ("#f3f4f6", "#6b7280", "#111827")


def _levels(steps: list[dict]) -> dict[str, int]:
    level: dict[str, int] = {}
    for d in steps:  # upstream first, so every parent already has its level
        level[d["step"]] = 1 + max((level.get(u, 0) for u in d["upstream"]), default=-1)
    return level


def _label(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def graph_layout(steps: list[dict]) -> dict:
    """Node boxes and edge paths of a layered drawing (SVG coordinates)."""
    level = _levels(steps)
    layers: dict[int, list[str]] = {}
    for d in steps:
        layers.setdefault(level[d["step"]], []).append(d["step"])
    widest = max((len(v) for v in layers.values()), default=1)
    width = MARGIN * 2 + widest * NODE_W + (widest - 1) * GAP_X
    pos: dict[str, tuple[int, int]] = {}
    for lv, names in layers.items():
        row_w = len(names) * NODE_W + (len(names) - 1) * GAP_X
        x0 = (width - row_w) // 2
        for i, name in enumerate(names):
            pos[name] = (x0 + i * (NODE_W + GAP_X), MARGIN + lv * (NODE_H + GAP_Y))
    nodes = []
    for d in steps:
        x, y = pos[d["step"]]
        fill, stroke, text = COLORS.get(d["status"], UNKNOWN)
        nodes.append(
            {
                "id": d["anchor"],
                "name": d["step"],
                "label": _label(d["step"]),
                "sub": f"{d['result']} · {human_duration(d['duration'])}",
                "x": x,
                "y": y,
                "fill": fill,
                "stroke": stroke,
                "text": text,
                "title": f"{d['step']}: {d['result']}"
                + (f" ({d['reason']})" if d["reason"] else ""),
            }
        )
    edges = []
    for d in steps:
        x2, y2 = pos[d["step"]]
        for u in d["upstream"]:
            x1, y1 = pos[u]
            ax, ay, bx, by = x1 + NODE_W // 2, y1 + NODE_H, x2 + NODE_W // 2, y2 - 2
            mid = (ay + by) // 2
            edges.append(f"M{ax},{ay} C{ax},{mid} {bx},{mid} {bx},{by}")
    height = MARGIN * 2 + (max(layers, default=0) + 1) * (NODE_H + GAP_Y) - GAP_Y
    return {
        "width": width,
        "height": height,
        "nodes": nodes,
        "edges": edges,
        "w": NODE_W,
        "h": NODE_H,
    }


def timeline(steps: list[dict], run: Run) -> dict:
    """One bar per step from its start to its end, on one time axis."""
    starts = [d["started"] for d in steps if d["started"] is not None]
    t0 = min(starts, default=0.0)
    ends = [d["finished"] or d["started"] for d in steps if d["started"] is not None]
    span = max(max(ends, default=t0) - t0, 1e-3)
    scale = TIMELINE_W / span
    rows = []
    for i, d in enumerate(steps):
        fill = COLORS.get(d["status"], UNKNOWN)[1]
        if d["started"] is None:
            x, w = 0.0, 0.0
        else:
            x = (d["started"] - t0) * scale
            w = max(((d["finished"] or d["started"]) - d["started"]) * scale, 3.0)
        rows.append(
            {
                "id": d["anchor"],
                "label": _label(d["step"], 24),
                "y": i * ROW_H,
                "x": round(LABEL_W + x, 1),
                "w": round(w, 1),
                "fill": fill,
                "text": f"{d['result']} {human_duration(d['duration'])}",
                "started": d["started"] is not None,
            }
        )
    ticks = []
    for k in range(5):
        at = span * k / 4
        label = f"{at:.2f}s" if span < 2 else human_duration(at)
        ticks.append({"x": round(LABEL_W + at * scale, 1), "label": label})
    return {
        "rows": rows,
        "ticks": ticks,
        "width": LABEL_W + TIMELINE_W + 60,
        "height": len(steps) * ROW_H + 24,
        "axis_y": len(steps) * ROW_H + 4,
    }


def _context(run: Run) -> dict:
    steps = step_details(run)
    for i, d in enumerate(steps):
        d["anchor"] = f"step-{i}"
        d["started_iso"] = iso(d["started"])
        d["metric_rows"] = [(k, short_value(v)) for k, v in sorted(d["metrics"].items())]
        d["duration_text"] = human_duration(d["duration"])
    counts = run.counts()
    return {
        "run": run,
        "summary": run.summary(),
        "runner": runner_label(run.runner),
        "started_iso": iso(run.started),
        "duration": human_duration(run.duration),
        "counts": [(k, n) for k, n in counts.items() if n],
        "params": sorted(((run.run_record or {}).get("params") or {}).items()),
        "steps": steps,
        "graph": graph_layout(steps),
        "timeline": timeline(steps, run),
        "status_color": {
            "succeeded": COLORS["completed"],
            "failed": COLORS["failed"],
            "canceled": COLORS["canceled"],
            "running": COLORS["running"],
        }.get(run.status, UNKNOWN),
        "legend": [(label, COLORS[s][0], COLORS[s][1]) for s, label in _LEGEND],
        "data_json": json.dumps(run.summary(), sort_keys=True).replace("</", "<\\/"),
    }


_LEGEND = [
    ("completed", "ran"),
    ("reused", "reused"),
    ("failed", "failed"),
    ("skipped", "skipped"),
    ("canceled", "canceled"),
    ("running", "running"),
]


def render_report(run: Run) -> str:
    import jinja2

    def loader(name):
        return resources.files("mlpipe.templates").joinpath(name).read_text(encoding="utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(loader),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("run_report.html.j2").render(**_context(run))
