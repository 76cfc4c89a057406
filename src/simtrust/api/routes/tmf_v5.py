"""TM Forum TMF622 Product Ordering v5.0.0 under ``/tmf-api/productOrderingManagement/v5``.

The same orders as v4 (``tmf.py``), where the models agree
(``TMF622-ProductOrdering-v5.0.0.oas.yaml``): ``productOrder`` create, list,
retrieve, merge-patch, delete (a final order leaves the list, an open one is
cancelled); ``cancelProductOrder`` create, list, retrieve; the v5
``hub`` (registered with the other hubs in ``tmf.py``: ``Hub_FVO`` → ``Hub``,
its listeners get the events in the v5 model). Documents are converted by
:mod:`simtrust.market` (``order_v5``: ``@type`` on every Extensible, typed
characteristics). ``requestedInitialState`` accepts only ``acknowledged``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import JSONResponse

from simtrust.api.deps import CurrentRuntime
from simtrust.api.routes.tmf import (
    _ERRORS,
    _MAX_LIMIT,
    CurrentPrincipal,
    Fields,
    JsonBody,
    Limit,
    Offset,
    PatchBody,
    _base,
    _official_body,
    _order_doc,
    _order_missing,
    _page,
)
from simtrust.errors import InvalidInput, NotFound, PermissionDenied
from simtrust.market import REMOVABLE, V5_BASE, cancellation_v5, order_v5, select_fields

__all__ = ["router"]

ORDERING_V5 = V5_BASE
router = APIRouter(tags=["tmf"], dependencies=[Depends(_official_body)])


def _order_v5(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    return order_v5(_order_doc(request, document), _base(request))


def _cancel(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    return cancellation_v5(document, _base(request))


@router.post(f"{ORDERING_V5}/productOrder", status_code=201, responses=_ERRORS,
             operation_id="createProductOrderV5", summary="Creates a ProductOrder (TMF622 v5)")
def create_order_v5(body: JsonBody, request: Request, rt: CurrentRuntime,
                    who: CurrentPrincipal, background: BackgroundTasks) -> JSONResponse:
    who.require_admin()
    initial = body.pop("requestedInitialState", "acknowledged")
    if initial != "acknowledged":
        raise InvalidInput("requestedInitialState: only acknowledged is supported",
                           attribute="requestedInitialState")
    order = rt.market.create_order(who.tenant_id, body, who.actor)
    if rt.market.orchestrated(order.document["id"]):
        background.add_task(rt.orchestrator.process, order.document["id"])
    doc = _order_v5(request, order.document)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})


@router.get(f"{ORDERING_V5}/productOrder", responses=_ERRORS,
            operation_id="listProductOrderV5", summary="List or find ProductOrder objects (v5)")
def list_orders_v5(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                   fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                   ) -> JSONResponse:
    orders = rt.market.list_orders(who.tenant_id, who.is_operator)
    return _page(request, [_order_v5(request, o.document) for o in orders], fields, offset,
                 limit)


@router.get(f"{ORDERING_V5}/productOrder/{{id}}", responses=_ERRORS,
            operation_id="retrieveProductOrderV5",
            summary="Retrieves a ProductOrder by ID (v5)")
def retrieve_order_v5(id: str, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                      fields: Fields = None) -> dict[str, Any]:
    order = rt.market.get_order(id)
    who.check_tenant(order.tenant_id, _order_missing(id))
    return select_fields(_order_v5(request, order.document), fields)


@router.patch(f"{ORDERING_V5}/productOrder/{{id}}", responses=_ERRORS,
              operation_id="patchProductOrderV5",
              summary="Updates partially a ProductOrder (TMF622 v5, JSON Merge Patch)")
def patch_order_v5(id: str, body: PatchBody, request: Request, rt: CurrentRuntime,
                   who: CurrentPrincipal) -> dict[str, Any]:
    order = rt.market.get_order(id)
    who.check_tenant(order.tenant_id, _order_missing(id))
    who.require_admin()
    if body.get("@type", "ProductOrder") != "ProductOrder":
        raise InvalidInput("@type must be ProductOrder", attribute="@type")
    body.pop("@type", None)
    patched = rt.market.patch_order(order, body, who.actor, may_change_state=who.is_operator)
    return _order_v5(request, patched.document)


@router.delete(f"{ORDERING_V5}/productOrder/{{id}}", status_code=204,
               responses={**_ERRORS, 202: {"description": "Accepted: the order was not final;"
                                                          " its cancellation started (Location:"
                                                          " the cancelProductOrder task)"}},
               operation_id="deleteProductOrderV5", summary="Deletes a ProductOrder (v5)")
def delete_order_v5(id: str, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                    background: BackgroundTasks) -> Response:
    """A final order leaves the order list (the seller's; 204); an open one is cancelled
    (buyer or seller; 202 with the task's Location). docs/decisions/market-async-cancellation.md.
    """
    order = rt.market.get_order(id)
    who.check_tenant(order.tenant_id, _order_missing(id))
    who.require_admin()
    if order.state in REMOVABLE:
        if not who.is_operator:
            raise PermissionDenied("only the seller removes a finished order from its list")
        rt.market.delete_order(order, who.actor)
        return Response(status_code=204)
    task = rt.market.cancel_order(order, {"cancellationReason": "DELETE productOrder"},
                                  who.actor)
    background.add_task(rt.market.process_cancellation, task.document["id"])
    return Response(status_code=202,
                    headers={"Location": _cancel(request, task.document)["href"]})


@router.post(f"{ORDERING_V5}/cancelProductOrder", status_code=201, responses=_ERRORS,
             operation_id="createCancelProductOrderV5",
             summary="Creates a CancelProductOrder (TMF622 v5)")
def cancel_order_v5(body: JsonBody, request: Request, rt: CurrentRuntime,
                    who: CurrentPrincipal, background: BackgroundTasks) -> JSONResponse:
    who.require_admin()
    if body.get("@type", "CancelProductOrder") != "CancelProductOrder":
        raise InvalidInput("@type must be CancelProductOrder", attribute="@type")
    ref = body.get("productOrder")
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise InvalidInput("productOrder must be a reference with an id",
                           attribute="productOrder")
    order = rt.market.get_order(ref["id"])
    who.check_tenant(order.tenant_id, _order_missing(ref["id"]))
    task = rt.market.cancel_order(order, {k: v for k, v in body.items() if k != "@type"},
                                  who.actor)
    background.add_task(rt.market.process_cancellation, task.document["id"])
    doc = _cancel(request, task.document)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})


@router.get(f"{ORDERING_V5}/cancelProductOrder", responses=_ERRORS,
            operation_id="listCancelProductOrderV5",
            summary="List or find CancelProductOrder objects (v5)")
def list_cancellations_v5(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                          fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                          ) -> JSONResponse:
    tasks = rt.market.list_cancellations(who.tenant_id, who.is_operator)
    return _page(request, [_cancel(request, t.document) for t in tasks], fields, offset,
                 limit)


@router.get(f"{ORDERING_V5}/cancelProductOrder/{{id}}", responses=_ERRORS,
            operation_id="retrieveCancelProductOrderV5",
            summary="Retrieves a CancelProductOrder by ID (v5)")
def retrieve_cancellation_v5(id: str, request: Request, rt: CurrentRuntime,
                             who: CurrentPrincipal, fields: Fields = None) -> dict[str, Any]:
    task = rt.market.get_cancellation(id)
    who.check_tenant(task.tenant_id, NotFound(f"no cancelProductOrder {id!r}", id=id))
    return select_fields(_cancel(request, task.document), fields)
