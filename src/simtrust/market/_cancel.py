"""TMF622 ``cancelProductOrder`` as an asynchronous task.

TMF622 Product Ordering v4.0.0 and v5.0.0, resource ``CancelProductOrder``
(task states ``TaskStateType``: acknowledged → inProgress → done /
terminatedWithError) and the order states ``assessingCancellation`` and
``pendingCancellation`` (``ProductOrderStateType``; IG1228 order life cycle).

:meth:`Cancellations.request` checks the order can be cancelled (not final:
409 otherwise, nothing written), stores the task ``acknowledged`` and puts the
order (and its open items) in ``assessingCancellation``, in one durable
transaction. :meth:`Cancellations.process` (run after the answer, and for
tasks left by a stopped node) takes it on: an order nothing is provisioning
for becomes ``cancelled`` at once (task ``done``, ``effectiveCancellationDate``);
an order whose service order is running becomes ``pendingCancellation``
(task ``inProgress``) and the orchestrator, which checks the order's state
before every step, undoes the steps done and closes the task with
:func:`close_task`: ``done`` when everything was undone (order ``cancelled``),
``terminatedWithError`` when something cannot be undone (a ledger contract, a
termination; the order ends ``partial`` with the reason). Each change is a
``CancelProductOrderStateChangeEvent`` / ``ProductOrderStateChangeEvent`` on
the hub. Decision: ``docs/decisions/market-async-cancellation.md``.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import InvalidInput, InvalidTransition, NotFound
from simtrust.market._lifecycle import settle_products
from simtrust.market._records import CANCELLABLE, Cancellation, Order, iso, parse_datetime
from simtrust.store import Database

__all__ = ["CANCELLING", "Cancellations", "close_task"]

#: The order states of a cancellation under way.
CANCELLING = frozenset({"assessingCancellation", "pendingCancellation"})
_OPEN_ITEM = frozenset({"acknowledged", "inProgress", "pending", "held"})
_ACTOR = "market-cancellation"
Emit = Callable[[str, str, str, dict[str, Any], "str | None"], None]


def _task_row(db: Database, order_id: str) -> tuple[str, dict[str, Any]] | None:
    row = db.query_one("SELECT id, body FROM market_cancellations WHERE order_id = ?"
                       " ORDER BY created_at DESC, id", (order_id,))
    return None if row is None else (str(row[0]), json.loads(row[1]))


def close_task(db: Database, emit: Emit, order_id: str, tenant_id: str | None, *,
               error: str | None, at: str) -> None:
    """Inside the transaction ending a cancelled run: its task ``done`` or with the error."""
    found = _task_row(db, order_id)
    if found is None:
        return
    task_id, task = found
    if task["state"] in ("done", "terminatedWithError"):
        return
    if error is None:
        task.update(state="done", effectiveCancellationDate=at)
    else:
        task.update(state="terminatedWithError", statusChangeReason=error)
    db.execute("UPDATE market_cancellations SET body = ? WHERE id = ?",
               (json.dumps(task), task_id))
    emit("productOrdering", "CancelProductOrderStateChangeEvent", "cancelProductOrder", task,
         tenant_id)


class Cancellations:
    """cancelProductOrder tasks; see the module docstring."""

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime],
                 emit: Emit, anchor: Callable[[dict[str, Any], str | None], None]) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._emit = emit
        self._anchor = anchor

    def __repr__(self) -> str:
        return f"Cancellations({self._db!r})"

    def request(self, order: Order, body: dict[str, Any], actor: str) -> Cancellation:
        """Accept the cancellation of ``order`` (CancelProductOrder_Create ``body``)."""
        fixed = sorted(set(body) & {"id", "href", "state", "effectiveCancellationDate"})
        if fixed:
            raise InvalidInput(f"{fixed[0]} is set by the server", attribute=fixed[0])
        reason = body.get("cancellationReason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput("cancellationReason must be a string",
                               attribute="cancellationReason")
        if "requestedCancellationDate" in body:
            parse_datetime(body["requestedCancellationDate"], "requestedCancellationDate")
        current = order.state
        if current not in CANCELLABLE:
            raise InvalidTransition(f"an order in state {current} cannot be cancelled",
                                    state=current, target="cancelled")
        now = self._clock()
        doc = copy.deepcopy(order.document)
        doc["state"] = "assessingCancellation"
        if reason is not None:
            doc["cancellationReason"] = reason
        for item in doc["productOrderItem"]:
            if item.get("state") in _OPEN_ITEM:
                item["state"] = "assessingCancellation"
        task = {**body, "id": str(uuid.uuid4()), "state": "acknowledged",
                "@type": body.get("@type", "CancelProductOrder"),
                "productOrder": {"id": doc["id"], "@referredType": "ProductOrder"}}
        with self._db.transaction(durable=True):
            changed = self._db.execute(
                "UPDATE market_orders SET state = ?, body = ?, updated_at = ?"
                " WHERE id = ? AND state = ?",
                (doc["state"], json.dumps(doc), now.isoformat(), doc["id"], current))
            if changed != 1:
                raise InvalidTransition("the order changed concurrently; retry", state=current)
            self._db.execute(
                "INSERT INTO market_cancellations (id, tenant_id, order_id, body, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (task["id"], order.tenant_id, doc["id"], json.dumps(task), now.isoformat()))
            self._audit.append(actor=actor, action="market.productOrder.cancel",
                               subject=f"productOrder:{doc['id']}", outcome="success",
                               tenant_id=order.tenant_id,
                               details={"from": current, "task": task["id"]})
            self._emit("productOrdering", "CancelProductOrderCreateEvent", "cancelProductOrder",
                       task, order.tenant_id)
            self._emit("productOrdering", "ProductOrderStateChangeEvent", "productOrder", doc,
                       order.tenant_id)
        self._anchor(doc, order.tenant_id)
        return Cancellation(order.tenant_id, task)

    def pending(self) -> list[str]:
        """Tasks not taken on yet, oldest first."""
        rows = self._db.query("SELECT id, body FROM market_cancellations"
                              " ORDER BY created_at, id")
        return [str(r[0]) for r in rows if json.loads(r[1])["state"] == "acknowledged"]

    def process(self, task_id: str) -> str:
        """Take on an acknowledged task; its state afterwards."""
        row = self._db.query_one("SELECT tenant_id, order_id, body FROM market_cancellations"
                                 " WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"no cancelProductOrder {task_id!r}", id=task_id)
        tenant_id, order_id, body = row
        task = json.loads(body)
        if task["state"] != "acknowledged":
            return str(task["state"])
        found = self._db.query_one("SELECT state, body FROM market_orders WHERE id = ?",
                                   (order_id,))
        if found is None or found[0] != "assessingCancellation":
            return str(task["state"])
        order = json.loads(found[1])
        running = self._db.query_one(
            "SELECT 1 FROM market_service_orders WHERE product_order_id = ?"
            " AND state = 'inProgress'", (order_id,)) is not None
        now = self._clock()
        at = iso(now)
        if running:
            order["state"] = "pendingCancellation"
            for item in order["productOrderItem"]:
                if item.get("state") == "assessingCancellation":
                    item["state"] = "pendingCancellation"
            task["state"] = "inProgress"
        else:
            order.update(state="cancelled", cancellationDate=at)
            for item in order["productOrderItem"]:
                item["state"] = "cancelled"
            task.update(state="done", effectiveCancellationDate=at)
        with self._db.transaction(durable=True):
            changed = self._db.execute(
                "UPDATE market_orders SET state = ?, body = ?, updated_at = ?"
                " WHERE id = ? AND state = 'assessingCancellation'",
                (order["state"], json.dumps(order), now.isoformat(), order_id))
            if changed != 1:
                return self._state(task_id)
            self._db.execute("UPDATE market_cancellations SET body = ? WHERE id = ?",
                             (json.dumps(task), task_id))
            if order["state"] == "cancelled":
                settle_products(self._db, self._emit, order, tenant_id, at)
            self._audit.append(actor=_ACTOR, action="market.productOrder.update",
                               subject=f"productOrder:{order_id}", outcome="success",
                               tenant_id=tenant_id,
                               details={"from": "assessingCancellation", "to": order["state"],
                                        "task": task_id})
            self._emit("productOrdering", "CancelProductOrderStateChangeEvent",
                       "cancelProductOrder", task, tenant_id)
            self._emit("productOrdering", "ProductOrderStateChangeEvent", "productOrder", order,
                       tenant_id)
        self._anchor(order, tenant_id)
        return str(task["state"])

    def _state(self, task_id: str) -> str:
        row = self._db.query_one("SELECT body FROM market_cancellations WHERE id = ?",
                                 (task_id,))
        return "" if row is None else str(json.loads(row[0])["state"])

    def recover(self) -> int:
        """Take on the tasks a stopped node left acknowledged; how many."""
        pending = self.pending()
        for task_id in pending:
            self.process(task_id)
        return len(pending)
