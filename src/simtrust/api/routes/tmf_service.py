"""TMF641 v4.1.0 service orders and TMF638 v4.0.0 service writes placed by clients.

Official operations (``TMF641-ServiceOrdering-v4.1.0.swagger.json``:
``POST /serviceOrder``, ``PATCH /serviceOrder/{id}``, ``DELETE
/serviceOrder/{id}`` (final states only, else 409), ``POST``/``GET
/cancelServiceOrder``, ``GET /cancelServiceOrder/{id}``;
``TMF638-ServiceInventory-v4.0.0.swagger.json``: ``POST
/service``, ``PATCH /service/{id}``, ``DELETE /service/{id}``); the reads are in
``tmf.py``. Bodies are checked against the official request schemas first
(``tmf_requests``); the work is ``market._client_services`` (see
``docs/decisions/market-client-service-orders.md``). Another tenant's order or
service answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import JSONResponse

from simtrust.api.deps import CurrentRuntime
from simtrust.api.routes.tmf import (
    _ERRORS,
    _MAX_LIMIT,
    SERVICE_ORDERING,
    CurrentPrincipal,
    Fields,
    JsonBody,
    Limit,
    Offset,
    PatchBody,
    _base,
    _official_body,
    _page,
    _service_doc,
    _service_order_doc,
)
from simtrust.errors import InvalidInput, NotFound
from simtrust.market import select_fields

__all__ = ["router"]

router = APIRouter(tags=["tmf"], dependencies=[Depends(_official_body)])
SERVICE_INVENTORY = "/tmf-api/serviceInventory/v4"


@router.post(f"{SERVICE_ORDERING}/serviceOrder", status_code=201, responses=_ERRORS,
             operation_id="createServiceOrder", summary="Creates a ServiceOrder")
def create_service_order(body: JsonBody, request: Request, rt: CurrentRuntime,
                         who: CurrentPrincipal, background: BackgroundTasks) -> JSONResponse:
    who.require_admin()
    order = rt.market.client_services.create_order(who.tenant_id, body, who.actor)
    background.add_task(rt.market.client_services.process, order.document["id"])
    doc = _service_order_doc(request, order.document)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})


def _order(rt: Any, who: Any, order_id: str) -> Any:
    order = rt.market.get_service_order(order_id)
    who.check_tenant(order.tenant_id, NotFound(f"no serviceOrder {order_id!r}", id=order_id))
    return order


@router.patch(f"{SERVICE_ORDERING}/serviceOrder/{{id}}", responses=_ERRORS,
              operation_id="patchServiceOrder",
              summary="Updates partially a ServiceOrder (JSON Merge Patch; state: cancelled)")
def patch_service_order(id: str, body: PatchBody, request: Request, rt: CurrentRuntime,
                        who: CurrentPrincipal) -> dict[str, Any]:
    order = _order(rt, who, id)
    who.require_admin()
    return _service_order_doc(request,
                              rt.market.client_services.patch_order(order, body, who.actor))


@router.delete(f"{SERVICE_ORDERING}/serviceOrder/{{id}}", status_code=204, responses=_ERRORS,
               operation_id="deleteServiceOrder", summary="Deletes a ServiceOrder")
def delete_service_order(id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
    order = _order(rt, who, id)
    who.require_admin()
    rt.market.delete_service_order(order, who.actor)
    return Response(status_code=204)


@router.post(f"{SERVICE_ORDERING}/cancelServiceOrder", status_code=201, responses=_ERRORS,
             operation_id="createCancelServiceOrder", summary="Creates a CancelServiceOrder")
def cancel_service_order(body: JsonBody, request: Request, rt: CurrentRuntime,
                         who: CurrentPrincipal) -> JSONResponse:
    who.require_admin()
    ref = body.get("serviceOrder")
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise InvalidInput("serviceOrder must be a reference with an id",
                           attribute="serviceOrder")
    order = _order(rt, who, ref["id"])
    reason = body.get("cancellationReason")
    task = rt.market.client_services.cancel_task(
        order, who.actor, reason if isinstance(reason, str) else None)
    doc = _cancel_doc(request, task.document)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})


def _cancel_doc(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    base = _base(request)
    ref = document["serviceOrder"]
    return {**document, "href": f"{base}{SERVICE_ORDERING}/cancelServiceOrder/{document['id']}",
            "serviceOrder": {**ref, "href": f"{base}{SERVICE_ORDERING}/serviceOrder/{ref['id']}"}}


@router.get(f"{SERVICE_ORDERING}/cancelServiceOrder", responses=_ERRORS,
            operation_id="listCancelServiceOrder",
            summary="List or find CancelServiceOrder objects")
def list_cancel_service_orders(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                               fields: Fields = None, offset: Offset = 0,
                               limit: Limit = _MAX_LIMIT) -> JSONResponse:
    tasks = rt.market.list_service_cancellations(who.tenant_id, who.is_operator)
    return _page(request, [_cancel_doc(request, t.document) for t in tasks], fields, offset,
                 limit)


@router.get(f"{SERVICE_ORDERING}/cancelServiceOrder/{{id}}", responses=_ERRORS,
            operation_id="retrieveCancelServiceOrder",
            summary="Retrieves a CancelServiceOrder by ID")
def retrieve_cancel_service_order(id: str, request: Request, rt: CurrentRuntime,
                                  who: CurrentPrincipal, fields: Fields = None,
                                  ) -> dict[str, Any]:
    task = rt.market.get_service_cancellation(id)
    who.check_tenant(task.tenant_id, NotFound(f"no cancelServiceOrder {id!r}", id=id))
    return select_fields(_cancel_doc(request, task.document), fields)


@router.post(f"{SERVICE_INVENTORY}/service", status_code=201, responses=_ERRORS,
             operation_id="createService", summary="Creates a Service")
def create_service(body: JsonBody, request: Request, rt: CurrentRuntime,
                   who: CurrentPrincipal) -> JSONResponse:
    who.require_admin()
    service = rt.market.client_services.create_service(who.tenant_id, body, who.actor)
    doc = _service_doc(request, service.document)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})


def _tenant(rt: Any, who: Any, service_id: str) -> str | None:
    service = rt.market.get_service(service_id)
    who.check_tenant(service.tenant_id, NotFound(f"no service {service_id!r}", id=service_id))
    who.require_admin()
    return service.tenant_id  # type: ignore[no-any-return]


@router.patch(f"{SERVICE_INVENTORY}/service/{{id}}", responses=_ERRORS,
              operation_id="patchService",
              summary="Updates partially a Service (JSON Merge Patch)")
def patch_service(id: str, body: PatchBody, request: Request, rt: CurrentRuntime,
                  who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _tenant(rt, who, id)
    service = rt.market.client_services.patch_service(tenant, id, body, who.actor)
    return _service_doc(request, service.document)


@router.delete(f"{SERVICE_INVENTORY}/service/{{id}}", status_code=204, responses=_ERRORS,
               operation_id="deleteService", summary="Deletes a Service")
def delete_service(id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
    tenant = _tenant(rt, who, id)
    rt.market.client_services.delete_service(tenant, id, who.actor)
    return Response(status_code=204)
