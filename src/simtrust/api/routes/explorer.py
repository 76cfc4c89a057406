"""Explorer view over HTTP: the recent tangle with finalized messages marked (JSON and SVG).

Serves :func:`simtrust.ledger.net.tangle_view` of the runtime's ledger node
(the committee-ordered one in a consortium validator process) and its
picture from :func:`simtrust.ledger.net.render_tangle_svg`
(``docs/network.md``, "Explorer").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.ledger.net import render_tangle_svg, tangle_view

__all__ = ["router"]

router = APIRouter(prefix="/v1/ledger/explorer", tags=["ledger-explorer"])


@router.get("/tangle", summary="Recent tangle: messages, parents, states (finalized marked)")
def tangle(
    rt: CurrentRuntime, who: CurrentPrincipal, limit: int = Query(60, ge=1, le=500)
) -> dict[str, Any]:
    return tangle_view(rt.ledger, limit)


@router.get(
    "/tangle.svg",
    summary="Picture of the recent tangle (SVG), finalized messages marked",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def tangle_svg(
    rt: CurrentRuntime,
    who: CurrentPrincipal,
    limit: int = Query(60, ge=1, le=500),
    rows: int = Query(5, ge=1, le=40),
) -> Response:
    svg = render_tangle_svg(tangle_view(rt.ledger, limit), rows=rows)
    return Response(svg, media_type="image/svg+xml")
