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

Escrow (:class:`~simtrust.streams._escrow.Escrow`): a bid names the token it
is paid in (or the buyer's only deposited token) and is refused (422
``insufficient-deposit``) when the buyer's open bids would commit more than
its balance; the unused deposit can be withdrawn back to the meter's key.
Every clearing-house transfer is signed and recorded before it is submitted,
so :meth:`EnergyMarket.recover` finishes a ``paying`` interval from the
ledger's word after a crash (a transfer the ledger applied is not sent again,
one it never saw is sent) or rolls it back to ``cleared`` when none was made
and none can be. :meth:`EnergyMarket.tick` (recover, then clear every due
interval of every tenant) is what ``simtrust serve`` runs periodically.
Settlement reads a seller's readings from the per-meter index by time
(``stream_readings``), only the readings nearest the interval's bounds.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, InvalidInput, NotFound, Rejected, SimtrustError
from simtrust.ledger import message_id as ledger_message_id
from simtrust.store import Database
from simtrust.streams._energy import Clearing, Order, Trade, clear, delivered_wh, settle
from simtrust.streams._escrow import ClearingHouse, Escrow, bid_cost, send_recorded
from simtrust.streams._service import StreamService
from simtrust.streams._settle_claim import ClaimLost, SettleClaims

__all__ = [
    "DEFAULT_INTERVAL_SECONDS", "DEFAULT_SETTLE_DELAY_SECONDS", "DEFAULT_THRESHOLD", "EnergyMarket",
]

DEFAULT_INTERVAL_SECONDS = 900
#: Readings must score at least this (every default weight but `source` and `anchored`).
DEFAULT_THRESHOLD = Fraction(3, 4)
#: How long after an interval ends the scheduler waits for its closing readings.
DEFAULT_SETTLE_DELAY_SECONDS = 300
_MAX = 2**63 - 1
#: Readings read per step when looking for the trusted reading nearest a bound.
_READING_PAGE = 64

_log = logging.getLogger("simtrust.streams.energy")


class EnergyMarket:
    """Orders, clearings and settlements of one platform's local energy markets."""

    def __init__(self, db: Database, streams: StreamService, audit: AuditLog,
                 clock: Callable[[], datetime], house: ClearingHouse, *,
                 interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
                 threshold: Fraction = DEFAULT_THRESHOLD,
                 settle_delay_seconds: int = DEFAULT_SETTLE_DELAY_SECONDS,
                 lock: threading.Lock | None = None) -> None:
        if interval_seconds <= 0 or not 0 <= threshold <= 1 or settle_delay_seconds < 0:
            raise InvalidInput("the interval is positive, the threshold within [0, 1] and the"
                               " settlement delay not negative")
        self._db = db
        self._streams = streams
        self._audit = audit
        self._clock = clock
        self._house = house
        self.escrow = Escrow(db, audit, clock, house, self._author, lock)
        self.interval_seconds = interval_seconds
        self.threshold = threshold
        self.settle_delay_seconds = settle_delay_seconds
        self._claims = SettleClaims(db, clock)
        streams.meter_registry.index_stored_readings()

    def __repr__(self) -> str:
        return f"EnergyMarket(interval_seconds={self.interval_seconds}, threshold={self.threshold})"

    def with_clock(self, clock: Callable[[], datetime]) -> EnergyMarket:
        """The same market seen from another clock (gate closure is judged by it)."""
        return EnergyMarket(self._db, self._streams, self._audit, clock, self._house,
                            interval_seconds=self.interval_seconds, threshold=self.threshold,
                            settle_delay_seconds=self.settle_delay_seconds,
                            lock=self.escrow.lock)

    def _author(self, tenant: str, meter: str) -> bytes:
        """The key of the meter's channel (the key in its SIM)."""
        found = self._meter(tenant, meter)
        return bytes.fromhex(self._streams.channel(found["channel"])["author"])

    # -- deposits (escrow) ---------------------------------------------------------------

    def deposit(self, tenant: str, *, meter: str, message_id: bytes,
                actor: str) -> dict[str, Any]:
        """Credit a meter with the tokens its finalized transfer paid to the node key."""
        self._meter(tenant, meter)
        paid = self.escrow.deposit(tenant, meter, message_id, actor=actor)
        return {"meter": meter, "message_id": message_id.hex(),
                "deposited": {t.hex(): a for t, a in sorted(paid.items())},
                "balances": self.balances(tenant, meter)}

    def meter_balances(self, tenant: str, meter: str) -> dict[str, int]:
        """:meth:`balances` of a meter of ``tenant`` (another tenant's: not found)."""
        self._meter(tenant, meter)
        return self.balances(tenant, meter)

    def balances(self, tenant: str, meter: str) -> dict[str, int]:
        """Per token: deposits less settlement debits and withdrawals."""
        return self.escrow.balances(tenant, meter)

    def funds(self, tenant: str, meter: str) -> dict[str, Any]:
        """Per token: the balance, what open bids commit, and what can be withdrawn."""
        self._meter(tenant, meter)
        out = {}
        for token, balance in self.balances(tenant, meter).items():
            committed = self.escrow.committed(tenant, meter, token)
            out[token] = {"balance": balance, "committed": committed,
                          "available": max(0, balance - committed)}
        return {"meter": meter, "tokens": out}

    def withdraw(self, tenant: str, *, meter: str, token: bytes, amount: int,
                 actor: str) -> dict[str, Any]:
        """Pay unused deposit back to the meter's key with a ledger transfer (audited)."""
        self._meter(tenant, meter)
        return self.escrow.withdraw(tenant, meter, token, amount, actor=actor)

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
                   price: int, actor: str, token: bytes | None = None) -> dict[str, Any]:
        """Store a bid (``buy``) or offer (``sell``) of a registered, active meter.

        A bid is paid in ``token`` (by default the interval's token, else the buyer's only
        deposited token) and refused when the buyer's bids would commit more than its
        balance in it (``insufficient-deposit``)."""
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
        with self.escrow.lock, self._db.transaction(durable=True):
            if self._state(tenant, start) is not None:
                raise Conflict("the interval is already cleared")
            paid_in = self._bid_token(tenant, start, meter, token) if side == "buy" else None
            if paid_in is not None:
                free = self.escrow.available(tenant, meter, paid_in)
                if bid_cost(wh, price) > free:
                    raise Rejected(
                        "insufficient-deposit",
                        f"this bid can cost {bid_cost(wh, price)} of token {paid_in}; meter"
                        f" {meter}'s deposit has {max(free, 0)} not committed to its open bids:"
                        " deposit more first", token=paid_in, required=bid_cost(wh, price),
                        available=max(free, 0))
            order_id = self._db.insert_returning_id(
                "INSERT INTO energy_orders (tenant_id, interval_start, meter, side, wh, price,"
                " token, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant, start, meter, side, wh, price, paid_in, now.isoformat()))
            self._audit.append(actor=actor, action="energy.order", subject=f"meter:{meter}",
                               outcome="success", reason=f"{side} {wh} Wh at {price} for {start}",
                               tenant_id=tenant)
        return {"order_id": order_id, "interval_start": start, "meter": meter, "side": side,
                "wh": wh, "price": price, "token": paid_in}

    def _interval_token(self, tenant: str, start: int) -> str | None:
        row = self._db.query_one(
            "SELECT token FROM energy_orders WHERE tenant_id = ? AND interval_start = ?"
            " AND side = 'buy' AND token IS NOT NULL LIMIT 1", (tenant, start))
        return None if row is None else str(row[0])

    def _bid_token(self, tenant: str, start: int, meter: str, token: bytes | None) -> str:
        """The token a bid is paid in: one per interval, named or implied by the deposit."""
        fixed = self._interval_token(tenant, start)
        if token is not None:
            if fixed is not None and token.hex() != fixed:
                raise Conflict(f"the interval's bids are paid in token {fixed}",
                               token=fixed)
            return token.hex()
        if fixed is not None:
            return fixed
        held = [t for t, amount in self.balances(tenant, meter).items() if amount > 0]
        if not held:
            raise Rejected("insufficient-deposit",
                           f"meter {meter} has no deposit to bid with: deposit tokens first",
                           required=None, available=0)
        if len(held) > 1:
            raise InvalidInput("the meter holds deposits in several tokens: name the token",
                               field="token")
        return held[0]

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

    def clear_all_due(self, *, actor: str, limit: int = 1_000) -> list[dict[str, Any]]:
        """:meth:`clear_due` for every tenant with orders: the scheduler's clearing step."""
        now = int(self._clock().timestamp())
        tenants = [str(r[0]) for r in self._db.query(
            "SELECT DISTINCT o.tenant_id FROM energy_orders o LEFT JOIN energy_intervals i"
            " ON i.tenant_id = o.tenant_id AND i.interval_start = o.interval_start"
            " WHERE o.interval_start <= ? AND i.interval_start IS NULL ORDER BY o.tenant_id",
            (now,))]
        return [{"tenant_id": t, **c} for t in tenants
                for c in self.clear_due(t, actor=actor, limit=limit)]

    def tick(self, *, actor: str) -> dict[str, Any]:
        """One scheduler step: recover what a crash left half done, clear what is due, then
        settle every cleared interval whose readings had time to arrive."""
        recovered = self.recover(actor=actor)
        cleared = self.clear_all_due(actor=actor)
        settled = self.settle_due(actor=actor)
        return {"recovered": recovered, "cleared": [
            {"tenant_id": c["tenant_id"], "interval_start": c["interval_start"],
             "price": c["price"], "trades": len(c["trades"])} for c in cleared],
            "settled": settled}

    # -- delivery and payment ------------------------------------------------------------

    def readings(self, meter: str, start: int, end: int) -> list[tuple[int, int, Fraction, str]]:
        """``(at, register_wh, score, datum_id)`` of the trusted readings nearest the bounds:
        the last at or before ``start`` and the first at or after ``end`` that score at
        least the threshold (read from the per-meter index by time, page by page)."""
        self._streams.meter(meter)
        out = []
        for where, order, bound in (("at <= ?", "at DESC, register_wh DESC", start),
                                    ("at >= ?", "at, register_wh", end)):
            offset = 0
            while True:
                rows = self._db.query(
                    f"SELECT datum_id, at, register_wh FROM stream_readings WHERE meter = ?"
                    f" AND {where} ORDER BY {order} LIMIT ? OFFSET ?",
                    (meter, bound, _READING_PAGE, offset))
                found = next(((int(at), int(wh), score, str(datum)) for datum, at, wh in rows
                              if (score := self._streams.score(str(datum))) >= self.threshold),
                             None)
                if found is not None:
                    out.append(found)
                if found is not None or len(rows) < _READING_PAGE:
                    break
                offset += _READING_PAGE
        return out

    def settle_interval(self, tenant: str, interval_start: int, *, token: bytes,
                        actor: str) -> dict[str, Any]:
        """Check delivery against the trusted readings and pay the sellers in ``token``.

        The plan is made and the interval claimed (``cleared → paying``) in one durable
        transaction under the tenant's settlement guard, so of any number of settlers in
        any number of processes one pays, once (:class:`SettleClaims`)."""
        start = self._interval(interval_start)
        with self._db.transaction(durable=True):
            self._claims.guard_tenant(tenant)
            plan = self._plan(tenant, start, token)
            claim = self._claims.take_cleared(tenant, start, plan)
        self._pay_plan(tenant, start, plan, claim, actor=actor)
        return self.interval(tenant, start)

    def _plan(self, tenant: str, start: int, token: bytes) -> dict[str, Any]:
        end = start + self.interval_seconds
        state = self._state(tenant, start)
        if state is None:
            raise Conflict("clear the interval before settling it")
        if state["status"] != "cleared":
            raise Conflict(f"the interval is {state['status']}")
        fixed = self._interval_token(tenant, start)
        if fixed is not None and fixed != token.hex():
            raise Conflict(f"the interval's bids are paid in token {fixed}", token=fixed)
        trades = tuple(Trade(s, b, wh) for s, b, wh in state["trades"])
        delivered: dict[str, int] = {}
        refused: dict[str, str] = {}
        for seller in sorted({t.seller for t in trades}):
            usable = [(at, wh, score) for at, wh, score, _ in self.readings(seller, start, end)]
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
        return {
            "token": token.hex(), "threshold": str(self.threshold),
            "delivered_wh": delivered, "refused": refused,
            "payments": [{"buyer": p.buyer, "seller": p.seller, "delivered_wh": p.delivered_wh,
                          "amount": p.amount, "paid": paid}
                         for p, paid in zip(payments, covered, strict=True)],
            "buyers_owe": dict(sorted(owed_by.items())),
            "buyers_paid": {b: a for b, a in sorted(paid_by.items()) if a},
            "unpaid": {b: owed_by[b] - paid_by[b] for b in sorted(owed_by)
                       if owed_by[b] > paid_by[b]},
            "transfers": [{"to_meter": s, "amount": a, "state": "planned"}
                          for s, a in sorted(owed_to.items()) if a],
        }

    def _pay_plan(self, tenant: str, start: int, plan: dict[str, Any], claim: str, *,
                  actor: str) -> None:
        """Make every transfer of a ``paying`` plan not made yet, then mark it ``settled``.

        Each transfer is signed and recorded (bytes and id) under ``claim`` before it is
        submitted; one the ledger applied is never sent again, one it never saw and cannot
        apply is prepared anew. When no transfer was made and one cannot be, the interval
        goes back to ``cleared`` (rolled back); when some were, it stays ``paying`` for the
        next try. A settler that lost its claim stops and changes nothing."""
        token = bytes.fromhex(plan["token"])
        try:
            try:
                for transfer in plan["transfers"]:
                    if transfer.get("state") == "paid":
                        continue
                    if transfer.get("raw"):
                        outcome, sent = send_recorded(self._house, bytes.fromhex(transfer["raw"]))
                        if outcome == "waiting":
                            raise Conflict(f"transfer {sent} is not final yet")
                        if outcome == "paid":
                            transfer.update(state="paid", message_id=sent)
                            self._claims.save(tenant, start, claim, plan)
                            continue
                    # The lock only keeps this process's transfers from picking the same
                    # node-key outputs; the claim is what makes the payment happen once.
                    with self.escrow.lock:
                        raw = self._house.prepare(
                            token, self._author(tenant, transfer["to_meter"]), transfer["amount"])
                        transfer.update(state="sending", raw=raw.hex(),
                                        message_id=ledger_message_id(raw).hex())
                        self._claims.save(tenant, start, claim, plan)
                        outcome, sent = send_recorded(self._house, raw)
                    if outcome != "paid":
                        raise Conflict(f"transfer {transfer['message_id']} was not applied")
                    transfer.update(state="paid")
                    self._claims.save(tenant, start, claim, plan)
            except ClaimLost:
                raise
            except SimtrustError as exc:
                self._unwind(tenant, start, plan, claim, exc, actor=actor)
                raise
            with self._db.transaction(durable=True):
                changed = self._db.execute(
                    "UPDATE energy_intervals SET status = 'settled', payments = ?,"
                    " settled_at = ?, payer = NULL, lease_until = NULL WHERE tenant_id = ?"
                    " AND interval_start = ? AND status = 'paying' AND payer = ?",
                    (json.dumps(plan), self._clock().isoformat(), tenant, start, claim))
                if changed == 0:
                    raise ClaimLost("another settler took this interval over")
                self._audit.append(actor=actor, action="energy.settle",
                                   subject=f"interval:{start}", outcome="success",
                                   reason=f"{len(plan['transfers'])} transfers",
                                   tenant_id=tenant)
        finally:
            self._claims.release(claim)

    def _unwind(self, tenant: str, start: int, plan: dict[str, Any], claim: str,
                exc: SimtrustError, *, actor: str) -> None:
        """After a failed transfer: roll back to ``cleared`` if the ledger holds none of the
        plan's transfers (and none may still land), else leave ``paying`` for a retry."""
        for transfer in plan["transfers"]:
            if transfer.get("state") == "sending":
                outcome, _ = send_recorded(self._house, bytes.fromhex(transfer["raw"]))
                transfer["state"] = {"paid": "paid", "void": "void"}.get(outcome, "sending")
        made = [t for t in plan["transfers"] if t.get("state") in ("paid", "sending")]
        with self._db.transaction(durable=True):
            if made:
                changed = self._db.execute(
                    "UPDATE energy_intervals SET payments = ?, payer = NULL, lease_until = NULL"
                    " WHERE tenant_id = ? AND interval_start = ? AND status = 'paying'"
                    " AND payer = ?", (json.dumps(plan), tenant, start, claim))
            else:
                changed = self._db.execute(
                    "UPDATE energy_intervals SET status = 'cleared', payments = NULL,"
                    " payer = NULL, lease_until = NULL WHERE tenant_id = ? AND"
                    " interval_start = ? AND status = 'paying' AND payer = ?",
                    (tenant, start, claim))
            if changed:
                self._audit.append(actor=actor, action="energy.settle.rollback" if not made
                                   else "energy.settle.incomplete", subject=f"interval:{start}",
                                   outcome="failure", reason=exc.detail[:200], tenant_id=tenant)

    def settle_due(self, *, actor: str, limit: int = 100) -> list[dict[str, Any]]:
        """Settle every cleared interval that ended ``settle_delay_seconds`` ago (the
        meters' readings after it had time to arrive), oldest first: the scheduler's step.
        An interval another settler holds is left to it; one whose bids name no token
        (stored before bids named one) is left to ``energy settle``."""
        now = int(self._clock().timestamp())
        due = now - self.interval_seconds - self.settle_delay_seconds
        done: list[dict[str, Any]] = []
        for row in self._db.query(
                "SELECT tenant_id, interval_start FROM energy_intervals WHERE status = 'cleared'"
                " AND interval_start <= ? ORDER BY interval_start, tenant_id LIMIT ?",
                (due, max(1, min(limit, 10_000)))):
            tenant, start = str(row[0]), int(row[1])
            token = self._interval_token(tenant, start)
            state = self._state(tenant, start)
            if token is None and (state is None or state["trades"]):
                _log.warning("interval %s of %s names no token: settle it by hand", start,
                             tenant)
                continue
            try:
                result = self.settle_interval(tenant, start, token=bytes.fromhex(token or ""),
                                              actor=actor)
            except ClaimLost:
                continue
            except SimtrustError as exc:
                _log.warning("interval %s of %s not settled: %s", start, tenant, exc.detail)
                continue
            done.append({"tenant_id": tenant, "interval_start": start,
                         "status": result["status"]})
        return done

    def recover(self, *, actor: str) -> list[dict[str, Any]]:
        """Finish (or roll back) every interval a crash left ``paying`` and every withdrawal
        left ``sending``, from what the ledger holds: run at start and by the scheduler."""
        done: list[dict[str, Any]] = []
        for tenant, start in self._db.query(
                "SELECT tenant_id, interval_start FROM energy_intervals"
                " WHERE status = 'paying' ORDER BY tenant_id, interval_start"):
            taken = self._claims.take_paying(str(tenant), int(start))
            if taken is None:  # its settler is still at work (another process, or thread)
                continue
            claim, plan = taken
            try:
                self._pay_plan(str(tenant), int(start), plan, claim, actor=actor)
            except SimtrustError as exc:
                _log.warning("interval %s of %s not settled yet: %s", start, tenant, exc.detail)
            state = self._state(str(tenant), int(start))
            done.append({"tenant_id": tenant, "interval_start": int(start),
                         "status": None if state is None else state["status"]})
        done += [{"withdrawal": w["withdrawal_id"], "status": w["status"]}
                 for w in self.escrow.recover_withdrawals(actor=actor)]
        return done
