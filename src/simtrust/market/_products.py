"""TMF637 ``PATCH product``: a buyer suspends, resumes and describes its products.

TMF637 Product Inventory Management v4.0.0, ``Product_Update`` (JSON Merge
Patch) and ``ProductStatusType``. The members a client may change are
``name``, ``description``, ``isCustomerVisible`` and ``status``, the latter
only between ``active`` and ``suspended``: a suspension suspends what the
realising services provisioned where that has a meaning (every SIM of a
``SimBatch`` becomes ``suspended``, its TMF638 service ``inactive``), a
resumption reverses it; the other services (APN, policy, CA, ledger
contracts) stay as they are. Everything happens in one durable transaction
with its audit record, and the changes are announced on the inventories'
hubs (``ProductStateChangeEvent``, ``ProductAttributeValueChangeEvent``,
``ServiceStateChangeEvent``). Termination is a ``delete`` order item, not a
PATCH (409); a product an open order is changing cannot be patched (409).
Decision: ``docs/decisions/market-modify-terminate.md``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, InvalidInput, InvalidTransition
from simtrust.market._lifecycle import Emit, busy_order, service_values
from simtrust.market._provision import Provisioners
from simtrust.market._query import merge_patch
from simtrust.market._records import Product
from simtrust.store import Database

__all__ = ["PRODUCT_PATCHABLE", "patch_product"]

#: Product_Update members a client may change.
PRODUCT_PATCHABLE = frozenset({"name", "description", "isCustomerVisible", "status"})
_STATUS = {("active", "suspended"), ("suspended", "active")}


def patch_product(db: Database, audit: AuditLog, emit: Emit, provisioners: Provisioners,
                  product: Product, patch: dict[str, Any], actor: str) -> Product:
    """Merge-patch ``product``; see the module docstring."""
    other = sorted(set(patch) - PRODUCT_PATCHABLE)
    if other:
        raise InvalidInput(f"{other[0]} cannot be patched", attribute=other[0])
    for name in ("name", "description"):
        if name in patch and not isinstance(patch[name], str):
            raise InvalidInput(f"{name} must be a string", attribute=name)
    if "isCustomerVisible" in patch and not isinstance(patch["isCustomerVisible"], bool):
        raise InvalidInput("isCustomerVisible must be a boolean", attribute="isCustomerVisible")
    current = str(product.document.get("status"))
    target = patch.get("status", current)
    if not isinstance(target, str):
        raise InvalidInput("status must be a ProductStatusType", attribute="status")
    pid = product.document["id"]
    if target != current and (current, target) not in _STATUS:
        raise InvalidTransition(f"a product {current} cannot become {target} by PATCH"
                                " (terminate it with a delete order item)",
                                state=current, target=target)
    busy = busy_order(db, product.document)
    if busy is not None:
        raise Conflict(f"product {pid!r} is being changed by productOrder {busy!r}", id=pid)
    doc = merge_patch(copy.deepcopy(product.document), patch)
    with db.transaction(durable=True):
        row = db.query_one("SELECT body FROM market_products WHERE id = ?", (pid,))
        if row is None or json.loads(row[0]) != product.document:
            raise Conflict(f"product {pid!r} changed concurrently; retry", id=pid)
        touched = []
        if target != current:
            touched = _suspend(db, emit, provisioners, product, target == "active", actor)
        db.execute("UPDATE market_products SET body = ? WHERE id = ?", (json.dumps(doc), pid))
        audit.append(actor=actor, action="market.product.update", subject=f"product:{pid}",
                     outcome="success", tenant_id=product.tenant_id,
                     details={"from": current, "to": target, "members": sorted(patch),
                              "services": touched})
        emit("productInventory", "ProductStateChangeEvent" if target != current
             else "ProductAttributeValueChangeEvent", "product", doc, product.tenant_id)
    return Product(product.tenant_id, doc)


def _suspend(db: Database, emit: Emit, provisioners: Provisioners, product: Product,
             resume: bool, actor: str) -> list[str]:
    touched = []
    wanted, becomes = ("inactive", "active") if resume else ("active", "inactive")
    for ref in product.document.get("realizingService", []):
        row = db.query_one("SELECT state, body FROM market_services WHERE id = ?",
                           (ref.get("id"),))
        if row is None or row[0] != wanted:
            continue
        service = json.loads(row[1])
        provisioner = provisioners.get(service["category"])
        if provisioner is None or not provisioner.suspendable:
            continue
        provisioner.suspend(str(product.tenant_id), service_values(service), actor=actor,
                            reason=f"product {product.document['id']}", resume=resume)
        service.update(state=becomes, isServiceEnabled=resume)
        db.execute("UPDATE market_services SET state = ?, body = ? WHERE id = ?",
                   (becomes, json.dumps(service), service["id"]))
        emit("serviceInventory", "ServiceStateChangeEvent", "service", service,
             product.tenant_id)
        touched.append(service["id"])
    return touched
