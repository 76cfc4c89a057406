"""Server-rendered SVG bar charts (usage and alerts over time, an alert against its baseline).

Written by hand because the charts are tiny and must ship with the page (no
JavaScript, no build step, no CDN); every chart carries ``role="img"``, a
``<title>`` and a ``<desc>``, and the page shows the same numbers in a table
(WCAG 2.2 SC 1.1.1). Colours pass 4.5:1 against white.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "grouped_chart"]

_W, _H = 640, 200
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 12, 16, 36
_BAR = "#1d4f91"


def _fmt(value: float) -> str:
    if abs(value) >= 1e9:
        return f"{value / 1e9:.1f}G"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def _ids(title: str, desc: str) -> tuple[str, str]:
    """Element ids unique to one chart (several charts share a page)."""
    tag = hashlib.sha256(f"{title}\0{desc}".encode()).hexdigest()[:10]
    return f"chart-{tag}-t", f"chart-{tag}-d"


def _open(title: str, desc: str) -> list[str]:
    t, d = _ids(title, desc)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img"'
        f' class="chart" aria-labelledby="{t} {d}" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{t}">{escape(title)}</title><desc id="{d}">{escape(desc)}</desc>',
    ]


def _frame(title: str, desc: str, body: list[str], top: float) -> str:
    inner_h = _H - _PAD_T - _PAD_B
    parts = [
        *_open(title, desc),
        f'<line x1="{_PAD_L}" y1="{_PAD_T + inner_h}" x2="{_W - _PAD_R}" y2="{_PAD_T + inner_h}"'
        ' stroke="#333"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = _PAD_T + inner_h * (1 - frac)
        parts.append(f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11"'
                     f' fill="#222">{_fmt(top * frac)}</text>')
    return "".join(parts + body + ["</svg>"])


def bar_chart(points: Sequence[tuple[str, float]], *, title: str, unit: str) -> str:
    """Bars for (label, value) pairs in order; labels thinned to fit under the axis."""
    top = max((v for _, v in points), default=0.0) or 1.0
    inner_w = _W - _PAD_L - _PAD_R
    inner_h = _H - _PAD_T - _PAD_B
    step = inner_w / max(len(points), 1)
    every = max(1, len(points) // 8)
    body: list[str] = []
    for i, (label, value) in enumerate(points):
        height = inner_h * value / top
        x = _PAD_L + i * step
        body.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{_PAD_T + inner_h - height:.1f}"'
            f' width="{max(step * 0.8, 1):.1f}" height="{height:.1f}" fill="{_BAR}">'
            f"<title>{escape(label)}: {_fmt(value)} {escape(unit)}</title></rect>")
        if i % every == 0:
            body.append(f'<text x="{x + step / 2:.1f}" y="{_H - _PAD_B + 16}" font-size="11"'
                        f' text-anchor="middle" fill="#222">{escape(label)}</text>')
    total = sum(v for _, v in points)
    desc = (f"{len(points)} bars, total {_fmt(total)} {unit}, highest {_fmt(top)} {unit}"
            if points else "no data")
    return _frame(title, desc, body, top)



#: Series colours, each at 4.5:1 or better against white and told apart by the legend text.
SERIES = ("#1d4f91", "#a34700", "#2e6b30", "#6b2d8f")


def grouped_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
                  title: str, unit: str) -> str:
    """Bars per category, one per series, around a zero line (values may be negative)."""
    values = [v for _, vs in series for v in vs]
    top = max([0.0, *values]) or 0.0
    bottom = min([0.0, *values])
    if top == bottom:
        top = 1.0
    inner_w = _W - _PAD_L - _PAD_R
    inner_h = _H - _PAD_T - _PAD_B - 14
    scale = inner_h / (top - bottom)
    zero = _PAD_T + 14 + top * scale
    step = inner_w / max(len(categories), 1)
    width = step * 0.8 / max(len(series), 1)
    body: list[str] = [
        f'<line x1="{_PAD_L}" y1="{zero:.1f}" x2="{_W - _PAD_R}" y2="{zero:.1f}" stroke="#333"/>']
    for value, y in ((top, _PAD_T + 14), (0.0, zero), (bottom, _PAD_T + 14 + inner_h)):
        if value == 0.0 and y != zero:
            continue
        body.append(f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11"'
                    f' fill="#222">{_fmt(value)}</text>')
    for s, (name, _vals) in enumerate(series):
        x = _PAD_L + s * 150
        body.append(f'<rect x="{x}" y="{_PAD_T - 8}" width="10" height="10"'
                    f' fill="{SERIES[s % len(SERIES)]}"/><text x="{x + 14}" y="{_PAD_T + 1}"'
                    f' font-size="11" fill="#222">{escape(name)}</text>')
    for i, label in enumerate(categories):
        x0 = _PAD_L + i * step + step * 0.1
        for s, (name, vals) in enumerate(series):
            value = float(vals[i]) if i < len(vals) else 0.0
            y = zero - max(value, 0.0) * scale
            body.append(
                f'<rect x="{x0 + s * width:.1f}" y="{y:.1f}" width="{max(width, 1):.1f}"'
                f' height="{abs(value) * scale:.1f}" fill="{SERIES[s % len(SERIES)]}">'
                f"<title>{escape(label)}, {escape(name)}: {_fmt(value)} {escape(unit)}</title>"
                "</rect>")
        body.append(f'<text x="{_PAD_L + i * step + step / 2:.1f}" y="{_H - 8}" font-size="11"'
                    f' text-anchor="middle" fill="#222">{escape(label[:18])}</text>')
    desc = (f"{len(categories)} groups of {len(series)} bars"
            f" ({', '.join(n for n, _ in series)}), from {_fmt(bottom)} to {_fmt(top)} {unit}"
            if categories else "no data")
    return "".join([*_open(title, desc), *body, "</svg>"])
