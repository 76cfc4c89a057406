"""TM Forum Open APIs: TMF620 Product Catalog v4.1.0, TMF633 Service Catalog v4.0.0,
TMF622 Product Ordering v4.0.0, TMF641 Service Ordering v4.1.0 (the service orders
orchestration creates), TMF637 Product Inventory (what completed orders created; PATCH
suspends, resumes and describes a product) and TMF638 Service Inventory v4.0.0, and
each API's ``hub`` (TMF630 part 2).
TMF622 v5.0.0 is in ``tmf_v5.py``.

Official base paths (``/tmf-api/productCatalogManagement/v4``,
``/tmf-api/productOrderingManagement/v4``, ``/tmf-api/productInventory/v4``)
and resource models, as in the swagger files
``TMF620-ProductCatalog-v4.1.0.swagger.json``,
``TMF622-ProductOrdering-v4.0.0.swagger.json`` and
``TMF637-ProductInventory-v4.0.0.swagger.json``. Query behaviour per TMF630
(``fields``, attribute filters, ``offset``/``limit`` answered by
``X-Total-Count`` and ``X-Result-Count``); PATCH is JSON Merge Patch
(RFC 7386); errors are the TMF ``Error`` model (api/problems.py). Catalog
writes need an admin key: the operator's items form the public catalog, a
tenant admin's are private to its tenant. Order state changes are the
seller's (operator-admin) alone. ``docs/market.md`` describes the rest.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, BackgroundTasks, Body, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentRuntime, Principal, get_principal
from simtrust.api.tmf_requests import official_body
from simtrust.errors import InvalidInput, NotFound, PermissionDenied
from simtrust.market import (
    BASE_PATHS,
    CATALOG_KINDS,
    RESERVED_PARAMS,
    SERVICE_CATALOG_KINDS,
    CatalogItem,
    matches,
    select_fields,
)

__all__ = ["router"]

CATALOG = BASE_PATHS["productCatalog"]
SERVICE_CATALOG = BASE_PATHS["serviceCatalog"]
ORDERING = BASE_PATHS["productOrdering"]
SERVICE_ORDERING = BASE_PATHS["serviceOrdering"]
INVENTORY = BASE_PATHS["productInventory"]
SERVICE_INVENTORY = BASE_PATHS["serviceInventory"]
_MAX_LIMIT = 1000

router = APIRouter(tags=["tmf"])


class Error(BaseModel):
    """TMF630 Error resource (the ``Error`` definition of the TMF swagger files)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")
    code: str = Field(..., description="Application relevant detail (simtrust error code)")
    reason: str = Field(..., description="Explanation of the reason for the error")
    message: str | None = Field(None, description="More details and corrective actions")
    status: str | None = Field(None, description="HTTP Error code extension")
    reference_error: str | None = Field(None, alias="referenceError",
                                        description="URI of documentation of the error")
    type_: str | None = Field(None, alias="@type")


async def tmf_principal(
    request: Request, rt: CurrentRuntime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    signature_input: Annotated[str | None, Header(
        description="RFC 9421 signature of a partner operator (keyid: a verification"
                    " method of its did:simtrust); instead of an API key")] = None,
) -> Principal:
    """An API key, or a partner operator's DID-signed request (docs/market.md, federation)."""
    if signature_input is None or authorization is not None or x_api_key is not None:
        return get_principal(rt, authorization, x_api_key)
    body = await request.body()
    message = httpx.Request(request.method, str(request.url), headers=request.headers.raw,
                            content=body)
    did = rt.federation.authenticate(message, body)
    return Principal(did, "tenant-admin", rt.federation.partner(did))


CurrentPrincipal = Annotated[Principal, Depends(tmf_principal)]


async def _official_body(request: Request, who: CurrentPrincipal) -> None:
    """The body against the official request schema, once the caller is known."""
    await official_body(request)


# every TMF route (here and in tmf_v5.py) checks its body before its own work
router.dependencies.append(Depends(_official_body))

_ERROR = {"model": Error, "content": {"application/json": {}}}
_STATUSES = {
    400: "Bad Request: malformed JSON or an invalid attribute",
    401: "Unauthorized: no API key or an unknown one",
    403: "Forbidden: the key's role may not do this",
    404: "Not Found (another tenant's object answers the same)",
    409: "Conflict: a state transition that is not permitted",
    413: "Payload too large",
    422: "Unprocessable: the request does not match the schema, or an offering"
         " that cannot be ordered",
    503: "The store is unavailable",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, **_ERROR} for status, text in _STATUSES.items()}

Fields = Annotated[str | None, Query(description="Comma-separated attributes to return")]
Offset = Annotated[int, Query(ge=0, le=2**31, description="Index of the first result")]
Limit = Annotated[int, Query(ge=1, le=_MAX_LIMIT, description="Number of results")]
JsonBody = Annotated[dict[str, Any], Body(media_type="application/json")]
PatchBody = Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _filters(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in RESERVED_PARAMS}


def _page(request: Request, documents: list[dict[str, Any]], fields: str | None,
          offset: int, limit: int) -> JSONResponse:
    wanted = _filters(request)
    found = [d for d in documents if matches(d, wanted)]
    page = [select_fields(d, fields) for d in found[offset:offset + limit]]
    return JSONResponse(page, headers={"X-Total-Count": str(len(found)),
                                       "X-Result-Count": str(len(page))})


# -- TMF620 product catalog ---------------------------------------------------------------


def _catalog_doc(request: Request, item: CatalogItem) -> dict[str, Any]:
    root = SERVICE_CATALOG if item.kind in SERVICE_CATALOG_KINDS else CATALOG
    return {**item.document,
            "href": f"{_base(request)}{root}/{item.kind}/{item.document['id']}"}


def _visible(who: Principal, item: CatalogItem) -> CatalogItem:
    if item.tenant_id is not None:
        who.check_tenant(item.tenant_id, NotFound(f"no {item.kind} {item.document['id']!r}",
                                                  id=item.document["id"]))
    return item


def _writable(who: Principal, item: CatalogItem) -> CatalogItem:
    _visible(who, item)
    who.require_admin()
    if not who.is_operator and item.tenant_id is None:
        raise PermissionDenied("the public catalog is the operator's")
    return item


def _catalog_routes(kind: str) -> None:
    model = {**CATALOG_KINDS, **SERVICE_CATALOG_KINDS}[kind]
    path = f"{SERVICE_CATALOG if kind in SERVICE_CATALOG_KINDS else CATALOG}/{kind}"

    @router.post(path, status_code=201, responses=_ERRORS, operation_id=f"create{model}",
                 summary=f"Creates a {model}")
    def create(body: JsonBody, request: Request, rt: CurrentRuntime,
               who: CurrentPrincipal) -> JSONResponse:
        who.require_admin()
        item = rt.market.create_item(kind, None if who.is_operator else who.tenant_id, body,
                                     who.actor)
        doc = _catalog_doc(request, item)
        return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})

    @router.get(path, responses=_ERRORS, operation_id=f"list{model}",
                summary=f"List or find {model} objects")
    def listing(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                ) -> JSONResponse:
        items = rt.market.list_items(kind, who.tenant_id, who.is_operator)
        return _page(request, [_catalog_doc(request, i) for i in items], fields, offset, limit)

    @router.get(path + "/{id}", responses=_ERRORS, operation_id=f"retrieve{model}",
                summary=f"Retrieves a {model} by ID")
    def retrieve(id: str, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                 fields: Fields = None) -> dict[str, Any]:
        item = _visible(who, rt.market.get_item(kind, id))
        return select_fields(_catalog_doc(request, item), fields)

    @router.patch(path + "/{id}", responses=_ERRORS, operation_id=f"patch{model}",
                  summary=f"Updates partially a {model} (JSON Merge Patch)")
    def patch(id: str, body: PatchBody, request: Request, rt: CurrentRuntime,
              who: CurrentPrincipal) -> dict[str, Any]:
        item = _writable(who, rt.market.get_item(kind, id))
        return _catalog_doc(request, rt.market.patch_item(item, body, who.actor))

    @router.delete(path + "/{id}", status_code=204, responses=_ERRORS,
                   operation_id=f"delete{model}", summary=f"Deletes a {model}")
    def delete(id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
        item = _writable(who, rt.market.get_item(kind, id))
        rt.market.delete_item(item, who.actor)
        return Response(status_code=204)


for _kind in [*CATALOG_KINDS, *SERVICE_CATALOG_KINDS]:
    _catalog_routes(_kind)


# -- TMF622 product ordering --------------------------------------------------------------


def _order_doc(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    base = _base(request)
    items = [{**item, "productOffering": {
                 **item["productOffering"],
                 "href": f"{base}{CATALOG}/productOffering/{item['productOffering']['id']}"}}
             if "productOffering" in item else item for item in document["productOrderItem"]]
    return {**document, "href": f"{base}{ORDERING}/productOrder/{document['id']}",
            "productOrderItem": items}


def _order_missing(order_id: str) -> NotFound:
    return NotFound(f"no productOrder {order_id!r}", id=order_id)


@router.post(f"{ORDERING}/productOrder", status_code=201, responses=_ERRORS,
             operation_id="createProductOrder", summary="Creates a ProductOrder")
def create_order(body: JsonBody, request: Request, rt: CurrentRuntime,
                 who: CurrentPrincipal, background: BackgroundTasks) -> JSONResponse:
    who.require_admin()
    order = rt.market.create_order(who.tenant_id, body, who.actor)
    if rt.market.orchestrated(order.document["id"]):
        background.add_task(rt.orchestrator.process, order.document["id"])
    doc = _order_doc(request, order.document)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})


@router.get(f"{ORDERING}/productOrder", responses=_ERRORS, operation_id="listProductOrder",
            summary="List or find ProductOrder objects")
def list_orders(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                ) -> JSONResponse:
    orders = rt.market.list_orders(who.tenant_id, who.is_operator)
    return _page(request, [_order_doc(request, o.document) for o in orders], fields, offset,
                 limit)


@router.get(f"{ORDERING}/productOrder/{{id}}", responses=_ERRORS,
            operation_id="retrieveProductOrder", summary="Retrieves a ProductOrder by ID")
def retrieve_order(id: str, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                   fields: Fields = None) -> dict[str, Any]:
    order = rt.market.get_order(id)
    who.check_tenant(order.tenant_id, _order_missing(id))
    return select_fields(_order_doc(request, order.document), fields)


@router.patch(f"{ORDERING}/productOrder/{{id}}", responses=_ERRORS,
              operation_id="patchProductOrder",
              summary="Updates partially a ProductOrder (JSON Merge Patch; state by the seller)")
def patch_order(id: str, body: PatchBody, request: Request, rt: CurrentRuntime,
                who: CurrentPrincipal) -> dict[str, Any]:
    order = rt.market.get_order(id)
    who.check_tenant(order.tenant_id, _order_missing(id))
    who.require_admin()
    patched = rt.market.patch_order(order, body, who.actor, may_change_state=who.is_operator)
    return _order_doc(request, patched.document)


def _cancel_doc(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    base = _base(request)
    ref = document["productOrder"]
    return {**document, "href": f"{base}{ORDERING}/cancelProductOrder/{document['id']}",
            "productOrder": {**ref, "href": f"{base}{ORDERING}/productOrder/{ref['id']}"}}


@router.post(f"{ORDERING}/cancelProductOrder", status_code=201, responses=_ERRORS,
             operation_id="createCancelProductOrder", summary="Creates a CancelProductOrder")
def cancel_order(body: JsonBody, request: Request, rt: CurrentRuntime,
                 who: CurrentPrincipal, background: BackgroundTasks) -> JSONResponse:
    who.require_admin()
    ref = body.get("productOrder")
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise InvalidInput("productOrder must be a reference with an id",
                           attribute="productOrder")
    order = rt.market.get_order(ref["id"])
    who.check_tenant(order.tenant_id, _order_missing(ref["id"]))
    task = rt.market.cancel_order(order, body, who.actor)
    background.add_task(rt.market.process_cancellation, task.document["id"])
    doc = _cancel_doc(request, task.document)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})


@router.get(f"{ORDERING}/cancelProductOrder", responses=_ERRORS,
            operation_id="listCancelProductOrder",
            summary="List or find CancelProductOrder objects")
def list_cancellations(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                       fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                       ) -> JSONResponse:
    tasks = rt.market.list_cancellations(who.tenant_id, who.is_operator)
    return _page(request, [_cancel_doc(request, t.document) for t in tasks], fields, offset,
                 limit)


@router.get(f"{ORDERING}/cancelProductOrder/{{id}}", responses=_ERRORS,
            operation_id="retrieveCancelProductOrder",
            summary="Retrieves a CancelProductOrder by ID")
def retrieve_cancellation(id: str, request: Request, rt: CurrentRuntime,
                          who: CurrentPrincipal, fields: Fields = None) -> dict[str, Any]:
    task = rt.market.get_cancellation(id)
    who.check_tenant(task.tenant_id, NotFound(f"no cancelProductOrder {id!r}", id=id))
    return select_fields(_cancel_doc(request, task.document), fields)


# -- TMF637 product inventory -------------------------------------------------------------


def _product_doc(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    base = _base(request)
    offering = document["productOffering"]
    items = [{**item, "productOrderHref": f"{base}{ORDERING}/productOrder/{item['productOrderId']}"}
             for item in document["productOrderItem"]]
    return {**document, "href": f"{base}{INVENTORY}/product/{document['id']}",
            "productOffering": {**offering,
                                "href": f"{base}{CATALOG}/productOffering/{offering['id']}"},
            "productOrderItem": items}


@router.get(f"{INVENTORY}/product", responses=_ERRORS, operation_id="listProduct",
            summary="List or find Product objects")
def list_products(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                  fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                  ) -> JSONResponse:
    products = rt.market.list_products(who.tenant_id, who.is_operator)
    return _page(request, [_product_doc(request, p.document) for p in products], fields,
                 offset, limit)


@router.get(f"{INVENTORY}/product/{{id}}", responses=_ERRORS, operation_id="retrieveProduct",
            summary="Retrieves a Product by ID")
def retrieve_product(id: str, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                     fields: Fields = None) -> dict[str, Any]:
    product = rt.market.get_product(id)
    who.check_tenant(product.tenant_id, NotFound(f"no product {id!r}", id=id))
    return select_fields(_product_doc(request, product.document), fields)


@router.patch(f"{INVENTORY}/product/{{id}}", responses=_ERRORS, operation_id="patchProduct",
              summary="Updates partially a Product (JSON Merge Patch: name, description,"
                      " isCustomerVisible, status active <-> suspended)")
def patch_product(id: str, body: PatchBody, request: Request, rt: CurrentRuntime,
                  who: CurrentPrincipal) -> dict[str, Any]:
    product = rt.market.get_product(id)
    who.check_tenant(product.tenant_id, NotFound(f"no product {id!r}", id=id))
    who.require_admin()
    return _product_doc(request, rt.market.patch_product(product, body, who.actor).document)


# -- TMF641 service ordering, TMF638 service inventory (created by orchestration) ---------


def _service_order_doc(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    base = _base(request)
    return {**document, "href": f"{base}{SERVICE_ORDERING}/serviceOrder/{document['id']}",
            "orderRelationship": [
                {**rel, "href": f"{base}{ORDERING}/productOrder/{rel['id']}"}
                for rel in document.get("orderRelationship", [])]}


@router.get(f"{SERVICE_ORDERING}/serviceOrder", responses=_ERRORS,
            operation_id="listServiceOrder", summary="List or find ServiceOrder objects")
def list_service_orders(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                        fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                        ) -> JSONResponse:
    orders = rt.market.list_service_orders(who.tenant_id, who.is_operator)
    return _page(request, [_service_order_doc(request, o.document) for o in orders], fields,
                 offset, limit)


@router.get(f"{SERVICE_ORDERING}/serviceOrder/{{id}}", responses=_ERRORS,
            operation_id="retrieveServiceOrder", summary="Retrieves a ServiceOrder by ID")
def retrieve_service_order(id: str, request: Request, rt: CurrentRuntime,
                           who: CurrentPrincipal, fields: Fields = None) -> dict[str, Any]:
    order = rt.market.get_service_order(id)
    who.check_tenant(order.tenant_id, NotFound(f"no serviceOrder {id!r}", id=id))
    return select_fields(_service_order_doc(request, order.document), fields)


def _service_doc(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    base = _base(request)
    spec = document["serviceSpecification"]
    return {**document, "href": f"{base}{SERVICE_INVENTORY}/service/{document['id']}",
            "serviceSpecification": {
                **spec, "href": f"{base}{SERVICE_CATALOG}/serviceSpecification/{spec['id']}"},
            "serviceOrderItem": [
                {**item, "serviceOrderHref":
                 f"{base}{SERVICE_ORDERING}/serviceOrder/{item['serviceOrderId']}"}
                for item in document.get("serviceOrderItem", [])]}


@router.get(f"{SERVICE_INVENTORY}/service", responses=_ERRORS, operation_id="listService",
            summary="List or find Service objects")
def list_services(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                  fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                  ) -> JSONResponse:
    services = rt.market.list_services(who.tenant_id, who.is_operator)
    return _page(request, [_service_doc(request, s.document) for s in services], fields,
                 offset, limit)


@router.get(f"{SERVICE_INVENTORY}/service/{{id}}", responses=_ERRORS,
            operation_id="retrieveService", summary="Retrieves a Service by ID")
def retrieve_service(id: str, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                     fields: Fields = None) -> dict[str, Any]:
    service = rt.market.get_service(id)
    who.check_tenant(service.tenant_id, NotFound(f"no service {id!r}", id=id))
    return select_fields(_service_doc(request, service.document), fields)


# -- hub: listener registration per API (TMF630 part 2) ----------------------------------


def _hub_routes(api: str) -> None:
    base = BASE_PATHS[api]
    name = api[0].upper() + api[1:]

    @router.post(f"{base}/hub", status_code=201, responses=_ERRORS,
                 operation_id=f"registerListener{name}", summary="Register a listener")
    def register(body: JsonBody, request: Request, rt: CurrentRuntime,
                 who: CurrentPrincipal) -> JSONResponse:
        who.require_admin()
        doc = rt.market_events.register(api, who.tenant_id, body)
        href = f"{_base(request)}{base}/hub/{doc['id']}"
        return JSONResponse(doc, status_code=201, headers={"Location": href})

    @router.delete(f"{base}/hub/{{id}}", status_code=204, responses=_ERRORS,
                   operation_id=f"unregisterListener{name}", summary="Unregister a listener")
    def unregister(id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
        tenant_id, _ = rt.market_events.get(api, id)
        who.check_tenant(tenant_id, NotFound(f"no hub {id!r}", id=id))
        who.require_admin()
        rt.market_events.unregister(api, id)
        return Response(status_code=204)


for _api in BASE_PATHS:
    _hub_routes(_api)
