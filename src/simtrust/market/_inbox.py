"""The buyer's listener: TMF622 / TMF637 events from partner sellers, deduplicated.

TMF630 part 2 (notifications) and the client-side listener operations of the
official files: TMF622 v4.0.0 ``POST /listener/productOrderCreateEvent``,
``…StateChangeEvent``, ``…AttributeValueChangeEvent``, ``…DeleteEvent``,
``…InformationRequiredEvent`` and the ``cancelProductOrder…`` ones; TMF637
v4.0.0 ``POST /listener/productCreateEvent``, ``…StateChangeEvent``,
``…AttributeValueChangeEvent``, ``…BatchEvent``, ``…DeleteEvent``.

A seller with which this operator placed an order (``market_purchases``,
``Federation.order``) delivers its events here, each signed with RFC 9421 by
the seller's DID (the API route verifies the signature and passes the DID in
as ``sender``). An event is applied only to what the sender sold to this
operator: an order event names one of its purchases from that seller, a
product event a product one of those purchases created. Anything else is 404
(the seller may retry: an event can arrive before the buyer has recorded the
order the seller just acknowledged).

Delivery is at least once, so each ``(sender, eventId)`` is recorded in
``market_inbox`` in the transaction that applies the event; a repeat is
acknowledged again and changes nothing. Retries can also reorder events, so a
record takes an event's document only when its ``eventTime`` is not older
than the one it holds, and an order in a final state (``completed``,
``failed``, ``partial``, ``rejected``, ``cancelled``) is not moved back to an
open one. Decision: ``docs/decisions/market-partner-listener.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.market._records import REMOVABLE
from simtrust.store import Database

__all__ = ["LISTENER_EVENTS", "PartnerInbox"]

_ORDER = ("productOrderCreateEvent", "productOrderAttributeValueChangeEvent",
          "productOrderStateChangeEvent", "productOrderDeleteEvent",
          "productOrderInformationRequiredEvent")
_CANCEL = ("cancelProductOrderCreateEvent", "cancelProductOrderStateChangeEvent",
           "cancelProductOrderInformationRequiredEvent")
_PRODUCT = ("productCreateEvent", "productAttributeValueChangeEvent",
            "productStateChangeEvent", "productBatchEvent", "productDeleteEvent")
#: API (``BASE_PATHS`` key) → the listener operations served under its base path.
LISTENER_EVENTS = {"productOrdering": _ORDER + _CANCEL, "productInventory": _PRODUCT}
_RESOURCE = {**dict.fromkeys(_ORDER, "productOrder"),
             **dict.fromkeys(_CANCEL, "cancelProductOrder"),
             **dict.fromkeys(_PRODUCT, "product")}


def _moment(text: Any) -> str:
    if not isinstance(text, str):
        raise InvalidInput("eventTime must be a date-time", attribute="/eventTime")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("eventTime must be a date-time", attribute="/eventTime") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class PartnerInbox:
    """Events from partner sellers applied to this operator's purchases (buyer side)."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self.duplicates = 0

    def __repr__(self) -> str:
        return f"PartnerInbox({self._db!r})"

    def receive(self, sender: str, name: str, event: dict[str, Any]) -> bool:
        """Apply one event from ``sender`` (a verified DID); False for a repeat."""
        resource = _RESOURCE.get(name)
        if resource is None:
            raise NotFound(f"no listener {name!r}")
        event_id = event.get("eventId")
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
            raise InvalidInput("the event needs an eventId", attribute="/eventId")
        kind = event.get("eventType")
        if not isinstance(kind, str) or kind[:1].lower() + kind[1:] != name:
            raise InvalidInput(f"eventType must be {name[:1].upper()}{name[1:]} here",
                               attribute="/eventType")
        at = _moment(event.get("eventTime"))
        payload = event.get("event")
        doc = payload.get(resource) if isinstance(payload, dict) else None
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise InvalidInput(f"the event carries no {resource} with an id",
                               attribute=f"/event/{resource}")
        try:
            with self._db.transaction():
                if resource == "product":
                    order_id = self._product_order(sender, doc)
                else:
                    ref = doc.get("productOrder") if resource == "cancelProductOrder" else doc
                    order_id = self._purchase(sender, ref)
                self._db.execute(
                    "INSERT INTO market_inbox (sender, event_id, event_type, resource_id,"
                    " received_at) VALUES (?, ?, ?, ?, ?)",
                    (sender, event_id, kind, str(doc["id"]), self._clock().isoformat()))
                if resource == "productOrder" and name != "productOrderInformationRequiredEvent":
                    self._apply_order(order_id, doc, at, name == "productOrderDeleteEvent")
                elif resource == "product":
                    self._apply_product(sender, order_id, doc, at, name == "productDeleteEvent")
        except Conflict:
            self.duplicates += 1
            return False
        return True

    def _purchase(self, sender: str, ref: Any) -> str:
        order_id = ref.get("id") if isinstance(ref, dict) else None
        row = None if not isinstance(order_id, str) else self._db.query_one(
            "SELECT seller FROM market_purchases WHERE id = ?", (order_id,))
        if row is None or str(row[0]) != sender:
            raise NotFound(f"no order {order_id!r} bought from this seller", id=str(order_id))
        return str(order_id)

    def _product_order(self, sender: str, product: dict[str, Any]) -> str:
        for item in product.get("productOrderItem") or []:
            if isinstance(item, dict) and isinstance(item.get("productOrderId"), str):
                try:
                    return self._purchase(sender, {"id": item["productOrderId"]})
                except NotFound:
                    continue
        raise NotFound(f"no product {product['id']!r} of an order bought from this seller",
                       id=str(product["id"]))

    def _apply_order(self, order_id: str, doc: dict[str, Any], at: str, deleted: bool) -> None:
        row = self._db.query_one("SELECT body, event_time FROM market_purchases WHERE id = ?",
                                 (order_id,))
        if row is None:  # checked by _purchase in this transaction
            raise NotFound(f"no purchase {order_id!r}", id=order_id)
        held = json.loads(row[0])
        if deleted or (row[1] is not None and at < str(row[1])):
            return
        if held.get("state") in REMOVABLE and doc.get("state") not in REMOVABLE:
            return
        self._db.execute("UPDATE market_purchases SET body = ?, event_time = ? WHERE id = ?",
                         (json.dumps(doc), at, order_id))

    def _apply_product(self, seller: str, order_id: str, doc: dict[str, Any], at: str,
                       deleted: bool) -> None:
        row = self._db.query_one(
            "SELECT event_time FROM market_purchased_products WHERE seller = ? AND id = ?",
            (seller, doc["id"]))
        if row is not None and at < str(row[0]):
            return
        if deleted:
            self._db.execute("DELETE FROM market_purchased_products WHERE seller = ? AND id = ?",
                             (seller, doc["id"]))
        elif row is None:
            self._db.execute(
                "INSERT INTO market_purchased_products (seller, id, order_id, body, event_time)"
                " VALUES (?, ?, ?, ?, ?)", (seller, doc["id"], order_id, json.dumps(doc), at))
        else:
            self._db.execute(
                "UPDATE market_purchased_products SET body = ?, event_time = ?, order_id = ?"
                " WHERE seller = ? AND id = ?", (json.dumps(doc), at, order_id, seller,
                                                 doc["id"]))

    # -- reads --------------------------------------------------------------------------

    def purchase(self, order_id: str) -> dict[str, Any]:
        """This operator's copy of an order it placed with a partner."""
        row = self._db.query_one("SELECT body FROM market_purchases WHERE id = ?", (order_id,))
        if row is None:
            raise NotFound(f"no purchase {order_id!r}", id=order_id)
        doc: dict[str, Any] = json.loads(row[0])
        return doc

    def products(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Products partners created for this operator (all, or those of one order)."""
        if order_id is None:
            rows = self._db.query("SELECT body FROM market_purchased_products ORDER BY id")
        else:
            rows = self._db.query("SELECT body FROM market_purchased_products WHERE order_id = ?"
                                  " ORDER BY id", (order_id,))
        return [json.loads(r[0]) for r in rows]

    def received(self) -> int:
        row = self._db.query_one("SELECT COUNT(*) FROM market_inbox")
        return int(row[0]) if row else 0
