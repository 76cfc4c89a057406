"""The explorer view: the recent tangle with finalized messages marked, as JSON and SVG.

``docs/network.md`` ("Explorer"). :func:`tangle_view` reads the newest
messages of a :class:`~simtrust.ledger.LedgerNode` with their parents and
states; :func:`render_tangle_svg` is a pure function drawing that view
(time flows left to right, an edge from each message to the parents it
approves, one fill colour per state). The SVG is written by hand: a few
dozen elements of SVG 1.1 (W3C, 2011, §9 basic shapes, §10 text), no
plotting library needed, and every string in it is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from simtrust.ledger import LedgerNode

__all__ = ["STATE_COLOURS", "render_tangle_svg", "tangle_view"]

STATE_COLOURS: dict[str, tuple[str, str]] = {
    "finalized": ("#2e7d32", "#1b5e20"),
    "conflicting": ("#c62828", "#8e0000"),
    "solid": ("#ffffff", "#546e7a"),
    "pending": ("#fff8e1", "#ff8f00"),
    "unknown": ("#eeeeee", "#9e9e9e"),
}


def tangle_view(ledger: LedgerNode, limit: int = 60) -> dict[str, Any]:
    """The newest ``limit`` messages (oldest first), their parents and states."""
    limit = max(1, min(limit, 500))
    recent = list(reversed(ledger.recent(limit)))
    messages = []
    finalized = 0
    for row in recent:
        mid = bytes.fromhex(row["message_id"])
        state = ledger.status(mid)
        parents = [p.hex() for p in ledger.get_message(mid).parents]
        if state["state"] == "finalized":
            finalized += 1
        messages.append({
            "id": row["message_id"],
            "seq": row["seq"],
            "issuer": row["issuer"],
            "issued_at": row["issued_at"],
            "payload_type": row["payload_type"],
            "parents": parents,
            "state": state["state"],
            "order": state.get("order"),
        })
    return {
        "genesis": ledger.genesis.id.hex(),
        "tips": [t.hex() for t in ledger.tips()],
        "count": len(messages),
        "finalized": finalized,
        "messages": messages,
    }


def _layout(messages: list[dict[str, Any]], rows: int) -> dict[str, tuple[float, float]]:
    pos: dict[str, tuple[float, float]] = {}
    for index, m in enumerate(messages):
        column, row = divmod(index, rows)
        stagger = 14.0 if column % 2 else 0.0
        pos[m["id"]] = (60.0 + 70.0 * column, 70.0 + 44.0 * row + stagger)
    return pos


def render_tangle_svg(view: dict[str, Any], *, rows: int = 5, title: str = "") -> str:
    """An SVG picture of a :func:`tangle_view` (standalone document, UTF-8 text)."""
    messages: list[dict[str, Any]] = view["messages"]
    pos = _layout(messages, rows)
    columns = max(1, (len(messages) + rows - 1) // rows)
    width = int(120 + 70 * columns)
    height = int(70 + 44 * rows + 60)
    heading = title or (
        f"recent tangle: {view['count']} messages, {view['finalized']} finalized"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10"'
        f' role="img"><title>{escape(heading)}</title>',
        f'<rect width="{width}" height="{height}" fill="#fafafa"/>',
        f'<text x="12" y="20" font-size="13" font-weight="bold">{escape(heading)}</text>',
    ]
    x = 12.0
    for state in ("finalized", "solid", "pending", "conflicting"):
        fill, stroke = STATE_COLOURS[state]
        out.append(f'<circle cx="{x + 6}" cy="38" r="6" fill="{fill}" stroke="{stroke}"/>')
        out.append(f'<text x="{x + 16}" y="42">{state}</text>')
        x += 90
    out.append('<g stroke="#90a4ae" stroke-width="1" fill="none">')
    for m in messages:
        cx, cy = pos[m["id"]]
        for parent in m["parents"]:
            if parent in pos:
                px, py = pos[parent]
                out.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{px:.1f}" y2="{py:.1f}"/>')
            else:
                out.append(
                    f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{cx - 40:.1f}" y2="{cy:.1f}"'
                    ' stroke-dasharray="3,3"/>'
                )
    out.append("</g>")
    tips = set(view.get("tips", ()))
    for m in messages:
        cx, cy = pos[m["id"]]
        fill, stroke = STATE_COLOURS.get(m["state"], STATE_COLOURS["unknown"])
        width_px = 2.5 if m["id"] in tips else 1.2
        label = escape(f"{m['id'][:12]} {m['payload_type']} {m['state']}")
        out.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="9" fill="{fill}" stroke="{stroke}"'
            f' stroke-width="{width_px}"><title>{label}</title></circle>'
        )
        out.append(
            f'<text x="{cx:.1f}" y="{cy + 20:.1f}" text-anchor="middle" font-size="8"'
            f' fill="#37474f">{escape(m["id"][:6])}</text>'
        )
    out.append(
        f'<text x="12" y="{height - 12}" fill="#546e7a">time →  (edges point to approved'
        " parents; thick outline: tip)</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
