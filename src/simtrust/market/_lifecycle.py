"""TMF622 ``modify`` / ``delete`` order items over TMF637 products and TMF638 services.

TMF622 Product Ordering v4.0.0 (and v5.0.0) ``ProductOrderItem.action``
(``OrderItemActionType``: add, modify, delete, noChange) with ``product``
(``ProductRefOrValue``) naming the installed product the item changes;
TMF637 v4.0.0 ``ProductStatusType`` and TMF638 v4.0.0 ``ServiceStateType``
for what the inventories show afterwards.

When the order is created (:func:`change_item`, nothing written on a refusal):
the product must be the buyer's (another tenant's answers 404 like a missing
one), ``active``, and not already named by a ``modify``/``delete`` item of an
open order (409); a ``delete`` item becomes one terminate step per active
realising service, a ``modify`` item one step per service whose specification
declares a changed characteristic that its function may change
(:attr:`~simtrust.market._provision.Provisioner.modifiable`; 422
``not-modifiable`` / ``not-configurable`` / ``unknown-characteristic``
otherwise). In the creating transaction (:func:`lock_products`) the product
lists the order item (``productOrderItem`` with ``orderItemAction``) and a
product to delete becomes ``pendingTerminate``.

When the order ends (:func:`settle_products`, in the transaction that ends it):
a completed ``delete`` item makes its product ``terminated`` (with
``terminationDate``), a completed ``modify`` item merges the new
characteristics into it; otherwise a ``pendingTerminate`` product is
``active`` again. Services change with :func:`update_service` (``active`` with
the new characteristics, or ``terminated`` with an ``endDate``). Each change
is announced to the hub listeners (``ProductStateChangeEvent``,
``ProductAttributeValueChangeEvent``, ``ServiceStateChangeEvent``,
``ServiceAttributeValueChangeEvent``). Decision:
``docs/decisions/market-modify-terminate.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from simtrust.errors import Conflict, InvalidInput, NotFound, Rejected
from simtrust.market._provision import FUNCTION_ORDER, Provisioners
from simtrust.store import Database

__all__ = ["CHANGES", "OPEN_ORDER", "Emit", "busy_order", "change_item", "lock_products",
           "service_values", "settle_products", "update_service"]

#: Item actions that change an installed product.
CHANGES = frozenset({"modify", "delete"})
#: Order states in which an order still holds the products its items change.
OPEN_ORDER = frozenset({"acknowledged", "inProgress", "pending", "held",
                        "assessingCancellation", "pendingCancellation"})
Emit = Callable[[str, str, str, dict[str, Any], "str | None"], None]


def service_values(service: Mapping[str, Any]) -> dict[str, Any]:
    """A TMF638 service's characteristics as the provisioning result they came from."""
    return {c["name"]: c.get("value") for c in service.get("serviceCharacteristic", [])
            if isinstance(c, dict) and isinstance(c.get("name"), str)}


def _supplied(item: Mapping[str, Any]) -> dict[str, Any]:
    raw = item["product"].get("productCharacteristic", [])
    if not isinstance(raw, list):
        raise InvalidInput("productCharacteristic must be an array",
                           attribute="product.productCharacteristic")
    values: dict[str, Any] = {}
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or "value" not in entry:
            raise InvalidInput("each productCharacteristic has a name and a value",
                               attribute="product.productCharacteristic")
        values[entry["name"]] = entry["value"]
    return values


def busy_order(db: Database, product: Mapping[str, Any]) -> str | None:
    """The open order already changing ``product``, if any."""
    for entry in product.get("productOrderItem", []):
        if entry.get("orderItemAction") not in CHANGES:
            continue
        row = db.query_one("SELECT state FROM market_orders WHERE id = ?",
                           (entry.get("productOrderId"),))
        if row is not None and row[0] in OPEN_ORDER:
            return str(entry["productOrderId"])
    return None


def _product(db: Database, tenant_id: str | None, ref: Any) -> dict[str, Any]:
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise InvalidInput("a modify or delete item names its product (product.id)",
                           attribute="productOrderItem.product.id")
    row = db.query_one("SELECT tenant_id, body FROM market_products WHERE id = ?",
                       (ref["id"],))
    if row is None or row[0] != tenant_id:
        raise NotFound(f"no product {ref['id']!r}", id=ref["id"])
    product: dict[str, Any] = json.loads(row[1])
    return product


def _services(db: Database, product: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for ref in product.get("realizingService", []):
        row = db.query_one("SELECT state, body FROM market_services WHERE id = ?",
                           (ref.get("id"),))
        if row is not None and row[0] == "active":
            out.append(json.loads(row[1]))
    return out


def _declared(db: Database, service: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The characteristic specifications of the service's specification (None: gone)."""
    row = db.query_one("SELECT body FROM market_catalog WHERE kind = 'serviceSpecification'"
                       " AND id = ?", (service["serviceSpecification"]["id"],))
    if row is None:
        return None
    return {c["name"]: c for c in json.loads(row[0]).get("specCharacteristic", []) or []
            if isinstance(c, dict) and isinstance(c.get("name"), str)}


def _step(item_id: str, action: str, service: Mapping[str, Any], values: dict[str, Any],
          ) -> dict[str, Any]:
    spec = {k: v for k, v in service["serviceSpecification"].items()
            if k in ("id", "name", "version")}
    return {"item": item_id, "action": action, "function": service["category"],
            "spec": spec, "service": service["id"], "before": service_values(service),
            "values": values}


def change_item(db: Database, provisioners: Provisioners, tenant_id: str | None,
                item: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check a ``modify``/``delete`` item; the item to store and its steps (see module)."""
    action = item["action"]
    product = _product(db, tenant_id, item.get("product"))
    pid = product["id"]
    if product.get("status") != "active":
        raise Rejected("product-not-active", f"product {pid!r} is {product.get('status')}",
                       id=pid)
    busy = busy_order(db, product)
    if busy is not None:
        raise Conflict(f"product {pid!r} is being changed by productOrder {busy!r}", id=pid)
    offering = product["productOffering"]
    named = item.get("productOffering")
    if named is not None and (not isinstance(named, dict) or named.get("id") != offering["id"]):
        raise Rejected("offering-mismatch",
                       f"product {pid!r} is an instance of productOffering {offering['id']!r}",
                       attribute="productOrderItem.productOffering")
    quantity = next((c["value"] for c in product.get("productCharacteristic", [])
                     if c.get("name") == "quantity"), 1)
    if "quantity" in item and item["quantity"] != quantity:
        raise Rejected("not-modifiable", "an installed product's quantity is not modified;"
                       " order another product or delete this one", attribute="quantity")
    services = _services(db, product)
    steps: list[dict[str, Any]] = []
    if action == "delete":
        for service in services:
            provisioner = provisioners.get(service["category"])
            if provisioner is None or not provisioner.terminable:
                raise Rejected("not-terminable", f"service {service['name']!r} of product"
                               f" {pid!r} cannot be terminated by an order", id=service["id"])
            steps.append(_step(item["id"], "delete", service, {}))
        steps.sort(key=lambda s: -FUNCTION_ORDER.index(s["function"]))
    else:
        supplied = _supplied(item) if isinstance(item.get("product"), dict) else {}
        if not supplied:
            raise Rejected("nothing-to-modify", "a modify item sets product.productCharacteristic",
                           attribute="product.productCharacteristic")
        known: set[str] = set()
        applied: set[str] = set()
        for service in services:
            provisioner = provisioners.get(service["category"])
            if provisioner is None:
                continue
            declared = _declared(db, service)
            names = set(provisioner.modifiable) if declared is None else set(declared)
            known |= names
            # A characteristic goes to each service whose function may change it
            # (``apnName`` moves the SIMs; the APN itself is not renamed).
            for name in set(supplied) & set(declared or ()):
                if declared is not None and declared[name].get("configurable") is False:
                    raise Rejected("not-configurable",
                                   f"characteristic {name} is set by the seller", attribute=name)
            changes = {n: v for n, v in supplied.items()
                       if n in names and n in provisioner.modifiable}
            if changes:
                provisioner.check_modify(str(tenant_id), service_values(service), changes)
                steps.append(_step(item["id"], "modify", service, changes))
                applied |= set(changes)
        unknown = sorted(set(supplied) - known)
        if services and unknown:
            raise Rejected("unknown-characteristic",
                           f"no service of this product has a characteristic {unknown[0]}",
                           attribute=unknown[0])
        fixed = sorted(set(supplied) - applied) if services else []
        if fixed:
            raise Rejected("not-modifiable", f"characteristic {fixed[0]} of an installed"
                           " product cannot be modified", attribute=fixed[0])
        steps.sort(key=lambda s: FUNCTION_ORDER.index(s["function"]))
    ref = {**(item.get("product") or {}), "id": pid, "name": product.get("name", pid),
           "@referredType": "Product"}
    stored = {**item, "quantity": quantity, "product": ref, "state": "acknowledged",
              "productOffering": {"id": offering["id"], "name": offering["name"],
                                  "@referredType": "ProductOffering"},
              "@type": item.get("@type", "ProductOrderItem")}
    return stored, steps


def _write(db: Database, product: dict[str, Any], expected: str) -> None:
    changed = db.execute("UPDATE market_products SET body = ? WHERE id = ? AND body = ?",
                         (json.dumps(product), product["id"], expected))
    if changed != 1:
        raise Conflict(f"product {product['id']!r} changed concurrently; retry",
                       id=product["id"])


def lock_products(db: Database, emit: Emit, order: Mapping[str, Any],
                  tenant_id: str | None) -> None:
    """Inside the creating transaction: each changed product names the order item."""
    for item in order["productOrderItem"]:
        if item.get("action") not in CHANGES:
            continue
        row = db.query_one("SELECT body FROM market_products WHERE id = ?",
                           (item["product"]["id"],))
        if row is None:
            raise NotFound(f"no product {item['product']['id']!r}")
        product = json.loads(row[0])
        busy = busy_order(db, product)
        if busy is not None:
            raise Conflict(f"product {product['id']!r} is being changed by productOrder"
                           f" {busy!r}", id=product["id"])
        product["productOrderItem"] = [*product.get("productOrderItem", []), {
            "orderItemId": item["id"], "productOrderId": order["id"],
            "orderItemAction": item["action"], "@referredType": "ProductOrderItem"}]
        if item["action"] == "delete":
            product["status"] = "pendingTerminate"
        _write(db, product, row[0])
        emit("productInventory", "ProductStateChangeEvent" if item["action"] == "delete"
             else "ProductAttributeValueChangeEvent", "product", product, tenant_id)


def settle_products(db: Database, emit: Emit, order: Mapping[str, Any],
                    tenant_id: str | None, at: str) -> None:
    """Inside the transaction ending ``order``: its changed products, per item state."""
    for item in order["productOrderItem"]:
        if item.get("action") not in CHANGES:
            continue
        row = db.query_one("SELECT body FROM market_products WHERE id = ?",
                           (item["product"]["id"],))
        if row is None:
            continue
        product = json.loads(row[0])
        done = item.get("state") == "completed"
        if item["action"] == "delete":
            if done:
                product.update(status="terminated", terminationDate=at)
            elif product.get("status") == "pendingTerminate":
                product["status"] = "active"
            else:
                continue
            _write(db, product, row[0])
            emit("productInventory", "ProductStateChangeEvent", "product", product, tenant_id)
        elif done:
            merged = {c["name"]: c for c in product.get("productCharacteristic", [])}
            for char in item["product"].get("productCharacteristic", []):
                merged[char["name"]] = {"name": char["name"], "value": char["value"]}
            product["productCharacteristic"] = list(merged.values())
            _write(db, product, row[0])
            emit("productInventory", "ProductAttributeValueChangeEvent", "product", product,
                 tenant_id)


def update_service(db: Database, emit: Emit, service_id: str, tenant_id: str | None,
                   result: Mapping[str, Any] | None, at: str,
                   order_item: dict[str, Any] | None) -> None:
    """A TMF638 service after a modify (``result``) or a termination (``None``).

    ``order_item`` is the TMF641 item that changed it (None: a TMF638 write)."""
    row = db.query_one("SELECT body FROM market_services WHERE id = ?", (service_id,))
    if row is None:
        return
    service = json.loads(row[0])
    if order_item is not None:
        service["serviceOrderItem"] = [*service.get("serviceOrderItem", []), order_item]
    if result is None:
        service.update(state="terminated", isServiceEnabled=False, endDate=at)
        event = "ServiceStateChangeEvent"
    else:
        service["serviceCharacteristic"] = [{"name": k, "value": v} for k, v in result.items()]
        event = "ServiceAttributeValueChangeEvent"
    db.execute("UPDATE market_services SET state = ?, body = ? WHERE id = ?",
               (service["state"], json.dumps(service), service_id))
    emit("serviceInventory", event, "service", service, tenant_id)
