"""Service orders and service writes from clients: TMF641 v4.1.0 and TMF638 v4.0.0.

TMF641 v4.1.0 (Service Ordering): a client's ``POST serviceOrder`` names, per
``ServiceOrderItem``, a ``service`` whose ``serviceSpecification`` is one of the
TMF633 v4.0.0 service specifications in this operator's catalog (or the
tenant's own); its ``serviceCharacteristic`` set the values the specification
declares (``_orchestrate._values``: defaults, ``configurable``, mandatory by
``minCardinality``). Action ``add`` provisions through the same functions the
product-order orchestrator uses (``_provision.py``); ``modify`` and ``delete``
name an existing ``service.id`` of the tenant. Everything is checked before
the order is written: an unknown specification is 422 ``unknown-specification``,
nothing written. The order starts ``acknowledged``; :meth:`ClientServices.process`
moves it ``inProgress`` and runs the steps (each in one transaction), then
``completed``; on a failure the finished store-backed steps are compensated in
reverse and the order is ``failed`` (``partial`` when a ledger step stays).
Cancellation (TMF641 §"cancelServiceOrder" and the state model: only an order
that has not started, ``acknowledged``) is immediate, its task stored ``done``
(TaskStateType) and readable; later it is 409. An order with a future
``requestedStartDate`` stays ``acknowledged`` (cancellable) until
:meth:`ClientServices.run_due` finds it due.

TMF638 v4.0.0 (Service Inventory): ``POST service`` provisions one service
synchronously (same checks, the provisioning and the inventory row in one
transaction), ``PATCH service/{id}`` sets ``serviceCharacteristic`` (the
function's ``modify``), ``name``/``description``, or ``state: terminated``
(the function's ``terminate``); ``DELETE`` terminates and removes the service
from the inventory. Services that realise a TMF637 product are changed by
product orders only (409): the product would otherwise describe what no longer
exists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, InvalidInput, NotFound, Rejected, SimtrustError
from simtrust.market._lifecycle import Emit, service_values, update_service
from simtrust.market._orchestrate import _catalog, _values, failed_item_error, spec_function
from simtrust.market._provision import FUNCTION_ORDER, Provisioners
from simtrust.market._records import Cancellation, ServiceOrder, ServiceRecord
from simtrust.store import Database

__all__ = ["CLIENT_ORDER", "ClientServices"]

_ACTOR = "market-service-orders"
#: ``product_order_id`` of a service order a client placed (no product order).
CLIENT_ORDER = ""
_PATCHABLE_ORDER = frozenset({"description", "externalId", "priority", "note",
                              "notificationContact", "state", "category"})
_PATCHABLE_SERVICE = frozenset({"name", "description", "serviceCharacteristic", "state"})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _chars(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise InvalidInput(f"{where} must be an array", attribute=where)
    values: dict[str, Any] = {}
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or "value" not in entry:
            raise InvalidInput(f"each {where} has a name and a value", attribute=where)
        values[entry["name"]] = entry["value"]
    return values


def _start(order: Mapping[str, Any]) -> datetime:
    """When the order may start: its ``requestedStartDate`` (TMF641), else at once."""
    raw = order.get("requestedStartDate")
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else datetime.min
    except ValueError:
        raise InvalidInput("requestedStartDate is not a date-time",
                           attribute="requestedStartDate") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _characteristics(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


class ClientServices:
    """TMF641 orders and TMF638 writes by clients; see the module docstring."""

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime],
                 provisioners: Provisioners, emit: Emit) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._provisioners = provisioners
        self._emit = emit

    def __repr__(self) -> str:
        return f"ClientServices({self._db!r})"

    # -- checks (nothing written) ----------------------------------------------------------

    def _add_step(self, tenant_id: str, service: Any, quantity: int) -> dict[str, Any]:
        if not isinstance(service, dict):
            raise InvalidInput("service must be an object", attribute="service")
        ref = service.get("serviceSpecification")
        if not isinstance(ref, dict):
            raise InvalidInput("service.serviceSpecification must be a reference with an id",
                               attribute="service.serviceSpecification")
        try:
            spec = _catalog(self._db, "serviceSpecification", ref, tenant_id)
        except NotFound:
            raise Rejected("unknown-specification",
                           f"no serviceSpecification {ref.get('id')!r} in this catalog",
                           attribute="service.serviceSpecification") from None
        function = spec_function(spec)
        if function not in self._provisioners:
            raise Rejected("not-provisionable", f"serviceSpecification {spec['id']!r} names"
                           " no function this operator provisions", id=spec["id"])
        supplied = _chars(service.get("serviceCharacteristic"), "service.serviceCharacteristic")
        values, declared = _values(spec, supplied)
        unknown = sorted(set(supplied) - declared)
        if unknown:
            raise Rejected("unknown-characteristic", f"serviceSpecification {spec['id']!r}"
                           f" has no characteristic {unknown[0]}", attribute=unknown[0])
        if function == "SimBatch":
            per_unit = values.get("simsPerUnit", 1)
            if isinstance(per_unit, bool) or not isinstance(per_unit, int) or per_unit < 1:
                raise InvalidInput("simsPerUnit must be a positive integer",
                                   attribute="simsPerUnit")
            values["quantity"] = quantity * per_unit
        return {"action": "add", "function": function,
                "name": service.get("name") or spec.get("name", spec["id"]),
                "spec": {"id": spec["id"], "name": spec.get("name", spec["id"]),
                         **({"version": spec["version"]} if "version" in spec else {})},
                "values": values}

    def _owned(self, tenant_id: str | None, service_id: Any) -> tuple[dict[str, Any], str]:
        """An active service of the tenant, for change; (document, its order's product order)."""
        if not isinstance(service_id, str):
            raise InvalidInput("service.id is required to modify or delete",
                               attribute="service.id")
        row = self._db.query_one(
            "SELECT s.tenant_id, s.body, o.product_order_id FROM market_services s"
            " LEFT JOIN market_service_orders o ON o.id = s.service_order_id WHERE s.id = ?",
            (service_id,))
        if row is None or (tenant_id is not None and row[0] != tenant_id):
            raise NotFound(f"no service {service_id!r}", id=service_id)
        return json.loads(row[1]), str(row[2] or CLIENT_ORDER)

    def _change_step(self, tenant_id: str | None, action: str, service: Any,
                     ) -> dict[str, Any]:
        if not isinstance(service, dict):
            raise InvalidInput("service must be an object", attribute="service")
        doc, product_order = self._owned(tenant_id, service.get("id"))
        if product_order != CLIENT_ORDER:
            raise Conflict(f"service {doc['id']!r} realises a product: change it with a"
                           " product order", id=doc["id"])
        if doc.get("state") != "active":
            raise Rejected("service-not-active", f"service {doc['id']!r} is {doc.get('state')}",
                           id=doc["id"])
        provisioner = self._provisioners.get(doc["category"])
        if provisioner is None:
            raise Rejected("not-provisionable", f"service {doc['id']!r} has no function here",
                           id=doc["id"])
        before = service_values(doc)
        step = {"action": action, "function": doc["category"], "name": doc["name"],
                "spec": {k: v for k, v in doc["serviceSpecification"].items()
                         if k in ("id", "name", "version")},
                "service": doc["id"], "before": before, "values": {}}
        if action == "delete":
            if not provisioner.terminable:
                raise Rejected("not-terminable", f"service {doc['id']!r} cannot be terminated"
                               " by an order", id=doc["id"])
            return step
        changes = _chars(service.get("serviceCharacteristic"), "service.serviceCharacteristic")
        if not changes:
            raise Rejected("nothing-to-modify", "a modify item sets serviceCharacteristic",
                           attribute="service.serviceCharacteristic")
        fixed = sorted(set(changes) - set(provisioner.modifiable))
        if fixed:
            raise Rejected("not-modifiable", f"characteristic {fixed[0]} of this service"
                           " cannot be modified", attribute=fixed[0])
        provisioner.check_modify(str(tenant_id), before, changes)
        return {**step, "values": changes}

    def _plan(self, tenant_id: str | None, items: Any) -> list[dict[str, Any]]:
        if not isinstance(items, list) or not items:
            raise InvalidInput("serviceOrderItem must be a non-empty array",
                               attribute="serviceOrderItem")
        if tenant_id is None:
            raise Rejected("no-buyer-tenant", "a service order needs a buyer tenant")
        steps: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise InvalidInput("each serviceOrderItem has an id", attribute="serviceOrderItem")
            if item["id"] in seen:
                raise InvalidInput(f"serviceOrderItem id {item['id']!r} repeats",
                                   attribute="serviceOrderItem.id")
            seen.add(item["id"])
            action = item.get("action", "add")
            quantity = item.get("quantity", 1)
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                raise InvalidInput("quantity must be a positive integer", attribute="quantity")
            if action == "add":
                step = self._add_step(tenant_id, item.get("service"), quantity)
            elif action in ("modify", "delete"):
                step = self._change_step(tenant_id, action, item.get("service"))
            else:
                raise Rejected("unsupported-action", f"action {action!r} is not supported",
                               attribute="action")
            steps.append({**step, "item": item["id"]})
        changed = [s["service"] for s in steps if "service" in s]
        if len(changed) != len(set(changed)):
            raise InvalidInput("a service is named by two items", attribute="service.id")
        steps.sort(key=lambda s: FUNCTION_ORDER.index(s["function"]))
        planned: dict[str, set[str]] = {"apns": set()}
        for step in steps:
            if step["action"] == "add":
                self._provisioners[step["function"]].check(tenant_id, step["values"], planned)
                if step["function"] == "PrivateApn":
                    planned["apns"].add(str(step["values"]["apnName"]).strip().lower())
        return steps

    # -- TMF641 ----------------------------------------------------------------------------

    def create_order(self, tenant_id: str | None, body: dict[str, Any], actor: str,
                     ) -> ServiceOrder:
        """Check and store a client's service order (``acknowledged``)."""
        steps = self._plan(tenant_id, body.get("serviceOrderItem"))
        _start(body)  # a requestedStartDate that is no date-time is 400, nothing written
        now = self._clock()
        at = _iso(now)
        order_id = str(uuid.uuid4())
        keep: dict[str, Any] = {
            k: body[k] for k in ("externalId", "description", "category", "priority",
                                 "requestedStartDate", "requestedCompletionDate", "note",
                                 "notificationContact") if k in body}
        items = {i["id"]: i for i in body["serviceOrderItem"]}
        order: dict[str, Any] = {
            **keep, "id": order_id, "@type": "ServiceOrder", "state": "acknowledged",
            "orderDate": at,
            "relatedParty": [{"id": str(tenant_id), "role": "customer",
                              "@type": "RelatedParty", "@referredType": "Organization"}],
            "serviceOrderItem": [
                {"id": s["item"], "action": s["action"],
                 "quantity": items[s["item"]].get("quantity", 1),
                 "state": "acknowledged", "@type": "ServiceOrderItem",
                 "service": {"@type": "Service", "name": s["name"], "category": s["function"],
                             **({"id": s["service"]} if "service" in s else {}),
                             "serviceSpecification": {**s["spec"],
                                                      "@referredType": "ServiceSpecification"},
                             "serviceCharacteristic": _characteristics(s["values"])}}
                for s in steps]}
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO market_service_orders (id, tenant_id, product_order_id, state, body,"
                " journal, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (order_id, tenant_id, CLIENT_ORDER, "acknowledged", json.dumps(order),
                 json.dumps({"plan": steps, "done": {}}), now.isoformat(), now.isoformat()))
            self._audit.append(actor=actor, action="market.serviceOrder.create",
                               subject=f"serviceOrder:{order_id}", outcome="success",
                               tenant_id=tenant_id, details={"items": len(steps)})
            self._emit("serviceOrdering", "ServiceOrderCreateEvent", "serviceOrder", order,
                       tenant_id)
        return ServiceOrder(tenant_id, order)

    def _set(self, order: dict[str, Any], journal: dict[str, Any], expected: str) -> bool:
        return self._db.execute(
            "UPDATE market_service_orders SET state = ?, body = ?, journal = ?, updated_at = ?"
            " WHERE id = ? AND state = ?",
            (order["state"], json.dumps(order), json.dumps(journal), self._clock().isoformat(),
             order["id"], expected)) == 1

    def process(self, order_id: str) -> str:
        """Run an acknowledged client order; its state afterwards."""
        row = self._db.query_one("SELECT tenant_id, state, body, journal, product_order_id"
                                 " FROM market_service_orders WHERE id = ?", (order_id,))
        if row is None:
            raise NotFound(f"no serviceOrder {order_id!r}", id=order_id)
        tenant_id, state, body, raw, product_order = row
        order, journal = json.loads(body), json.loads(raw)
        if state != "acknowledged" or product_order != CLIENT_ORDER \
                or _start(order) > self._clock():
            return str(state)  # a future requestedStartDate waits for run_due
        steps: list[dict[str, Any]] = journal["plan"]
        order["state"] = "inProgress"
        order["startDate"] = _iso(self._clock())
        with self._db.transaction():
            if not self._set(order, journal, "acknowledged"):
                return self._state(order_id)
            self._emit("serviceOrdering", "ServiceOrderStateChangeEvent", "serviceOrder", order,
                       tenant_id)
        items = order["serviceOrderItem"]
        reason = f"serviceOrder {order_id}"
        results: dict[int, dict[str, Any]] = {}
        failure: tuple[int, SimtrustError] | None = None
        for n, step in enumerate(steps):
            provisioner = self._provisioners[step["function"]]
            try:
                with self._db.transaction():
                    if step["action"] == "add":
                        result = provisioner.provision(tenant_id, step["values"], actor=_ACTOR,
                                                       reason=reason)
                    elif step["action"] == "modify":
                        result = provisioner.modify(tenant_id, step["before"], step["values"],
                                                    actor=_ACTOR, reason=reason)
                    else:
                        provisioner.terminate(tenant_id, step["before"], actor=_ACTOR,
                                              reason=reason)
                        result = {}
                    items[n]["state"] = "completed"
                    results[n] = result
                    journal["done"] = results
                    self._set(order, journal, "inProgress")
            except SimtrustError as exc:
                failure = (n, exc)
                break
        return self._finish(str(tenant_id), order, journal, steps, results, failure)

    def run_due(self) -> int:
        """Run the acknowledged client orders whose ``requestedStartDate`` has come (serve's
        scheduler; the orders wait in the store, so a restart loses none); how many ran."""
        rows = self._db.query("SELECT id, body FROM market_service_orders WHERE state ="
                              " 'acknowledged' AND product_order_id = ? ORDER BY created_at,"
                              " id", (CLIENT_ORDER,))
        now = self._clock()
        due = [str(i) for i, body in rows if _start(json.loads(body)) <= now]
        return sum(self.process(i) != "acknowledged" for i in due)

    def recover(self) -> int:
        """After a stop: fail client orders caught ``inProgress`` (undoing their journaled
        steps), then run the acknowledged ones that are due; how many orders were touched."""
        rows = self._db.query(
            "SELECT tenant_id, body, journal FROM market_service_orders WHERE state ="
            " 'inProgress' AND product_order_id = ? ORDER BY created_at, id", (CLIENT_ORDER,))
        for tenant_id, body, raw in rows:
            order, journal = json.loads(body), json.loads(raw)
            done = {int(n): result for n, result in journal.get("done", {}).items()}
            pending = next((n for n, item in enumerate(order["serviceOrderItem"])
                            if item["state"] != "completed"), None)
            failure = None if pending is None else (
                pending, Rejected("interrupted", "the node stopped while this step ran"))
            self._finish(str(tenant_id), order, journal, journal["plan"], done, failure)
        waiting = self._db.query(
            "SELECT id FROM market_service_orders WHERE state = 'acknowledged'"
            " AND product_order_id = ? ORDER BY created_at, id", (CLIENT_ORDER,))
        ran = sum(self.process(str(i)) != "acknowledged" for (i,) in waiting)
        return len(rows) + ran

    def _state(self, order_id: str) -> str:
        row = self._db.query_one("SELECT state FROM market_service_orders WHERE id = ?",
                                 (order_id,))
        return "" if row is None else str(row[0])

    def _finish(self, tenant_id: str, order: dict[str, Any], journal: dict[str, Any],
                steps: list[dict[str, Any]], results: dict[int, dict[str, Any]],
                failure: tuple[int, SimtrustError] | None) -> str:
        items = order["serviceOrderItem"]
        at = _iso(self._clock())
        kept = sorted(results)
        if failure is not None:
            n, exc = failure
            items[n]["state"] = "failed"
            message = f"{steps[n]['function']} ({steps[n]['name']}) failed: {exc.detail}"
            order["errorMessage"] = failed_item_error(order, items[n], exc, message, at)
            kept = []
            for k in sorted(results, reverse=True):
                provisioner = self._provisioners[steps[k]["function"]]
                try:
                    if provisioner.on_ledger or steps[k]["action"] == "delete":
                        raise Conflict("cannot be undone")
                    if steps[k]["action"] == "modify":
                        provisioner.revert(tenant_id, steps[k]["before"], results[k],
                                           actor=_ACTOR, reason=message)
                    else:
                        provisioner.compensate(tenant_id, results[k], actor=_ACTOR,
                                               reason=message)
                    items[k]["state"] = "cancelled"
                except SimtrustError:
                    kept.append(k)
            for k in range(len(items)):
                if items[k]["state"] == "acknowledged":
                    items[k]["state"] = "cancelled"
        final = "completed" if failure is None else ("partial" if kept else "failed")
        order["state"] = final
        order["completionDate"] = at
        with self._db.transaction(durable=True):
            for n in sorted(kept):
                step, item = steps[n], items[n]
                ref = {"itemId": item["id"], "serviceOrderId": order["id"],
                       "itemAction": step["action"], "@referredType": "ServiceOrderItem"}
                if step["action"] != "add":
                    update_service(self._db, self._emit, step["service"], tenant_id,
                                   None if step["action"] == "delete"
                                   else {**step["before"], **results[n]}, at, ref)
                    continue
                self._insert(tenant_id, order["id"], {
                    "id": str(uuid.uuid4()), "name": step["name"], "@type": "Service",
                    "category": step["function"], "state": "active", "isServiceEnabled": True,
                    "hasStarted": True, "isStateful": True, "startDate": at,
                    "serviceSpecification": item["service"]["serviceSpecification"],
                    "serviceCharacteristic": _characteristics(results[n]),
                    "relatedParty": order["relatedParty"], "serviceOrderItem": [ref]})
            self._set(order, journal, "inProgress")
            self._audit.append(actor=_ACTOR, action="market.serviceOrder.update",
                               subject=f"serviceOrder:{order['id']}",
                               outcome="success" if final == "completed" else "failure",
                               tenant_id=tenant_id, details={"to": final})
            self._emit("serviceOrdering", "ServiceOrderStateChangeEvent", "serviceOrder", order,
                       tenant_id)
        return final

    def _insert(self, tenant_id: str, order_id: str, service: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO market_services (id, tenant_id, service_order_id, state, body,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (service["id"], tenant_id, order_id, "active", json.dumps(service),
             self._clock().isoformat()))
        self._emit("serviceInventory", "ServiceCreateEvent", "service", service, tenant_id)

    def cancel_task(self, order: ServiceOrder, actor: str, reason: str | None = None,
                    ) -> Cancellation:
        """TMF641 ``cancelServiceOrder``: cancel now (see :meth:`cancel`) and keep the task,
        ``done`` (TaskStateType) in the transaction that cancels; refused is 409."""
        task_id = str(uuid.uuid4())
        task: dict[str, Any] = {
            "id": task_id, "@type": "CancelServiceOrder", "state": "done",
            **({"cancellationReason": reason} if reason else {}),
            "serviceOrder": {"id": order.document["id"], "@referredType": "ServiceOrder"}}
        self.cancel(order, actor, reason, task)
        return Cancellation(order.tenant_id, task)

    def cancel(self, order: ServiceOrder, actor: str, reason: str | None = None,
               task: dict[str, Any] | None = None) -> dict[str, Any]:
        """Cancel an order that has not started (TMF641 state model); the order after.
        A ``cancelServiceOrder`` ``task`` is stored with it (one transaction)."""
        doc = dict(order.document)
        if doc.get("state") != "acknowledged" or "orderRelationship" in doc:
            raise Conflict(f"serviceOrder {doc['id']!r} is {doc.get('state')}: only an"
                           " acknowledged order placed by a client can be cancelled",
                           id=doc["id"])
        at = _iso(self._clock())
        doc.update(state="cancelled", cancellationDate=at, completionDate=at)
        if reason:
            doc["cancellationReason"] = reason
        for item in doc["serviceOrderItem"]:
            item["state"] = "cancelled"
        with self._db.transaction():
            raw = self._db.query_one("SELECT journal FROM market_service_orders WHERE id = ?",
                                     (doc["id"],))
            if raw is None or not self._set(doc, json.loads(raw[0]), "acknowledged"):
                raise Conflict(f"serviceOrder {doc['id']!r} has started", id=doc["id"])
            if task is not None:
                task["effectiveCancellationDate"] = at
                self._db.execute(
                    "INSERT INTO market_service_cancellations (id, tenant_id, order_id, body,"
                    " created_at) VALUES (?, ?, ?, ?, ?)",
                    (task["id"], order.tenant_id, doc["id"], json.dumps(task),
                     self._clock().isoformat()))
            self._audit.append(actor=actor, action="market.serviceOrder.cancel",
                               subject=f"serviceOrder:{doc['id']}", outcome="success",
                               tenant_id=order.tenant_id, reason=reason or "")
            self._emit("serviceOrdering", "ServiceOrderStateChangeEvent", "serviceOrder", doc,
                       order.tenant_id)
        return doc

    def patch_order(self, order: ServiceOrder, patch: dict[str, Any], actor: str,
                    ) -> dict[str, Any]:
        """Merge-patch descriptive members; ``state: cancelled`` cancels (see :meth:`cancel`)."""
        if "orderRelationship" in order.document:
            raise Conflict(f"serviceOrder {order.document['id']!r} fulfils a product order:"
                           " it changes with that order", id=order.document["id"])
        extra = sorted(set(patch) - _PATCHABLE_ORDER)
        if extra:
            raise Rejected("not-patchable", f"{extra[0]} of a serviceOrder is not patched",
                           attribute=extra[0])
        state = patch.get("state")
        if state is not None and state != order.document.get("state"):
            if state != "cancelled":
                raise Conflict(f"state {state!r} is set by the seller", attribute="state")
            order = ServiceOrder(order.tenant_id, self.cancel(order, actor))
        doc = dict(order.document)
        for key, value in patch.items():
            if key == "state":
                continue
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
        with self._db.transaction():
            self._db.execute("UPDATE market_service_orders SET body = ?, updated_at = ?"
                             " WHERE id = ?", (json.dumps(doc), self._clock().isoformat(),
                                               doc["id"]))
            self._emit("serviceOrdering", "ServiceOrderAttributeValueChangeEvent",
                       "serviceOrder", doc, order.tenant_id)
        return doc

    # -- TMF638 ----------------------------------------------------------------------------

    def create_service(self, tenant_id: str | None, body: dict[str, Any], actor: str,
                       ) -> ServiceRecord:
        """Provision one service now (checks, function, inventory row: one transaction)."""
        if tenant_id is None:
            raise Rejected("no-buyer-tenant", "a service needs an owning tenant")
        if body.get("state", "active") not in ("active", "feasibilityChecked", "designed",
                                                "reserved"):
            raise Rejected("unsupported-state", "a new service is created active",
                           attribute="state")
        step = self._add_step(tenant_id, body, 1)
        provisioner = self._provisioners[step["function"]]
        provisioner.check(tenant_id, step["values"], {"apns": set()})
        at = _iso(self._clock())
        with self._db.transaction(durable=True):
            result = provisioner.provision(tenant_id, step["values"], actor=actor,
                                           reason="TMF638 POST service")
            service: dict[str, Any] = {
                **{k: body[k] for k in ("description", "note", "place") if k in body},
                "id": str(uuid.uuid4()), "name": step["name"], "@type": "Service",
                "category": step["function"], "state": "active", "isServiceEnabled": True,
                "hasStarted": True, "isStateful": True, "startDate": at,
                "serviceSpecification": {**step["spec"], "@referredType": "ServiceSpecification"},
                "serviceCharacteristic": _characteristics(result),
                "relatedParty": [{"id": tenant_id, "role": "customer", "@type": "RelatedParty",
                                  "@referredType": "Organization"}]}
            self._insert(tenant_id, CLIENT_ORDER, service)
            self._audit.append(actor=actor, action="market.service.create",
                               subject=f"service:{service['id']}", outcome="success",
                               tenant_id=tenant_id, details={"function": step["function"]})
        return ServiceRecord(tenant_id, service)

    def patch_service(self, tenant_id: str | None, service_id: str, patch: dict[str, Any],
                      actor: str) -> ServiceRecord:
        """Describe, modify (``serviceCharacteristic``) or terminate (``state``) a service."""
        extra = sorted(set(patch) - _PATCHABLE_SERVICE)
        if extra:
            raise Rejected("not-patchable", f"{extra[0]} of a service is not patched",
                           attribute=extra[0])
        state = patch.get("state")
        if state not in (None, "active", "terminated"):
            raise Conflict(f"a service does not go to {state!r} by PATCH", attribute="state")
        if state == "terminated":
            if "serviceCharacteristic" in patch:
                raise Rejected("not-modifiable", "terminate or modify, not both",
                               attribute="serviceCharacteristic")
            self._terminate(tenant_id, service_id, actor)
        elif "serviceCharacteristic" in patch:
            step = self._change_step(tenant_id, "modify", {
                "id": service_id, "serviceCharacteristic": patch["serviceCharacteristic"]})
            provisioner = self._provisioners[step["function"]]
            with self._db.transaction(durable=True):
                result = provisioner.modify(str(tenant_id), step["before"], step["values"],
                                            actor=actor, reason="TMF638 PATCH service")
                update_service(self._db, self._emit, service_id, tenant_id,
                               {**step["before"], **result}, _iso(self._clock()), None)
        else:
            doc, _ = self._owned(tenant_id, service_id)
            if state == "active" and doc.get("state") != "active":
                raise Conflict(f"service {service_id!r} is {doc.get('state')}",
                               attribute="state")
        doc, _ = self._owned(tenant_id, service_id)
        names = {k: v for k, v in patch.items() if k in ("name", "description")}
        if names:
            for key, value in names.items():
                if value is None:
                    doc.pop(key, None)
                else:
                    doc[key] = value
            with self._db.transaction():
                self._db.execute("UPDATE market_services SET body = ? WHERE id = ?",
                                 (json.dumps(doc), service_id))
                self._emit("serviceInventory", "ServiceAttributeValueChangeEvent", "service",
                           doc, tenant_id)
        return ServiceRecord(tenant_id, doc)

    def _terminate(self, tenant_id: str | None, service_id: str, actor: str) -> None:
        step = self._change_step(tenant_id, "delete", {"id": service_id})
        with self._db.transaction(durable=True):
            self._provisioners[step["function"]].terminate(
                str(tenant_id), step["before"], actor=actor, reason="TMF638 service terminated")
            update_service(self._db, self._emit, service_id, tenant_id, None,
                           _iso(self._clock()), None)
            self._audit.append(actor=actor, action="market.service.terminate",
                               subject=f"service:{service_id}", outcome="success",
                               tenant_id=tenant_id)

    def delete_service(self, tenant_id: str | None, service_id: str, actor: str) -> None:
        """Terminate (when active) and take the service out of the inventory."""
        doc, product_order = self._owned(tenant_id, service_id)
        if doc.get("state") == "active":
            self._terminate(tenant_id, service_id, actor)
        elif product_order != CLIENT_ORDER:
            raise Conflict(f"service {service_id!r} realises a product", id=service_id)
        with self._db.transaction():
            self._db.execute("DELETE FROM market_services WHERE id = ?", (service_id,))
            self._audit.append(actor=actor, action="market.service.delete",
                               subject=f"service:{service_id}", outcome="success",
                               tenant_id=tenant_id)
            self._emit("serviceInventory", "ServiceDeleteEvent", "service", doc, tenant_id)
