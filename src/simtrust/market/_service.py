"""TMF620 product catalog resources and TMF622 product orders over the store.

Catalog (TMF620 Product Catalog Management v4.1.0, resources
``productOffering``, ``productSpecification``, ``productOfferingPrice``):
a resource owned by no tenant belongs to the operator's public catalog and
every caller may read it; one created with a tenant-admin key is private to
that tenant. Ordering (TMF622 Product Ordering Management v4.0.0,
``productOrder``): an order belongs to the tenant that placed it; creation
checks every item's ``productOffering`` exists, is in the buyer's reach,
is sellable, within ``validFor`` and not retired, and writes nothing
otherwise. The order state machine follows the TMF622 user guide (IG1228
order life cycle): ``acknowledged`` → ``inProgress`` (or ``rejected``) →
``completed`` / ``failed`` / ``partial``, with ``pending`` and ``held`` as
pauses of ``inProgress``; anything else is refused. A ``cancelProductOrder``
task (TMF622 section "cancelProductOrder") by the buyer or the seller starts
the asynchronous cancellation of an order not yet final (:mod:`._cancel`:
``assessingCancellation`` → ``pendingCancellation`` → ``cancelled``, the task
``acknowledged`` → ``inProgress`` → ``done`` / ``terminatedWithError``); a
final order cannot be cancelled (409, nothing written). Inventory (TMF637
Product Inventory Management v4.0.0, ``product``): an order reaching
``completed`` creates, in the same transaction, one ``active`` product per
item, owned by the order's tenant. The records and the rules they are checked
by are in :mod:`._records`.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, InvalidInput, InvalidTransition, NotFound, Rejected
from simtrust.market._cancel import Cancellations
from simtrust.market._client_services import CLIENT_ORDER, ClientServices
from simtrust.market._events import MarketEvents
from simtrust.market._jobs import CatalogJobs
from simtrust.market._lifecycle import CHANGES, change_item, lock_products, settle_products
from simtrust.market._orchestrate import resolve_plan
from simtrust.market._products import patch_product
from simtrust.market._provision import Provisioners
from simtrust.market._query import merge_patch
from simtrust.market._records import (
    ACTIONS,
    ALL_KINDS,
    CATALOG_FIXED,
    CATALOG_KINDS,
    FINAL,
    ITEM_STATE,
    MAX_ITEMS,
    NOT_ORDERABLE,
    ORDER_PATCHABLE,
    ORDER_STATES,
    ORDER_TRANSITIONS,
    REMOVABLE,
    SERVICE_CATALOG_KINDS,
    Cancellation,
    CatalogItem,
    Order,
    Product,
    ServiceOrder,
    ServiceRecord,
    api_of,
    change_event,
    check_document,
    iso,
    parse_datetime,
    product_from,
)
from simtrust.market._references import check_references
from simtrust.store import Database

__all__ = [
    "CATALOG_KINDS",
    "ORDER_TRANSITIONS",
    "SERVICE_CATALOG_KINDS",
    "Cancellation",
    "CatalogItem",
    "MarketService",
    "Order",
    "Product",
    "ServiceOrder",
    "ServiceRecord",
    "parse_datetime",
]

class MarketService:
    """Catalog and ordering; every change is audited in the same transaction."""

    def __init__(self, db: Database, audit: AuditLog,
                 clock: Callable[[], datetime], *, provisioners: Provisioners | None = None,
                 events: MarketEvents | None = None,
                 anchor: Callable[[dict[str, Any], str | None], None] | None = None) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._provisioners = provisioners or {}
        self._events = events
        #: Called with each order state after it commits (federation anchors partners').
        self._anchor = anchor or (lambda order, tenant: None)
        #: TMF641 orders and TMF638 writes placed by clients (:mod:`._client_services`).
        self.client_services = ClientServices(db, audit, clock, self._provisioners, self._emit)
        self.cancellations = Cancellations(db, audit, clock, self._emit, self._anchor)
        #: TMF620 / TMF633 import and export jobs (:mod:`._jobs`); URLs guarded as callbacks.
        self.jobs = CatalogJobs(db, audit, clock, emit=self._emit, owner_of=self._owner_of,
                                networks=lambda: events.allowed_networks if events else ())

    def _emit(self, api: str, event: str, resource: str, doc: dict[str, Any],
              tenant_id: str | None) -> None:
        if self._events is not None:
            self._events.emit(api, event, resource, doc, tenant_id)

    def __repr__(self) -> str:
        return f"MarketService({self._db!r})"

    def close(self) -> None:
        self.jobs.close()

    # -- catalog ------------------------------------------------------------------------

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in ALL_KINDS:
            raise NotFound(f"no catalog resource {kind!r}")
        return kind

    def create_item(self, kind: str, tenant_id: str | None, body: dict[str, Any],
                    actor: str) -> CatalogItem:
        self._kind(kind)
        fixed = sorted(set(body) & {"id", "href", "lastUpdate"})
        if fixed:
            raise InvalidInput(f"{fixed[0]} is set by the server", attribute=fixed[0])
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("name is required", attribute="name")
        check_document(body)
        if kind == "serviceCandidate":
            self._candidate_spec(body.get("serviceSpecification"), tenant_id)
        check_references(kind, body, tenant_id, self._owner_of)
        now = self._clock()
        doc = {**body, "id": str(uuid.uuid4()), "@type": body.get("@type", ALL_KINDS[kind]),
               "lastUpdate": iso(now)}
        doc.setdefault("lifecycleStatus", "In design")
        with self._db.transaction(durable=True):
            self._db.execute(
                "INSERT INTO market_catalog (kind, id, tenant_id, body, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (kind, doc["id"], tenant_id, json.dumps(doc), now.isoformat(), now.isoformat()))
            self._audit.append(actor=actor, action=f"market.{kind}.create",
                               subject=f"{kind}:{doc['id']}", outcome="success",
                               tenant_id=tenant_id, details={"name": name})
            self._emit(api_of(kind), f"{ALL_KINDS[kind]}CreateEvent", kind, doc, tenant_id)
        return CatalogItem(kind, tenant_id, doc)

    def _candidate_spec(self, ref: Any, tenant_id: str | None) -> None:
        """TMF633 ServiceCandidate_Create: a serviceSpecification the owner can see."""
        if not (isinstance(ref, dict) and isinstance(ref.get("id"), str)):
            raise InvalidInput("serviceSpecification must be a reference with an id",
                               attribute="serviceSpecification")
        spec = self.get_item("serviceSpecification", ref["id"])
        if spec.tenant_id is not None and spec.tenant_id != tenant_id:
            raise NotFound(f"no serviceSpecification {ref['id']!r}", id=ref["id"])

    def _owner_of(self, kind: str, item_id: str) -> str | None:
        return self.get_item(kind, item_id).tenant_id

    def get_item(self, kind: str, item_id: str) -> CatalogItem:
        row = self._db.query_one(
            "SELECT tenant_id, body FROM market_catalog WHERE kind = ? AND id = ?",
            (self._kind(kind), item_id))
        if row is None:
            raise NotFound(f"no {kind} {item_id!r}", id=item_id)
        return CatalogItem(kind, row[0], json.loads(row[1]))

    def list_items(self, kind: str, tenant_id: str | None, everything: bool) -> list[CatalogItem]:
        """Items in creation order: all of them, or the public ones and ``tenant_id``'s."""
        if everything:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_catalog WHERE kind = ?"
                " ORDER BY created_at, id", (self._kind(kind),))
        else:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_catalog WHERE kind = ?"
                " AND (tenant_id IS NULL OR tenant_id = ?) ORDER BY created_at, id",
                (self._kind(kind), tenant_id))
        return [CatalogItem(kind, r[0], json.loads(r[1])) for r in rows]

    def patch_item(self, item: CatalogItem, patch: dict[str, Any], actor: str) -> CatalogItem:
        fixed = sorted(set(patch) & CATALOG_FIXED)
        if fixed:
            raise InvalidInput(f"{fixed[0]} cannot be patched", attribute=fixed[0])
        doc = merge_patch(copy.deepcopy(item.document), patch)
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("name is required", attribute="name")
        check_document(doc)
        check_references(item.kind, doc, item.tenant_id, self._owner_of)
        now = self._clock()
        doc["lastUpdate"] = iso(now)
        with self._db.transaction(durable=True):
            self._db.execute(
                "UPDATE market_catalog SET body = ?, updated_at = ? WHERE kind = ? AND id = ?",
                (json.dumps(doc), now.isoformat(), item.kind, doc["id"]))
            self._audit.append(actor=actor, action=f"market.{item.kind}.update",
                               subject=f"{item.kind}:{doc['id']}", outcome="success",
                               tenant_id=item.tenant_id, details={"members": sorted(patch)})
            self._emit(api_of(item.kind), change_event(item.kind),
                       item.kind, doc, item.tenant_id)
        return CatalogItem(item.kind, item.tenant_id, doc)

    def delete_item(self, item: CatalogItem, actor: str) -> None:
        item_id = item.document["id"]
        with self._db.transaction(durable=True):
            self._db.execute("DELETE FROM market_catalog WHERE kind = ? AND id = ?",
                             (item.kind, item_id))
            self._audit.append(actor=actor, action=f"market.{item.kind}.delete",
                               subject=f"{item.kind}:{item_id}", outcome="success",
                               tenant_id=item.tenant_id)
            self._emit(api_of(item.kind), f"{ALL_KINDS[item.kind]}DeleteEvent", item.kind,
                       item.document, item.tenant_id)

    # -- ordering -----------------------------------------------------------------------

    def _orderable(self, ref: Any, tenant_id: str | None, at: datetime,
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The offering ``ref`` names, checked for reach and sale; the reference to store."""
        if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
            raise InvalidInput("productOffering must be a reference with an id",
                               attribute="productOffering")
        missing = NotFound(f"no productOffering {ref['id']!r}", id=ref["id"])
        row = self._db.query_one(
            "SELECT tenant_id, body FROM market_catalog WHERE kind = 'productOffering'"
            " AND id = ?", (ref["id"],))
        if row is None or (tenant_id is not None and row[0] not in (None, tenant_id)):
            raise missing
        offering = json.loads(row[1])
        status = str(offering.get("lifecycleStatus", ""))
        if status.lower() in NOT_ORDERABLE:
            raise Rejected("not-orderable", f"productOffering {ref['id']!r} is {status}",
                           id=ref["id"])
        name = f"productOffering {ref['id']!r}"
        if offering.get("isSellable") is False:
            raise Rejected("not-sellable", f"{name} is not sellable", id=ref["id"])
        period = offering.get("validFor") or {}
        if "startDateTime" in period and parse_datetime(period["startDateTime"], "validFor") > at:
            raise Rejected("not-yet-valid", f"{name} is not on sale yet", id=ref["id"])
        if "endDateTime" in period and parse_datetime(period["endDateTime"], "validFor") < at:
            raise Rejected("expired", f"{name} is no longer on sale", id=ref["id"])
        return {"id": offering["id"], "name": offering["name"],
                "@referredType": "ProductOffering"}, offering

    def _check_prices(self, prices: Any, offering: dict[str, Any], tenant_id: str | None,
                      at: datetime) -> None:
        """Each ``itemPrice[].productOfferingPrice`` exists in reach, belongs to the
        offering (when it lists its prices) and is valid now (TMF620 ``validFor``)."""
        if prices is None:
            return
        if not isinstance(prices, list) or not all(isinstance(p, dict) for p in prices):
            raise InvalidInput("itemPrice must be an array of OrderPrice objects",
                               attribute="productOrderItem.itemPrice")
        listed = {r.get("id") for r in offering.get("productOfferingPrice") or []
                  if isinstance(r, dict)}
        for price in prices:
            ref = price.get("productOfferingPrice")
            if ref is None:
                continue
            if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
                raise InvalidInput("productOfferingPrice must be a reference with an id",
                                   attribute="productOrderItem.itemPrice.productOfferingPrice")
            row = self._db.query_one(
                "SELECT tenant_id, body FROM market_catalog WHERE kind = 'productOfferingPrice'"
                " AND id = ?", (ref["id"],))
            if row is None or (tenant_id is not None and row[0] not in (None, tenant_id)):
                raise NotFound(f"no productOfferingPrice {ref['id']!r}", id=ref["id"])
            name = f"productOfferingPrice {ref['id']!r}"
            if listed and ref["id"] not in listed:
                raise Rejected("price-not-offered",
                               f"{name} is not a price of productOffering {offering['id']!r}",
                               id=ref["id"])
            doc = json.loads(row[1])
            status = str(doc.get("lifecycleStatus", ""))
            period = doc.get("validFor") or {}
            if status.lower() in NOT_ORDERABLE or (
                    "endDateTime" in period
                    and parse_datetime(period["endDateTime"], "validFor") < at):
                raise Rejected("expired-price", f"{name} is no longer valid", id=ref["id"])
            if "startDateTime" in period and \
                    parse_datetime(period["startDateTime"], "validFor") > at:
                raise Rejected("not-yet-valid", f"{name} is not valid yet", id=ref["id"])

    def create_order(self, tenant_id: str | None, body: dict[str, Any], actor: str) -> Order:
        fixed = sorted(set(body) & {"id", "href", "orderDate", "completionDate", "state"})
        if fixed:
            raise InvalidInput(f"{fixed[0]} is set by the server", attribute=fixed[0])
        check_document(body)
        items = body.get("productOrderItem")
        if not isinstance(items, list) or not items:
            raise InvalidInput("productOrderItem must be a non-empty array",
                               attribute="productOrderItem")
        if len(items) > MAX_ITEMS:
            raise InvalidInput(f"at most {MAX_ITEMS} order items", attribute="productOrderItem")
        now = self._clock()
        seen: set[str] = set()
        changes: list[dict[str, Any]] = []
        stored_items = []
        offerings: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for item in items:
            if not isinstance(item, dict):
                raise InvalidInput("each productOrderItem must be an object",
                                   attribute="productOrderItem")
            item_id, action = item.get("id"), item.get("action")
            if not isinstance(item_id, str) or not item_id or item_id in seen:
                raise InvalidInput("each productOrderItem needs a unique string id",
                                   attribute="productOrderItem.id")
            seen.add(item_id)
            if action not in ACTIONS:
                raise InvalidInput(f"action must be one of {sorted(ACTIONS)}",
                                   attribute="productOrderItem.action")
            if action not in ("add", *CHANGES):
                raise Rejected("unsupported-action",
                               "items add, modify or delete a product (noChange: not supported)",
                               id=item_id)
            quantity = item.get("quantity", 1)
            if isinstance(quantity, bool) or not isinstance(quantity, int) or not \
                    1 <= quantity <= 1_000_000:
                raise InvalidInput("quantity must be an integer from 1 to 1000000",
                                   attribute="productOrderItem.quantity")
            if "state" in item:
                raise InvalidInput("item state is set by the server",
                                   attribute="productOrderItem.state")
            if action in CHANGES:
                stored, steps = change_item(self._db, self._provisioners, tenant_id, item)
                stored_items.append(stored)
                changes.extend(steps)
                continue
            if "productOffering" not in item:
                raise InvalidInput("an 'add' item needs a productOffering",
                                   attribute="productOrderItem.productOffering")
            ref, offering = self._orderable(item["productOffering"], tenant_id, now)
            self._check_prices(item.get("itemPrice"), offering, tenant_id, now)
            offerings.append(({**item, "quantity": quantity}, offering))
            stored_items.append({**item, "quantity": quantity, "productOffering": ref,
                                 "state": "acknowledged", "@type": item.get("@type",
                                                                            "ProductOrderItem")})
        plan = resolve_plan(self._db, self._provisioners, tenant_id, offerings) + changes
        doc = {**body, "id": str(uuid.uuid4()), "orderDate": iso(now), "state": "acknowledged",
               "productOrderItem": stored_items, "@type": body.get("@type", "ProductOrder")}
        with self._db.transaction(durable=True):
            self._db.execute(
                "INSERT INTO market_orders (id, tenant_id, state, body, created_at, updated_at,"
                " plan) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc["id"], tenant_id, "acknowledged", json.dumps(doc), now.isoformat(),
                 now.isoformat(), json.dumps(plan) if plan else None))
            self._audit.append(actor=actor, action="market.productOrder.create",
                               subject=f"productOrder:{doc['id']}", outcome="success",
                               tenant_id=tenant_id, details={"items": len(stored_items),
                                                             "steps": len(plan)})
            self._emit("productOrdering", "ProductOrderCreateEvent", "productOrder", doc,
                       tenant_id)
            lock_products(self._db, self._emit, doc, tenant_id)
        self._anchor(doc, tenant_id)
        return Order(tenant_id, doc)

    def orchestrated(self, order_id: str) -> bool:
        """Whether the order provisions (its state is then the orchestrator's, not a PATCH's)."""
        row = self._db.query_one("SELECT plan FROM market_orders WHERE id = ?", (order_id,))
        return row is not None and row[0] is not None

    def get_order(self, order_id: str) -> Order:
        row = self._db.query_one("SELECT tenant_id, body FROM market_orders WHERE id = ?",
                                 (order_id,))
        if row is None:
            raise NotFound(f"no productOrder {order_id!r}", id=order_id)
        return Order(row[0], json.loads(row[1]))

    def list_orders(self, tenant_id: str | None, everything: bool) -> list[Order]:
        if everything:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_orders ORDER BY created_at, id")
        else:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_orders WHERE tenant_id = ?"
                " ORDER BY created_at, id", (tenant_id,))
        return [Order(r[0], json.loads(r[1])) for r in rows]

    def patch_order(self, order: Order, patch: dict[str, Any], actor: str, *,
                    may_change_state: bool) -> Order:
        """Merge-patch ``order``; a ``state`` change must be a permitted transition."""
        other = sorted(set(patch) - ORDER_PATCHABLE)
        if other:
            raise InvalidInput(f"{other[0]} cannot be patched", attribute=other[0])
        current = order.state
        target = patch.get("state", current)
        if not isinstance(target, str) or target not in ORDER_STATES:
            raise InvalidInput("state is not a ProductOrderStateType", attribute="state")
        if target != current:
            if self.orchestrated(order.document["id"]):
                raise InvalidTransition("this order is fulfilled by orchestration; its state"
                                        " follows the service order", state=current)
            if not may_change_state:
                raise InvalidTransition("only the seller changes an order's state",
                                        state=current)
            if target not in ORDER_TRANSITIONS.get(current, frozenset()):
                raise InvalidTransition(f"an order in state {current} cannot become {target}",
                                        state=current, target=target)
        doc = merge_patch(copy.deepcopy(order.document), patch)
        check_document(doc)
        now = self._clock()
        if target != current:
            item_state = ITEM_STATE.get(target)
            if item_state is not None:
                for item in doc["productOrderItem"]:
                    item["state"] = item_state
            if target in FINAL:
                doc["completionDate"] = iso(now)
        with self._db.transaction(durable=True):
            changed = self._db.execute(
                "UPDATE market_orders SET state = ?, body = ?, updated_at = ?"
                " WHERE id = ? AND state = ?",
                (target, json.dumps(doc), now.isoformat(), doc["id"], current))
            if changed != 1:
                raise InvalidTransition("the order changed concurrently; retry", state=current)
            if target in FINAL:
                settle_products(self._db, self._emit, doc, order.tenant_id, iso(now))
            if target == "completed":
                for item in doc["productOrderItem"]:
                    if item.get("action") in CHANGES:
                        continue
                    product = product_from(doc, item, iso(now))
                    self._db.execute(
                        "INSERT INTO market_products (id, tenant_id, order_id, body, created_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (product["id"], order.tenant_id, doc["id"], json.dumps(product),
                         now.isoformat()))
            self._audit.append(actor=actor, action="market.productOrder.update",
                               subject=f"productOrder:{doc['id']}", outcome="success",
                               tenant_id=order.tenant_id,
                               details={"from": current, "to": target, "members": sorted(patch)})
            self._emit("productOrdering", "ProductOrderStateChangeEvent" if target != current
                       else "ProductOrderAttributeValueChangeEvent", "productOrder", doc,
                       order.tenant_id)
        if target != current:
            self._anchor(doc, order.tenant_id)
        return Order(order.tenant_id, doc)

    # -- inventory ----------------------------------------------------------------------

    def get_product(self, product_id: str) -> Product:
        row = self._db.query_one("SELECT tenant_id, body FROM market_products WHERE id = ?",
                                 (product_id,))
        if row is None:
            raise NotFound(f"no product {product_id!r}", id=product_id)
        return Product(row[0], json.loads(row[1]))

    def patch_product(self, product: Product, patch: dict[str, Any], actor: str) -> Product:
        """TMF637 merge patch: suspend / resume, describe (:mod:`._products`)."""
        return patch_product(self._db, self._audit, self._emit, self._provisioners, product,
                             patch, actor)

    def list_products(self, tenant_id: str | None, everything: bool) -> list[Product]:
        if everything:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_products ORDER BY created_at, id")
        else:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_products WHERE tenant_id = ?"
                " ORDER BY created_at, id", (tenant_id,))
        return [Product(r[0], json.loads(r[1])) for r in rows]

    # -- cancellation -------------------------------------------------------------------

    def cancel_order(self, order: Order, body: dict[str, Any], actor: str) -> Cancellation:
        """Accept the cancellation of ``order`` (task ``acknowledged``); 409 if it is final.

        :meth:`process_cancellation` carries it out (:mod:`._cancel`).
        """
        return self.cancellations.request(order, body, actor)

    def process_cancellation(self, task_id: str) -> str:
        return self.cancellations.process(task_id)

    def delete_order(self, order: Order, actor: str) -> None:
        """Remove a final order from the order list (TMF622 v5 DELETE productOrder).

        Its audit records, ledger anchors, cancellation tasks, service orders and
        products stay; an order not final is 409 (it is cancelled instead).
        """
        current = order.state
        if current not in REMOVABLE:
            raise InvalidTransition(f"an order in state {current} is not final",
                                    state=current)
        with self._db.transaction(durable=True):
            changed = self._db.execute("DELETE FROM market_orders WHERE id = ? AND state = ?",
                                       (order.document["id"], current))
            if changed != 1:
                raise InvalidTransition("the order changed concurrently; retry", state=current)
            self._audit.append(actor=actor, action="market.productOrder.delete",
                               subject=f"productOrder:{order.document['id']}",
                               outcome="success", tenant_id=order.tenant_id,
                               details={"state": current})
            self._emit("productOrdering", "ProductOrderDeleteEvent", "productOrder",
                       order.document, order.tenant_id)

    def get_cancellation(self, task_id: str) -> Cancellation:
        row = self._db.query_one(
            "SELECT tenant_id, body FROM market_cancellations WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"no cancelProductOrder {task_id!r}", id=task_id)
        return Cancellation(row[0], json.loads(row[1]))

    def list_cancellations(self, tenant_id: str | None, everything: bool) -> list[Cancellation]:
        if everything:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_cancellations ORDER BY created_at, id")
        else:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_cancellations WHERE tenant_id = ?"
                " ORDER BY created_at, id", (tenant_id,))
        return [Cancellation(r[0], json.loads(r[1])) for r in rows]

    # -- TMF641 service orders, TMF638 services ------------------------------------------

    def get_service_order(self, order_id: str) -> ServiceOrder:
        row = self._db.query_one(
            "SELECT tenant_id, body FROM market_service_orders WHERE id = ?", (order_id,))
        if row is None:
            raise NotFound(f"no serviceOrder {order_id!r}", id=order_id)
        return ServiceOrder(row[0], json.loads(row[1]))

    def list_service_orders(self, tenant_id: str | None, everything: bool) -> list[ServiceOrder]:
        if everything:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_service_orders ORDER BY created_at, id")
        else:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_service_orders WHERE tenant_id = ?"
                " ORDER BY created_at, id", (tenant_id,))
        return [ServiceOrder(r[0], json.loads(r[1])) for r in rows]

    def get_service_cancellation(self, task_id: str) -> Cancellation:
        row = self._db.query_one("SELECT tenant_id, body FROM market_service_cancellations"
                                 " WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"no cancelServiceOrder {task_id!r}", id=task_id)
        return Cancellation(row[0], json.loads(row[1]))

    def list_service_cancellations(self, tenant_id: str | None, everything: bool,
                                   ) -> list[Cancellation]:
        where, args = ("", ()) if everything else (" WHERE tenant_id = ?", (tenant_id,))
        rows = self._db.query("SELECT tenant_id, body FROM market_service_cancellations"
                              f"{where} ORDER BY created_at, id", args)
        return [Cancellation(r[0], json.loads(r[1])) for r in rows]

    def delete_service_order(self, order: ServiceOrder, actor: str) -> None:
        """TMF641 ``DELETE serviceOrder/{id}``: a client order in a final state leaves the
        list (its services stay in the inventory); one still open, or one fulfilling a
        product order, is 409."""
        doc = order.document
        if "orderRelationship" in doc:
            raise Conflict(f"serviceOrder {doc['id']!r} fulfils a product order: it changes"
                           " with that order", id=doc["id"])
        with self._db.transaction():
            if self._db.execute(
                    "DELETE FROM market_service_orders WHERE id = ? AND product_order_id = ?"
                    " AND state IN ('completed', 'failed', 'partial', 'cancelled')",
                    (doc["id"], CLIENT_ORDER)) != 1:
                raise Conflict(f"serviceOrder {doc['id']!r} is not in a final state: only"
                               " such an order is deleted", id=doc["id"])
            self._audit.append(actor=actor, action="market.serviceOrder.delete",
                               subject=f"serviceOrder:{doc['id']}", outcome="success",
                               tenant_id=order.tenant_id)
            self._emit("serviceOrdering", "ServiceOrderDeleteEvent", "serviceOrder", doc,
                       order.tenant_id)

    def get_service(self, service_id: str) -> ServiceRecord:
        row = self._db.query_one(
            "SELECT tenant_id, body FROM market_services WHERE id = ?", (service_id,))
        if row is None:
            raise NotFound(f"no service {service_id!r}", id=service_id)
        return ServiceRecord(row[0], json.loads(row[1]))

    def list_services(self, tenant_id: str | None, everything: bool) -> list[ServiceRecord]:
        if everything:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_services ORDER BY created_at, id")
        else:
            rows = self._db.query(
                "SELECT tenant_id, body FROM market_services WHERE tenant_id = ?"
                " ORDER BY created_at, id", (tenant_id,))
        return [ServiceRecord(r[0], json.loads(r[1])) for r in rows]
