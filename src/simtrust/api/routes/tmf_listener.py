"""Client-side TMF listeners: events from the partner sellers this operator bought from.

The ``notification listeners (client side)`` operations of the official files,
under their base paths: TMF622 v4.0.0 ``POST
/tmf-api/productOrderingManagement/v4/listener/productOrderStateChangeEvent`` (and
the other product order and cancellation events), TMF637 v4.0.0 ``POST
/tmf-api/productInventory/v4/listener/productCreateEvent`` (and the other product
events). A seller delivers to them after this operator registered
``{base}`` as the callback of the seller's hub (``Federation.subscribe``,
TMF630 part 2).

No API key: the caller is a partner operator, authenticated by the RFC 9421
signature of its DID over the delivery (tag ``simtrust-tmf-event``,
``market/_federation.py``); the body is checked against the official
``*Event`` definition; ``market/_inbox.py`` drops a repeated ``eventId`` and
applies the rest to this operator's purchase from that seller. The answer is
201 with an ``EventSubscription`` (``id``: the event's id, ``callback``: this
listener), as the official operations declare, for a first delivery and a
repeat alike. Errors are the TMF ``Error`` model (401 unsigned or not
verifying, 400 not matching the schema, 404 not a purchase from the signer).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from simtrust.api.deps import CurrentRuntime
from simtrust.api.routes.tmf import _ERRORS, JsonBody
from simtrust.api.tmf_requests import check_body
from simtrust.market import BASE_PATHS, EVENT_TAG, LISTENER_EVENTS

__all__ = ["router"]

router = APIRouter(tags=["tmf"])


async def partner_sender(request: Request, rt: CurrentRuntime) -> str:
    """The DID whose RFC 9421 signature covers this delivery (401 otherwise)."""
    body = await request.body()
    message = httpx.Request(request.method, str(request.url), headers=request.headers.raw,
                            content=body)
    return rt.federation.authenticate(message, body, tag=EVENT_TAG)


def _listener_route(api: str, name: str) -> None:
    path = f"{BASE_PATHS[api]}/listener/{name}"
    title = name[:1].upper() + name[1:]

    @router.post(path, status_code=201, responses=_ERRORS, operation_id=f"listenTo{title}",
                 summary=f"Client listener for {title} (from a partner seller)")
    def listen(body: JsonBody, request: Request, rt: CurrentRuntime,
               sender: str = Depends(partner_sender)) -> JSONResponse:
        check_body(path, "POST", body)
        rt.partner_inbox.receive(sender, name, body)
        answer: dict[str, Any] = {"id": str(body["eventId"]), "callback": str(request.url)}
        return JSONResponse(answer, status_code=201)


for _api, _names in LISTENER_EVENTS.items():
    for _name in _names:
        _listener_route(_api, _name)
