"""Draw the package import graph of ``src/simtrust`` by layer, as SVG (matplotlib).

    .venv/bin/python tools/draw_layers.py [OUT.svg]      # default: docs/img/packages.svg

Each package sits in the band of its layer (``LAYERS`` of ``tests/test_layers.py``,
the same map the layer test enforces); an arrow goes from a package to every
package it imports (the graph :mod:`simtrust.testing.layering` reads from the
source). Arrows that point up a layer or close a cycle are drawn red, so a broken
rule shows in the picture as well as in the test. The output is deterministic
(fixed hash salt, no date) so it only changes when the graph does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.test_layers import LAYERS, NAMES  # noqa: E402 - after the path

from simtrust.testing.layering import cycles, package_graph, scan  # noqa: E402 - after the path

BAND = 1.6
WIDTH = 16.0


def _rank(name: str, graph: dict[str, set[str]], seen: frozenset[str] = frozenset()) -> int:
    """Rows within a layer: a package sits above the packages of its layer it imports."""
    below = [_rank(t, graph, seen | {name}) for t in graph.get(name, ())
             if t in LAYERS and LAYERS[t] == LAYERS[name] and t not in seen and t != name]
    return 1 + max(below) if below else 0


def positions(packages: list[str], graph: dict[str, set[str]]) -> dict[str, tuple[float, float]]:
    rows: dict[tuple[int, int], list[str]] = {}
    for name in sorted(packages):
        rows.setdefault((LAYERS[name], min(_rank(name, graph), 1)), []).append(name)
    out = {}
    for (layer, rank), names in rows.items():
        step = WIDTH / (len(names) + 1)
        depth = max(r for (lay, r) in rows if lay == layer)
        for i, name in enumerate(names):
            offset = (rank - depth / 2) * (BAND * 0.36 / max(depth, 1)) if depth else 0.0
            stagger = 0.07 if i % 2 else -0.07
            out[name] = (step * (i + 1), layer * BAND + offset + stagger)
    return out


def draw(out: Path) -> Path:
    graph = package_graph(scan(ROOT / "src" / "simtrust"), with_type_checking=True)
    packages = [p for p in graph if p in LAYERS and p != "__main__"]
    in_cycle = {p for group in cycles(graph) for p in group}
    where = positions(packages, graph)
    plt.rcParams["svg.hashsalt"] = "simtrust-layers"
    fig, ax = plt.subplots(figsize=(16, 10))
    top = max(LAYERS.values())
    for layer in range(top + 1):
        ax.axhspan(layer * BAND - BAND / 2, layer * BAND + BAND / 2,
                   color="#f4f6f8" if layer % 2 else "#e9edf1", zorder=0)
        ax.text(0.1, layer * BAND + BAND / 2 - 0.15, NAMES[layer], fontsize=11,
                va="top", color="#44515e", style="italic")
    for source in sorted(packages):
        for target in sorted(graph[source]):
            if target not in where:
                continue
            bad = LAYERS[target] > LAYERS[source] or (source in in_cycle and target in in_cycle)
            (x1, y1), (x2, y2) = where[source], where[target]
            arrow = FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=9,
                                    shrinkA=16, shrinkB=16, lw=1.6 if bad else 0.6,
                                    color="#c0392b" if bad else "#7f8c99",
                                    alpha=0.95 if bad else 0.45,
                                    connectionstyle="arc3,rad=0.06", zorder=1)
            ax.add_patch(arrow)
    for name, (x, y) in where.items():
        box = FancyBboxPatch((x - 0.62, y - 0.2), 1.24, 0.4, boxstyle="round,pad=0.04",
                             fc="#ffffff", ec="#c0392b" if name in in_cycle else "#2c3e50",
                             lw=1.2, zorder=2)
        ax.add_patch(box)
        ax.text(x, y, name, ha="center", va="center", fontsize=10, zorder=3,
                family="monospace")
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(-BAND / 2, top * BAND + BAND / 2)
    ax.axis("off")
    ax.set_title("simtrust packages by layer; arrows are imports (red: upward or in a cycle)",
                 fontsize=12)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = out.suffix.lstrip(".") or "svg"
    metadata = {"Date": None} if fmt == "svg" else None
    fig.savefig(out, format=fmt, bbox_inches="tight", metadata=metadata)
    plt.close(fig)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "packages.svg"
    print(draw(target))
