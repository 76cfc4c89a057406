"""Explorer view: recent tangle as JSON and SVG, finalized messages marked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from simtrust.ledger.net import render_tangle_svg, tangle_view
from simtrust.ledger.net._explorer import STATE_COLOURS
from simtrust.runtime import Runtime

SVG = "{http://www.w3.org/2000/svg}"


def _issue(rt: Runtime, count: int) -> list[bytes]:
    node = rt.ledger
    return [node.issue_data(b"explorer", f"message {i}".encode()) for i in range(count)]


def test_view_lists_recent_messages_with_parents_and_states(sqlite_runtime: Runtime) -> None:
    ids = _issue(sqlite_runtime, 6)
    view = tangle_view(sqlite_runtime.ledger, limit=4)
    assert [i.hex() for i in ids[-4:]] == [m["id"] for m in view["messages"]]
    # The solo orderer finalizes each message in the ingest that stores it.
    assert ["finalized"] * 4 == [m["state"] for m in view["messages"]]
    assert [3, 4, 5, 6] == [m["order"] for m in view["messages"]]
    assert 4 == view["finalized"]
    # Tip selection: each message approves the one tip, its predecessor.
    assert [ids[-2].hex()] == view["messages"][-1]["parents"]
    assert [ids[-1].hex()] == view["tips"]


def test_svg_marks_each_message_by_state_and_escapes_text() -> None:
    view: dict[str, Any] = {
        "count": 3, "finalized": 1, "tips": ["c" * 64],
        "messages": [
            {"id": "a" * 64, "parents": ["0" * 64], "state": "finalized",
             "payload_type": "tagged-data"},
            {"id": "b" * 64, "parents": ["a" * 64], "state": "conflicting",
             "payload_type": "transaction"},
            {"id": "c" * 64, "parents": ["a" * 64, "b" * 64], "state": "solid",
             "payload_type": "<script>"},
        ],
    }
    svg = render_tangle_svg(view, rows=2)
    root = ET.fromstring(svg)
    assert f"{SVG}svg" == root.tag
    circles = root.findall(f".//{SVG}circle")
    fills = [c.get("fill") for c in circles]
    # Four legend entries, then one circle per message in its state's colour.
    assert [STATE_COLOURS[s][0] for s in ("finalized", "conflicting", "solid")] == fills[4:]
    lines = root.findall(f".//{SVG}line")
    assert 4 == len(lines)  # a→(outside, dashed), b→a, c→a, c→b
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_explorer_endpoints_serve_json_and_svg(
    api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str]
) -> None:
    _issue(sqlite_runtime, 5)
    response = api.get("/v1/ledger/explorer/tangle?limit=10", headers=operator_headers)
    assert 200 == response.status_code
    assert 5 == response.json()["count"]
    picture = api.get("/v1/ledger/explorer/tangle.svg?limit=10", headers=operator_headers)
    assert 200 == picture.status_code
    assert picture.headers["content-type"].startswith("image/svg+xml")
    assert f"{SVG}svg" == ET.fromstring(picture.text).tag
    assert 401 == api.get("/v1/ledger/explorer/tangle").status_code
