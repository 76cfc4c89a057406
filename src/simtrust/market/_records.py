"""The market's resources as stored, and the rules they are checked by (TMF620/622/637/641/638).

The catalog resource kinds (TMF620 v4.1.0, TMF633) and their API names, the
TMF622 order state machine (IG1228 order life cycle) with the item states
it implies, the checks a catalog document passes, and the records
:class:`~simtrust.market._service.MarketService` returns: catalog items,
orders, products (TMF637), service orders (TMF641), services (TMF638) and
cancellation tasks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simtrust.errors import InvalidInput

__all__ = [
    "CATALOG_KINDS",
    "ORDER_TRANSITIONS",
    "REMOVABLE",
    "SERVICE_CATALOG_KINDS",
    "Cancellation",
    "CatalogItem",
    "Order",
    "Product",
    "ServiceOrder",
    "ServiceRecord",
    "parse_datetime",
]

#: TMF620 resource path segment → its ``@type``.
CATALOG_KINDS = {
    "catalog": "Catalog",
    "category": "Category",
    "productOffering": "ProductOffering",
    "productSpecification": "ProductSpecification",
    "productOfferingPrice": "ProductOfferingPrice",
}
#: TMF633 resource path segment → its ``@type`` (stored with the product catalog).
SERVICE_CATALOG_KINDS = {"serviceCatalog": "ServiceCatalog", "serviceCategory": "ServiceCategory",
                         "serviceCandidate": "ServiceCandidate",
                         "serviceSpecification": "ServiceSpecification"}
ALL_KINDS = {**CATALOG_KINDS, **SERVICE_CATALOG_KINDS}
#: Attributes a merge patch may not touch (ProductOffering_Update and friends omit them).
CATALOG_FIXED = frozenset({"id", "href", "lastUpdate", "@type", "@baseType"})
#: Life-cycle statuses (TMF620 user guide) under which an offering cannot be ordered.
NOT_ORDERABLE = frozenset({"retired", "obsolete", "rejected"})
#: TMF622 ProductOrderStateType transitions this service permits.
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    "acknowledged": frozenset({"inProgress", "rejected"}),
    "inProgress": frozenset({"pending", "held", "completed", "failed", "partial"}),
    "pending": frozenset({"inProgress", "failed"}),
    "held": frozenset({"inProgress", "failed"}),
    "rejected": frozenset(),
    "completed": frozenset(),
    "failed": frozenset(),
    "partial": frozenset(),
}
ORDER_STATES = frozenset(ORDER_TRANSITIONS) | {
    "cancelled", "assessingCancellation", "pendingCancellation"}
#: The item state an order state carries its items to (``partial`` keeps them).
ITEM_STATE = {"inProgress": "inProgress", "completed": "completed", "failed": "failed",
               "rejected": "rejected", "pending": "pending", "held": "held"}
FINAL = frozenset({"completed", "failed", "partial", "rejected"})
CANCELLABLE = frozenset({"acknowledged", "inProgress", "pending", "held"})
#: Orders v5 ``DELETE productOrder`` removes from the list (the others are cancelled).
REMOVABLE = FINAL | {"cancelled"}
#: ProductOrder_Update members a merge patch may change.
ORDER_PATCHABLE = frozenset({
    "category", "description", "expectedCompletionDate", "externalId", "note",
    "notificationContact", "priority", "requestedCompletionDate", "requestedStartDate", "state"})
ACTIONS = frozenset({"add", "modify", "delete", "noChange"})
MAX_ITEMS = 1000
_STRINGS = ("name", "description", "version", "lifecycleStatus", "statusReason", "@type",
            "@baseType", "@schemaLocation", "priceType", "externalId", "priority",
            "notificationContact", "requestedCompletionDate", "requestedStartDate",
            "expectedCompletionDate", "state")
_BOOLEANS = ("isBundle", "isSellable")


def api_of(kind: str) -> str:
    return "serviceCatalog" if kind in SERVICE_CATALOG_KINDS else "productCatalog"


def change_event(kind: str) -> str:
    """TMF620 names a change ``…AttributeValueChangeEvent``, TMF633 ``…ChangeEvent``."""
    suffix = "ChangeEvent" if kind in SERVICE_CATALOG_KINDS else "AttributeValueChangeEvent"
    return ALL_KINDS[kind] + suffix


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_datetime(value: Any, name: str) -> datetime:
    """An RFC 3339 date-time with an offset (``Z`` or ``±hh:mm``); InvalidInput otherwise."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a date-time string", attribute=name)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} is not an RFC 3339 date-time", attribute=name) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} needs a time-zone offset", attribute=name)
    return moment


def check_document(doc: dict[str, Any]) -> None:
    """Type checks on the members this service reads or that the TMF models constrain."""
    for name in _STRINGS:
        if name in doc and not isinstance(doc[name], str):
            raise InvalidInput(f"{name} must be a string", attribute=name)
    for name in _BOOLEANS:
        if name in doc and not isinstance(doc[name], bool):
            raise InvalidInput(f"{name} must be a boolean", attribute=name)
    valid_for = doc.get("validFor")
    if valid_for is not None:
        if not isinstance(valid_for, dict):
            raise InvalidInput("validFor must be a TimePeriod object", attribute="validFor")
        start = end = None
        if "startDateTime" in valid_for:
            start = parse_datetime(valid_for["startDateTime"], "validFor.startDateTime")
        if "endDateTime" in valid_for:
            end = parse_datetime(valid_for["endDateTime"], "validFor.endDateTime")
        if start is not None and end is not None and end < start:
            raise InvalidInput("validFor ends before it starts", attribute="validFor")
    for name in ("requestedCompletionDate", "requestedStartDate", "expectedCompletionDate"):
        if name in doc:
            parse_datetime(doc[name], name)
    for name in ("note", "relatedParty", "productOfferingPrice", "channel"):
        if name in doc and not isinstance(doc[name], list):
            raise InvalidInput(f"{name} must be an array", attribute=name)
    spec = doc.get("productSpecification")
    if spec is not None and not (isinstance(spec, dict) and isinstance(spec.get("id"), str)):
        raise InvalidInput("productSpecification must be a reference with an id",
                           attribute="productSpecification")


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A TMF620 resource and the tenant owning it (None: the public catalog)."""

    kind: str
    tenant_id: str | None
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Order:
    """A TMF622 product order and the tenant that placed it (None: the operator)."""

    tenant_id: str | None
    document: dict[str, Any]

    @property
    def state(self) -> str:
        return str(self.document["state"])


@dataclass(frozen=True, slots=True)
class Product:
    """A TMF637 product an order created, and the tenant owning it."""

    tenant_id: str | None
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServiceOrder:
    """A TMF641 service order fulfilling a product order, and the buyer tenant."""

    tenant_id: str | None
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A TMF638 service an order provisioned, and the tenant owning it."""

    tenant_id: str | None
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A TMF622 cancelProductOrder task and the tenant owning its order."""

    tenant_id: str | None
    document: dict[str, Any]


def product_from(order: dict[str, Any], item: dict[str, Any], at: str) -> dict[str, Any]:
    offering = item["productOffering"]
    return {
        "id": str(uuid.uuid4()), "name": offering["name"], "status": "active",
        "isBundle": False, "isCustomerVisible": True, "orderDate": order["orderDate"],
        "startDate": at, "@type": "Product",
        "productOffering": {"id": offering["id"], "name": offering["name"],
                            "@referredType": "ProductOffering"},
        "productCharacteristic": [{"name": "quantity", "valueType": "integer",
                                   "value": item["quantity"]}],
        "productOrderItem": [{"orderItemId": item["id"], "productOrderId": order["id"],
                              "orderItemAction": item["action"],
                              "@referredType": "ProductOrderItem"}],
    }
