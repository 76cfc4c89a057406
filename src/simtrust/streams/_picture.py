"""A provenance graph as a picture: SVG 1.1, drawn by hand (no plotting dependency).

Each datum is a box (id prefix, score, the annotation kinds that hold and
fail); inputs stand left of what was derived from them, by depth.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

__all__ = ["provenance_svg"]

_W, _H, _GAP_X, _GAP_Y = 340, 92, 80, 24


def provenance_svg(graph: dict[str, Any]) -> str:
    """SVG of a ``StreamService.provenance`` / ``ProvenanceGraph.provenance`` document."""
    inputs: dict[str, list[str]] = {k: [] for k in graph["nodes"]}
    for source, target in graph["edges"]:
        inputs.setdefault(target, []).append(source)
    depth: dict[str, int] = {}

    def level(key: str) -> int:
        if key not in depth:
            depth[key] = 1 + max((level(i) for i in inputs.get(key, [])), default=-1)
        return depth[key]

    columns: dict[int, list[str]] = {}
    for key in sorted(graph["nodes"]):
        columns.setdefault(level(key), []).append(key)
    place: dict[str, tuple[int, int]] = {}
    for column, keys in columns.items():
        for row, key in enumerate(keys):
            place[key] = (20 + column * (_W + _GAP_X), 20 + row * (_H + _GAP_Y))
    width = 40 + len(columns) * (_W + _GAP_X) - _GAP_X
    height = 40 + max(len(k) for k in columns.values()) * (_H + _GAP_Y) - _GAP_Y
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" '
           f'font-family="monospace" font-size="12" role="img">',
           f"<title>Provenance of {escape(str(graph['datum']))}: {len(graph['nodes'])} data,"
           f" {len(graph['edges'])} derivations</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
           'markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    for source, target in graph["edges"]:
        (x1, y1), (x2, y2) = place[source], place[target]
        out.append(f'<line x1="{x1 + _W}" y1="{y1 + _H // 2}" x2="{x2}" y2="{y2 + _H // 2}" '
                   'stroke="#555" marker-end="url(#arrow)"/>')
    for key, node in sorted(graph["nodes"].items()):
        x, y = place[key]
        latest = {a["kind"]: a["satisfied"] for a in node["annotations"]}
        held = " ".join(k for k, ok in latest.items() if ok) or "-"
        failed = " ".join(k for k, ok in latest.items() if not ok) or "-"
        fill = "#e8f5e9" if not failed.strip("-") else "#fff3e0"
        stroke = "#c62828" if key == graph["datum"] else "#333"
        out.append(f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{fill}" '
                   f'stroke="{stroke}"/>')
        lines = [key[:28] + ("…" if len(key) > 28 else ""), f"score {node['score']}",
                 f"ok: {held}", f"failed: {failed}",
                 "anchored proof" if node.get("proof") else "no anchor proof yet"]
        for n, text in enumerate(lines):
            out.append(f'<text x="{x + 8}" y="{y + 18 + n * 16}">{escape(text[:45])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
