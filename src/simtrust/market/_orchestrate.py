"""Order orchestration: a TMF622 product order → a TMF641 service order → provisioning.

Decomposition (TMF620 v4.1.0 ``ProductSpecification.serviceSpecification``, TMF633
v4.0.0 ``ServiceSpecification``): each item's offering names a product
specification, which names the service specifications that realise it; each
service specification's ``targetEntitySchema.@type`` is a provisioning function
(``_provision.py``) and its ``specCharacteristic`` declare the values: a default
(``characteristicValueSpecification`` with ``isDefault``), whether the buyer may
set it (``configurable``) and whether it is mandatory (``minCardinality`` ≥ 1).
The buyer sets values in the item's ``product.productCharacteristic``. The plan
is resolved and checked when the order is created (:func:`resolve_plan`), so a
refused order writes nothing.

Execution (:class:`Orchestrator`): the product order goes ``acknowledged`` →
``inProgress`` with one service order holding an item per step (TMF641 v4.1.0
state model); each step runs in one transaction with its journal entry in the
service order (so a crash leaves a record of exactly what exists). On success
the service order and the product order complete in one durable transaction
that also writes the TMF638 services and the TMF637 products realised by them.
On a failure the finished store-backed steps are compensated in reverse and
the orders become ``failed`` with the reason (the service order's
``errorMessage``, the product order's ``note``); when a ledger contract already
exists (it cannot be undone) the orders become ``partial`` instead and the
inventories keep what exists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import InvalidInput, NotFound, Rejected, SimtrustError
from simtrust.market._cancel import CANCELLING, close_task
from simtrust.market._events import MarketEvents
from simtrust.market._lifecycle import settle_products, update_service
from simtrust.market._provision import FUNCTION_ORDER, Provisioners
from simtrust.store import Database

__all__ = ["Orchestrator", "resolve_plan", "spec_function"]

_ACTOR = "market-orchestrator"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def spec_function(spec: Mapping[str, Any]) -> str | None:
    """The provisioning function a ServiceSpecification names, if any."""
    target = spec.get("targetEntitySchema")
    if isinstance(target, dict) and isinstance(target.get("@type"), str):
        return str(target["@type"])
    return None


def _catalog(db: Database, kind: str, ref: Any, tenant_id: str | None) -> dict[str, Any]:
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise InvalidInput(f"{kind} must be a reference with an id", attribute=kind)
    row = db.query_one("SELECT tenant_id, body FROM market_catalog WHERE kind = ? AND id = ?",
                       (kind, ref["id"]))
    if row is None or (tenant_id is not None and row[0] not in (None, tenant_id)):
        raise NotFound(f"no {kind} {ref['id']!r}", id=ref["id"])
    doc: dict[str, Any] = json.loads(row[1])
    return doc


def _supplied(item: Mapping[str, Any]) -> dict[str, Any]:
    product = item.get("product")
    if product is None:
        return {}
    if not isinstance(product, dict):
        raise InvalidInput("product must be an object", attribute="product")
    raw = product.get("productCharacteristic", [])
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


def _values(spec: Mapping[str, Any], supplied: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                            set[str]]:
    values: dict[str, Any] = {}
    declared: set[str] = set()
    for char in spec.get("specCharacteristic", []) or []:
        if not isinstance(char, dict) or not isinstance(char.get("name"), str):
            continue
        name = char["name"]
        declared.add(name)
        default = None
        for option in char.get("characteristicValueSpecification", []) or []:
            if isinstance(option, dict) and option.get("isDefault") and "value" in option:
                default = option["value"]
                break
        if name in supplied:
            if char.get("configurable") is False:
                raise Rejected("not-configurable",
                               f"characteristic {name} is set by the seller", attribute=name)
            values[name] = supplied[name]
        elif default is not None:
            values[name] = default
        elif int(char.get("minCardinality", 0) or 0) >= 1:
            raise Rejected("missing-characteristic",
                           f"characteristic {name} is mandatory for {spec.get('name')!r}",
                           attribute=name)
    return values, declared


def resolve_plan(db: Database, provisioners: Provisioners, tenant_id: str | None,
                 items: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The provisioning steps of an order's ``(item, offering)`` pairs, checked; [] if none.

    Raises (nothing is written): NotFound for a specification out of reach,
    Rejected (422) for a missing or non-configurable characteristic, one no
    specification declares, or a function simtrust does not provision;
    InvalidInput / Conflict from the functions' own checks.
    """
    steps: list[dict[str, Any]] = []
    for item, offering in items:
        if "productSpecification" not in offering:
            continue
        ref = offering["productSpecification"]
        if not isinstance(ref, dict) or db.query_one(
                "SELECT 1 FROM market_catalog WHERE kind = 'productSpecification' AND id = ?",
                (ref.get("id"),)) is None:
            continue  # a specification described elsewhere: nothing here to provision
        product_spec = _catalog(db, "productSpecification", ref, tenant_id)
        refs = product_spec.get("serviceSpecification") or []
        if not refs:
            continue
        supplied = _supplied(item)
        declared: set[str] = set()
        for ref in refs:
            spec = _catalog(db, "serviceSpecification", ref, tenant_id)
            function = spec_function(spec)
            if function not in provisioners:
                raise Rejected("not-provisionable",
                               f"serviceSpecification {spec['id']!r} names no function"
                               " this operator provisions", id=spec["id"])
            values, names = _values(spec, supplied)
            declared |= names
            if function == "SimBatch":
                per_unit = values.get("simsPerUnit", 1)
                if isinstance(per_unit, bool) or not isinstance(per_unit, int) or per_unit < 1:
                    raise InvalidInput("simsPerUnit must be a positive integer",
                                       attribute="simsPerUnit")
                values["quantity"] = int(item["quantity"]) * per_unit
            steps.append({"item": item["id"], "function": function,
                          "spec": {"id": spec["id"], "name": spec.get("name", spec["id"]),
                                   **({"version": spec["version"]} if "version" in spec
                                      else {})},
                          "values": values})
        unknown = sorted(set(supplied) - declared)
        if unknown:
            raise Rejected("unknown-characteristic",
                           f"no service of this product has a characteristic {unknown[0]}",
                           attribute=unknown[0])
    if not steps:
        return []
    if tenant_id is None:
        raise Rejected("no-buyer-tenant", "an order that provisions needs a buyer tenant")
    steps.sort(key=lambda s: FUNCTION_ORDER.index(s["function"]))
    planned: dict[str, set[str]] = {"apns": set()}
    for step in steps:
        provisioners[step["function"]].check(tenant_id, step["values"], planned)
        if step["function"] == "PrivateApn":
            planned["apns"].add(str(step["values"]["apnName"]).strip().lower())
    return steps


def _characteristics(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def _product(order: dict[str, Any], item: dict[str, Any], at: str,
             services: list[dict[str, Any]]) -> dict[str, Any]:
    offering = item["productOffering"]
    product = {
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
    if services:
        product["realizingService"] = [{"id": s["id"], "name": s["name"],
                                        "@referredType": "Service"} for s in services]
    return product



def failed_item_error(service_order: dict[str, Any], item: dict[str, Any], exc: SimtrustError,
                      message: str, at: str) -> list[dict[str, Any]]:
    """The TMF641 ``errorMessage`` of a service order whose ``item`` failed with ``exc``."""
    return [{
        "code": exc.code, "reason": type(exc).__name__, "message": message,
        "status": str(exc.status), "timestamp": at, "@type": "ServiceOrderErrorMessage",
        # ServiceOrderItemRef requires an ``id`` it does not define (TMF641
        # v4.1.0 file); it carries the item id, as ``itemId`` does.
        "serviceOrderItem": [{"id": item["id"], "itemId": item["id"],
                              "serviceOrderId": service_order["id"],
                              "@referredType": "ServiceOrderItem"}]}]

class _Moved(Exception):
    """The order left ``inProgress`` while its steps ran (a cancellation)."""


class Orchestrator:
    """Runs the plan of acknowledged product orders; see the module docstring."""

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime],
                 provisioners: Provisioners, events: MarketEvents | None = None,
                 anchor: Callable[[dict[str, Any], str | None], None] | None = None) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._provisioners = provisioners
        self._events = events
        self._anchor = anchor or (lambda order, tenant: None)

    def __repr__(self) -> str:
        return f"Orchestrator({self._db!r})"

    def _emit(self, api: str, event: str, resource: str, doc: dict[str, Any],
              tenant_id: str | None) -> None:
        if self._events is not None:
            self._events.emit(api, event, resource, doc, tenant_id)

    def pending(self) -> list[str]:
        """Acknowledged orders with a plan, oldest first."""
        rows = self._db.query("SELECT id FROM market_orders WHERE state = 'acknowledged'"
                              " AND plan IS NOT NULL ORDER BY created_at, id")
        return [str(r[0]) for r in rows]

    def process(self, order_id: str) -> str:
        """Orchestrate ``order_id`` if it waits for it; its state afterwards."""
        row = self._db.query_one("SELECT tenant_id, state, body, plan FROM market_orders"
                                 " WHERE id = ?", (order_id,))
        if row is None:
            raise NotFound(f"no productOrder {order_id!r}", id=order_id)
        tenant_id, state, body, plan = row
        if state != "acknowledged" or plan is None:
            return str(state)
        steps: list[dict[str, Any]] = json.loads(plan)
        order = json.loads(body)
        now = self._clock()
        at = _iso(now)
        order["state"] = "inProgress"
        for item in order["productOrderItem"]:
            item["state"] = "inProgress"
        service_order = {
            "id": str(uuid.uuid4()), "@type": "ServiceOrder", "state": "inProgress",
            "orderDate": at, "startDate": at, "externalId": order_id,
            "description": f"Fulfilment of product order {order_id}",
            "relatedParty": [{"id": str(tenant_id), "role": "customer",
                              "@type": "RelatedParty", "@referredType": "Organization"}],
            "orderRelationship": [{"id": order_id, "relationshipType": "fulfils",
                                   "@referredType": "ProductOrder"}],
            "serviceOrderItem": [
                {"id": str(n + 1), "action": step.get("action", "add"), "quantity": 1,
                 "state": "acknowledged", "@type": "ServiceOrderItem",
                 "service": {"@type": "Service", "name": step["spec"]["name"],
                             "category": step["function"],
                             **({"id": step["service"]} if "service" in step else {}),
                             "serviceSpecification": {**step["spec"],
                                                      "@referredType": "ServiceSpecification"},
                             "serviceCharacteristic": _characteristics(step["values"])}}
                for n, step in enumerate(steps)],
        }
        with self._db.transaction():
            changed = self._db.execute(
                "UPDATE market_orders SET state = 'inProgress', body = ?, updated_at = ?"
                " WHERE id = ? AND state = 'acknowledged'",
                (json.dumps(order), now.isoformat(), order_id))
            if changed != 1:
                return self.state(order_id)
            self._db.execute(
                "INSERT INTO market_service_orders (id, tenant_id, product_order_id, state, body,"
                " journal, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (service_order["id"], tenant_id, order_id, "inProgress",
                 json.dumps(service_order), "{}", now.isoformat(), now.isoformat()))
            self._audit.append(actor=_ACTOR, action="market.productOrder.update",
                               subject=f"productOrder:{order_id}", outcome="success",
                               tenant_id=tenant_id,
                               details={"from": "acknowledged", "to": "inProgress",
                                        "serviceOrder": service_order["id"]})
            self._emit("productOrdering", "ProductOrderStateChangeEvent", "productOrder", order,
                       tenant_id)
            self._emit("serviceOrdering", "ServiceOrderCreateEvent", "serviceOrder",
                       service_order, tenant_id)
        self._anchor(order, tenant_id)
        return self._run(str(tenant_id), order, service_order, steps)

    def state(self, order_id: str) -> str:
        row = self._db.query_one("SELECT state FROM market_orders WHERE id = ?", (order_id,))
        return "" if row is None else str(row[0])

    def _journal(self, service_order: dict[str, Any], results: dict[int, dict[str, Any]],
                 ) -> None:
        self._db.execute(
            "UPDATE market_service_orders SET body = ?, journal = ?, updated_at = ? WHERE id = ?",
            (json.dumps(service_order), json.dumps(results), self._clock().isoformat(),
             service_order["id"]))

    def _run(self, tenant_id: str, order: dict[str, Any], service_order: dict[str, Any],
             steps: list[dict[str, Any]]) -> str:
        reason = f"productOrder {order['id']}"
        items = service_order["serviceOrderItem"]
        results: dict[int, dict[str, Any]] = {}
        failure: tuple[int, SimtrustError] | None = None
        for n, step in enumerate(steps):
            if self.state(order["id"]) in CANCELLING:
                return self._finish(tenant_id, order, service_order, steps, results, None,
                                    cancelling=True)
            provisioner = self._provisioners[step["function"]]
            try:
                with self._db.transaction():
                    action = step.get("action", "add")
                    if action == "add":
                        result = provisioner.provision(tenant_id, step["values"], actor=_ACTOR,
                                                       reason=reason)
                    elif action == "modify":
                        result = provisioner.modify(tenant_id, step["before"], step["values"],
                                                    actor=_ACTOR, reason=reason)
                    else:
                        provisioner.terminate(tenant_id, step["before"], actor=_ACTOR,
                                              reason=reason)
                        result = {}
                    items[n]["state"] = "completed"
                    results[n] = result
                    self._journal(service_order, results)
            except SimtrustError as exc:
                items[n]["state"] = "acknowledged"
                results.pop(n, None)
                failure = (n, exc)
                break
        return self._finish(tenant_id, order, service_order, steps, results, failure)

    def _compensate(self, tenant_id: str, service_order: dict[str, Any],
                    steps: list[dict[str, Any]], results: dict[int, dict[str, Any]], why: str,
                    ) -> list[int]:
        """Undo the store-backed steps in reverse; the steps that still exist."""
        items = service_order["serviceOrderItem"]
        kept = []
        for n in sorted(results, reverse=True):
            provisioner = self._provisioners[steps[n]["function"]]
            action = steps[n].get("action", "add")
            # A termination is not undone (returned SIMs may be allocated again).
            if provisioner.on_ledger or action == "delete":
                kept.append(n)
                continue
            try:
                if action == "modify":
                    provisioner.revert(tenant_id, steps[n]["before"], results[n], actor=_ACTOR,
                                       reason=why)
                else:
                    provisioner.compensate(tenant_id, results[n], actor=_ACTOR, reason=why)
            except SimtrustError:
                kept.append(n)
                continue
            items[n]["state"] = "cancelled"
        return sorted(kept)

    def _finish(self, tenant_id: str, order: dict[str, Any], service_order: dict[str, Any],
                steps: list[dict[str, Any]], results: dict[int, dict[str, Any]],
                failure: tuple[int, SimtrustError] | None, *, cancelling: bool = False) -> str:
        items = service_order["serviceOrderItem"]
        now = self._clock()
        at = _iso(now)
        note = None
        expected = ("inProgress",)
        if cancelling:
            # cancelProductOrder arrived while the steps ran: undo what can be undone.
            row = self._db.query_one("SELECT state, body FROM market_orders WHERE id = ?",
                                     (order["id"],))
            if row is None:
                raise NotFound(f"no productOrder {order['id']!r}", id=order["id"])
            expected = (str(row[0]),)
            order = json.loads(row[1])
            why = f"productOrder {order['id']} cancelled"
            kept = self._compensate(tenant_id, service_order, steps, results, why)
            for item in items:
                if item["state"] != "completed":
                    item["state"] = "cancelled"
            if kept:
                note = ("cancelled by cancelProductOrder; what cannot be undone stays: "
                        + ", ".join(f"{steps[n]['function']} ({steps[n]['spec']['name']})"
                                    for n in kept))
        elif failure is not None:
            n, exc = failure
            items[n]["state"] = "failed"
            message = f"{steps[n]['function']} ({steps[n]['spec']['name']}) failed: {exc.detail}"
            service_order["errorMessage"] = failed_item_error(service_order, items[n], exc,
                                                              message, at)
            kept = self._compensate(tenant_id, service_order, steps, results, message)
            for k in range(n + 1, len(items)):
                items[k]["state"] = "cancelled"
            note = message
        else:
            kept = sorted(results)
        if cancelling:
            final = "partial" if kept else "cancelled"
        else:
            final = "completed" if failure is None else ("partial" if kept else "failed")
        service_order["state"] = final
        service_order["completionDate"] = at
        services = []
        altered = [n for n in kept if steps[n].get("action", "add") != "add"]
        for n in kept:
            if n in altered:
                continue
            item = items[n]
            result = results[n]
            services.append((steps[n]["item"], {
                "id": str(uuid.uuid4()), "name": item["service"]["name"], "@type": "Service",
                "category": steps[n]["function"], "state": "active", "isServiceEnabled": True,
                "hasStarted": True, "isStateful": True, "startDate": at,
                "serviceSpecification": item["service"]["serviceSpecification"],
                "serviceCharacteristic": _characteristics(result),
                "relatedParty": service_order["relatedParty"],
                "serviceOrderItem": [{"itemId": item["id"], "serviceOrderId": service_order["id"],
                                      "itemAction": "add",
                                      "@referredType": "ServiceOrderItem"}]}))
        kept_items = {steps[n]["item"] for n in kept}
        failed_items = {steps[n]["item"] for n in range(len(steps)) if n not in kept}
        for item in order["productOrderItem"]:
            if final == "completed" or (item["id"] in kept_items and
                                        item["id"] not in failed_items):
                item["state"] = "completed"
            elif final == "partial" and item["id"] in kept_items:
                # Part of its steps stay: ProductOrderItemStateType has no ``partial``.
                item["state"] = "failed"
            else:
                item["state"] = "cancelled" if cancelling else "failed"
        order["state"] = final
        order["cancellationDate" if final == "cancelled" else "completionDate"] = at
        if note is not None:
            order["note"] = [*order.get("note", []),
                             {"id": str(uuid.uuid4()), "author": _ACTOR, "date": at,
                              "text": note, "@type": "Note"}]
        products = []
        for item in order["productOrderItem"]:
            if item["state"] == "completed" and item.get("action", "add") == "add":
                realising = [doc for owner, doc in services if owner == item["id"]]
                products.append(_product(order, item, at, realising))
        try:
            with self._db.transaction(durable=True):
                changed = self._db.execute(
                    "UPDATE market_orders SET state = ?, body = ?, updated_at = ?"
                    " WHERE id = ? AND state = ?",
                    (final, json.dumps(order), now.isoformat(), order["id"], expected[0]))
                if changed != 1:
                    raise _Moved
                if cancelling:
                    close_task(self._db, self._emit, order["id"], tenant_id, error=note, at=at)
                self._db.execute(
                    "UPDATE market_service_orders SET state = ?, body = ?, updated_at = ?"
                    " WHERE id = ?", (final, json.dumps(service_order), now.isoformat(),
                                      service_order["id"]))
                for _, service in services:
                    self._db.execute(
                        "INSERT INTO market_services (id, tenant_id, service_order_id, state, body,"
                        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (service["id"], tenant_id, service_order["id"], "active",
                         json.dumps(service), now.isoformat()))
                    self._emit("serviceInventory", "ServiceCreateEvent", "service", service,
                               tenant_id)
                for n in altered:
                    update_service(self._db, self._emit, steps[n]["service"], tenant_id,
                                   results[n] if steps[n]["action"] == "modify" else None, at,
                                   {"itemId": items[n]["id"], "serviceOrderId": service_order["id"],
                                    "itemAction": steps[n]["action"],
                                    "@referredType": "ServiceOrderItem"})
                settle_products(self._db, self._emit, order, tenant_id, at)
                for product in products:
                    self._db.execute(
                        "INSERT INTO market_products (id, tenant_id, order_id, body, created_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (product["id"], tenant_id, order["id"], json.dumps(product),
                         now.isoformat()))
                    self._emit("productInventory", "ProductCreateEvent", "product", product,
                               tenant_id)
                self._audit.append(actor=_ACTOR, action="market.productOrder.update",
                                   subject=f"productOrder:{order['id']}",
                                   outcome="success" if final == "completed" else "failure",
                                   reason=note or "", tenant_id=tenant_id,
                                   details={"from": "inProgress", "to": final,
                                            "serviceOrder": service_order["id"],
                                            "services": [s["id"] for _, s in services]})
                self._emit("serviceOrdering", "ServiceOrderStateChangeEvent", "serviceOrder",
                           service_order, tenant_id)
                self._emit("productOrdering", "ProductOrderStateChangeEvent", "productOrder", order,
                           tenant_id)
        except _Moved:
            moved = self.state(order["id"])
            if moved in CANCELLING and not cancelling:
                return self._finish(tenant_id, order, service_order, steps,
                                    {n: results[n] for n in kept}, None, cancelling=True)
            return moved
        self._anchor(order, tenant_id)
        return final

    def recover(self) -> int:
        """After a crash: fail the orders caught in progress (undoing their journaled steps),
        then run the acknowledged ones; how many orders were touched."""
        rows = self._db.query(
            "SELECT s.tenant_id, s.body, s.journal, o.plan, o.body FROM market_service_orders s"
            " JOIN market_orders o ON o.id = s.product_order_id"
            " WHERE s.state = 'inProgress' AND o.state IN"
            " ('inProgress', 'assessingCancellation', 'pendingCancellation')")
        touched = 0
        for tenant_id, so_body, journal, plan, order_body in rows:
            order = json.loads(order_body)
            service_order = json.loads(so_body)
            steps = json.loads(plan)
            done = {int(n): result for n, result in json.loads(journal).items()}
            pending = next((n for n, item in enumerate(service_order["serviceOrderItem"])
                            if item["state"] != "completed"), None)
            failure = None if pending is None else (
                pending, Rejected("interrupted", "the node stopped while this step ran"))
            cancelling = order["state"] in CANCELLING
            self._finish(str(tenant_id), order, service_order, steps, done,
                         None if cancelling else failure, cancelling=cancelling)
            touched += 1
        for order_id in self.pending():
            self.process(order_id)
            touched += 1
        return touched
