"""The local energy market, stored: orders per interval, a periodic clearing, delivery
from the stored meter readings, payment in a settlement token per interval.

Prosumers are registered meters (docs/streams.md "Meter identity"); each posts
bids and offers for a metering interval of ``interval_seconds`` starting at a
multiple of it (Unix seconds, UTC). Orders are accepted until the interval
starts (gate closure); once it started the interval is cleared once (on demand,
or by :meth:`EnergyMarket.clear_due` from a periodic job), with
:func:`~simtrust.streams.clear` (uniform price, k = ½), and the clearing is
stored. After the interval, delivery is read from the seller's stored readings
(cumulative registers in the frames of its meter channel) that score at least
the market's threshold under the tenant's confidence weights
(:func:`~simtrust.streams.delivered_wh`): a reading below it does not count,
and without trusted readings bracketing the interval the seller delivered
nothing. Each trade is paid for what was delivered (:func:`~simtrust.streams.settle`).

Payment (docs/decisions/streams-energy-market.md): the platform's node key is
the market's clearing house, holding the buyers' deposits in escrow. A buyer
deposits tokens with an ordinary transfer from its meter channel's key to the
node key and registers the finalized transfer (:meth:`EnergyMarket.deposit`,
counted once). Per interval the clearing house pays every seller what the
buyers' deposits cover of its trades, with one transfer of the settlement token
per seller (one micropayment output per seller and interval, docs/settlement.md
"Micropayments"), to the key of the seller's meter channel (the key in its
SIM); what a buyer's deposit does not cover is recorded as ``unpaid``, never
advanced. A settlement is recorded ``paying`` with its planned transfers (and
the buyers' debits) before the first transfer and ``settled`` after the last,
so a crash in between is visible and never pays twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, DecodeError, InvalidInput, NotFound
from simtrust.store import Database
from simtrust.streams._energy import Clearing, Order, Trade, clear, delivered_wh, settle
from simtrust.streams._frame import FrameKind, decode_frame
from simtrust.streams._meter import decode_reading
from simtrust.streams._service import StreamService

__all__ = ["DEFAULT_INTERVAL_SECONDS", "DEFAULT_THRESHOLD", "EnergyMarket"]

DEFAULT_INTERVAL_SECONDS = 900
#: Readings must score at least this (every default weight but `source` and `anchored`).
DEFAULT_THRESHOLD = Fraction(3, 4)
_MAX = 2**63 - 1

#: ``pay(token, to_public_key, amount) -> message id`` once finalized (the runtime's ledger).
PayFn = Callable[[bytes, bytes, int], bytes]
#: ``received(message_id) -> (issuer key, {token: amount paid to the node key})`` of a
#: finalized ledger transaction; raises NotFound / Conflict when it is not one.
ReceivedFn = Callable[[bytes], tuple[bytes, dict[bytes, int]]]


class EnergyMarket:
    """Orders, clearings and settlements of one platform's local energy markets."""

    def __init__(self, db: Database, streams: StreamService, audit: AuditLog,
                 clock: Callable[[], datetime], pay: PayFn, received: ReceivedFn, *,
                 interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
                 threshold: Fraction = DEFAULT_THRESHOLD) -> None:
        if interval_seconds <= 0 or not 0 <= threshold <= 1:
            raise InvalidInput("the interval is positive and the threshold within [0, 1]")
        self._db = db
        self._streams = streams
        self._audit = audit
        self._clock = clock
        self._pay = pay
        self._received = received
        self.interval_seconds = interval_seconds
        self.threshold = threshold

    def __repr__(self) -> str:
        return f"EnergyMarket(interval_seconds={self.interval_seconds}, threshold={self.threshold})"

    def with_clock(self, clock: Callable[[], datetime]) -> EnergyMarket:
        """The same market seen from another clock (gate closure is judged by it)."""
        return EnergyMarket(self._db, self._streams, self._audit, clock, self._pay,
                            self._received, interval_seconds=self.interval_seconds,
                            threshold=self.threshold)

    # -- deposits (escrow) ---------------------------------------------------------------

    def deposit(self, tenant: str, *, meter: str, message_id: bytes,
                actor: str) -> dict[str, Any]:
        """Credit a meter with the tokens its finalized transfer paid to the node key."""
        found = self._meter(tenant, meter)
        author = bytes.fromhex(self._streams.channel(found["channel"])["author"])
        issuer, paid = self._received(message_id)
        if issuer != author:
            raise Conflict("the transfer was not made by the meter's key")
        if not paid:
            raise Conflict("the transfer paid no token to the market")
        now = self._clock().isoformat()
        with self._db.transaction(durable=True):
            if self._db.query_one("SELECT 1 FROM energy_deposits WHERE message_id = ?",
                                  (message_id.hex(),)):
                raise Conflict("this transfer is registered already")
            for token, amount in sorted(paid.items()):
                self._db.execute(
                    "INSERT INTO energy_deposits (message_id, token, tenant_id, meter, amount,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (message_id.hex(), token.hex(), tenant, meter, amount, now))
            self._audit.append(actor=actor, action="energy.deposit", subject=f"meter:{meter}",
                               outcome="success", reason=f"transfer {message_id.hex()}",
                               tenant_id=tenant)
        return {"meter": meter, "message_id": message_id.hex(),
                "deposited": {t.hex(): a for t, a in sorted(paid.items())},
                "balances": self.balances(tenant, meter)}

    def meter_balances(self, tenant: str, meter: str) -> dict[str, int]:
        """:meth:`balances` of a meter of ``tenant`` (another tenant's: not found)."""
        self._meter(tenant, meter)
        return self.balances(tenant, meter)

    def balances(self, tenant: str, meter: str) -> dict[str, int]:
        """Per token: deposits minus what settlements debited."""
        rows = self._db.query(
            "SELECT token, SUM(amount) FROM energy_deposits WHERE tenant_id = ? AND meter = ?"
            " GROUP BY token", (tenant, meter))
        out = {str(r[0]): int(r[1]) for r in rows}
        for (payments,) in self._db.query(
                "SELECT payments FROM energy_intervals WHERE tenant_id = ? AND payments IS NOT"
                " NULL", (tenant,)):
            plan = json.loads(payments)
            debit = int(plan.get("buyers_paid", {}).get(meter, 0))
            if debit:
                out[plan["token"]] = out.get(plan["token"], 0) - debit
        return dict(sorted(out.items()))

    # -- orders --------------------------------------------------------------------------

    def _interval(self, start: int) -> int:
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= _MAX:
            raise InvalidInput("an interval starts at a non-negative Unix second")
        if start % self.interval_seconds:
            raise InvalidInput(f"an interval starts at a multiple of {self.interval_seconds} s")
        return start

    def _state(self, tenant: str, start: int) -> dict[str, Any] | None:
        row = self._db.query_one(
            "SELECT status, price, trades, payments, cleared_at, settled_at"
            " FROM energy_intervals WHERE tenant_id = ? AND interval_start = ?", (tenant, start))
        if row is None:
            return None
        return {"status": row[0], "price": row[1], "trades": json.loads(row[2]),
                "payments": json.loads(row[3]) if row[3] else None,
                "cleared_at": row[4], "settled_at": row[5]}

    def _meter(self, tenant: str, meter: str) -> dict[str, Any]:
        missing = NotFound(f"no meter {meter}")
        try:
            found = self._streams.meter(meter)
        except NotFound:
            raise missing from None
        if found["tenant_id"] != tenant:
            raise missing
        return found

    def post_order(self, tenant: str, *, interval_start: int, meter: str, side: str, wh: int,
                   price: int, actor: str) -> dict[str, Any]:
        """Store a bid (``buy``) or offer (``sell``) of a registered, active meter."""
        start = self._interval(interval_start)
        for value, what in ((wh, "wh"), (price, "price")):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX:
                raise InvalidInput(f"{what} must be an integer from 0 to 2^63-1")
        Order(meter, side, wh, price)  # validates side, energy and price
        found = self._meter(tenant, meter)
        if found["status"] != "active":
            raise Conflict(f"meter {meter} is {found['status']}: it may not trade")
        now = self._clock()
        if now.timestamp() >= start:
            raise Conflict("the interval has started: its gate is closed")
        with self._db.transaction(durable=True):
            if self._state(tenant, start) is not None:
                raise Conflict("the interval is already cleared")
            order_id = self._db.insert_returning_id(
                "INSERT INTO energy_orders (tenant_id, interval_start, meter, side, wh, price,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tenant, start, meter, side, wh, price, now.isoformat()))
            self._audit.append(actor=actor, action="energy.order", subject=f"meter:{meter}",
                               outcome="success", reason=f"{side} {wh} Wh at {price} for {start}",
                               tenant_id=tenant)
        return {"order_id": order_id, "interval_start": start, "meter": meter, "side": side,
                "wh": wh, "price": price}

    def orders(self, tenant: str, interval_start: int) -> list[dict[str, Any]]:
        start = self._interval(interval_start)
        rows = self._db.query(
            "SELECT id, meter, side, wh, price FROM energy_orders"
            " WHERE tenant_id = ? AND interval_start = ? ORDER BY id", (tenant, start))
        return [{"order_id": r[0], "meter": r[1], "side": r[2], "wh": r[3], "price": r[4]}
                for r in rows]

    # -- clearing ------------------------------------------------------------------------

    def interval(self, tenant: str, interval_start: int) -> dict[str, Any]:
        """The interval's orders, and its clearing and settlement once they happened."""
        start = self._interval(interval_start)
        state = self._state(tenant, start) or {"status": "open", "price": None, "trades": [],
                                               "payments": None, "cleared_at": None,
                                               "settled_at": None}
        return {"interval_start": start, "interval_end": start + self.interval_seconds,
                **state, "orders": self.orders(tenant, start)}

    def clear_interval(self, tenant: str, interval_start: int, *, actor: str) -> dict[str, Any]:
        """Clear the interval once its gate closed; a second call answers the stored result."""
        start = self._interval(interval_start)
        if self._clock().timestamp() < start:
            raise Conflict("the interval's gate closes when it starts; clear it after")
        with self._db.transaction(durable=True):
            if self._state(tenant, start) is None:
                orders = [Order(o["meter"], o["side"], o["wh"], o["price"])
                          for o in self.orders(tenant, start)]
                result = clear(orders)
                trades = [[t.seller, t.buyer, t.wh] for t in result.trades]
                self._db.execute(
                    "INSERT INTO energy_intervals (tenant_id, interval_start, status, price,"
                    " trades, cleared_at) VALUES (?, ?, 'cleared', ?, ?, ?)",
                    (tenant, start, result.price, json.dumps(trades), self._clock().isoformat()))
                self._audit.append(actor=actor, action="energy.clear",
                                   subject=f"interval:{start}", outcome="success",
                                   reason=f"price {result.price}, {len(trades)} trades",
                                   tenant_id=tenant)
        return self.interval(tenant, start)

    def clear_due(self, tenant: str, *, actor: str, limit: int = 1_000) -> list[dict[str, Any]]:
        """Clear every interval of ``tenant`` whose gate closed and that has orders but no
        clearing yet, oldest first: what a periodic job (a timer, ``energy clear-due``) runs."""
        now = int(self._clock().timestamp())
        rows = self._db.query(
            "SELECT DISTINCT o.interval_start FROM energy_orders o LEFT JOIN energy_intervals i"
            " ON i.tenant_id = o.tenant_id AND i.interval_start = o.interval_start"
            " WHERE o.tenant_id = ? AND o.interval_start <= ? AND i.interval_start IS NULL"
            " ORDER BY o.interval_start LIMIT ?", (tenant, now, max(1, min(limit, 10_000))))
        return [self.clear_interval(tenant, int(r[0]), actor=actor) for r in rows]

    # -- delivery and payment ------------------------------------------------------------

    def readings(self, meter: str) -> list[tuple[int, int, Fraction, str]]:
        """``(at, register_wh, score, datum_id)`` of every stored reading of ``meter``."""
        channel = self._streams.meter(meter)["channel"]
        rows = self._db.query(
            "SELECT f.message_id, f.frame FROM stream_frames f JOIN stream_data d"
            " ON d.datum_id = f.message_id WHERE f.channel = ? AND f.kind = ? ORDER BY f.pos",
            (channel, int(FrameKind.DATA)))
        out = []
        for message_id, raw in rows:
            try:
                frame = decode_frame(bytes(raw))
                if frame.encrypted or frame.key_epoch:
                    continue  # a private channel's reading: the platform cannot read it
                reading = decode_reading(frame.payload)
            except DecodeError:
                continue
            if reading.meter == meter:
                out.append((reading.at, reading.register_wh,
                            self._streams.score(str(message_id)), str(message_id)))
        return out

    def settle_interval(self, tenant: str, interval_start: int, *, token: bytes,
                        actor: str) -> dict[str, Any]:
        """Check delivery against the trusted readings and pay the sellers in ``token``."""
        start = self._interval(interval_start)
        end = start + self.interval_seconds
        state = self._state(tenant, start)
        if state is None:
            raise Conflict("clear the interval before settling it")
        if state["status"] != "cleared":
            raise Conflict(f"the interval is {state['status']}")
        trades = tuple(Trade(s, b, wh) for s, b, wh in state["trades"])
        delivered: dict[str, int] = {}
        refused: dict[str, str] = {}
        for seller in sorted({t.seller for t in trades}):
            usable = [(at, wh, score) for at, wh, score, _ in self.readings(seller)]
            try:
                delivered[seller] = delivered_wh(usable, start, end, self.threshold)
            except InvalidInput as exc:
                delivered[seller], refused[seller] = 0, exc.detail
        payments = settle(Clearing(state["price"], trades), delivered, lambda *_: None)
        owed_to: dict[str, int] = defaultdict(int)
        owed_by: dict[str, int] = defaultdict(int)
        paid_by: dict[str, int] = defaultdict(int)
        covered: list[int] = []
        available = {b: self.balances(tenant, b).get(token.hex(), 0)
                     for b in {p.buyer for p in payments}}
        for p in payments:  # in trade order: a buyer's deposit covers its trades in turn
            amount = min(p.amount, max(0, available[p.buyer]))
            available[p.buyer] -= amount
            covered.append(amount)
            owed_to[p.seller] += amount
            owed_by[p.buyer] += p.amount
            paid_by[p.buyer] += amount
        transfers: list[dict[str, Any]] = [
            {"to_meter": s, "amount": a} for s, a in sorted(owed_to.items()) if a]
        plan: dict[str, Any] = {
            "token": token.hex(), "threshold": str(self.threshold),
            "delivered_wh": delivered, "refused": refused,
            "payments": [{"buyer": p.buyer, "seller": p.seller, "delivered_wh": p.delivered_wh,
                          "amount": p.amount, "paid": paid}
                         for p, paid in zip(payments, covered, strict=True)],
            "buyers_owe": dict(sorted(owed_by.items())),
            "buyers_paid": {b: a for b, a in sorted(paid_by.items()) if a},
            "unpaid": {b: owed_by[b] - paid_by[b] for b in sorted(owed_by)
                       if owed_by[b] > paid_by[b]},
            "transfers": transfers,
        }
        with self._db.transaction(durable=True):
            changed = self._db.execute(
                "UPDATE energy_intervals SET status = 'paying', payments = ?"
                " WHERE tenant_id = ? AND interval_start = ? AND status = 'cleared'",
                (json.dumps(plan), tenant, start))
            if changed == 0:
                raise Conflict("the interval is being settled already")
        for transfer in transfers:
            author = bytes.fromhex(self._streams.channel(
                self._streams.meter(transfer["to_meter"])["channel"])["author"])
            transfer["message_id"] = self._pay(token, author, transfer["amount"]).hex()
        with self._db.transaction(durable=True):
            self._db.execute(
                "UPDATE energy_intervals SET status = 'settled', payments = ?, settled_at = ?"
                " WHERE tenant_id = ? AND interval_start = ?",
                (json.dumps(plan), self._clock().isoformat(), tenant, start))
            self._audit.append(actor=actor, action="energy.settle", subject=f"interval:{start}",
                               outcome="success", reason=f"{len(transfers)} transfers",
                               tenant_id=tenant)
        return self.interval(tenant, start)
