"""The energy market's escrow: deposits, what open bids commit, withdrawals, and the
clearing house's ledger transfers made so that a crash never pays twice.

The node key is the clearing house (docs/decisions/streams-energy-market.md). A
buyer's balance per token is its registered deposits, less what settlements
debited, less its withdrawals. What its bids commit is, per token, the most each
open bid can cost (``wh × price / 1000`` rounded up: the clearing price is never
above the bid) and, for cleared intervals not yet settled, what its trades cost
at the clearing price (rounded half up, as ``settle`` pays). A bid is accepted
only while the commitments stay within the balance, and only the rest (the
unused deposit) can be withdrawn.

Every transfer from the clearing house follows one protocol
(:meth:`ClearingHouse.prepare`, record, :meth:`ClearingHouse.submit`): the
signed transfer is built first, its bytes and id are stored durably, and only
then is it submitted to the ledger. After a crash the stored id says whether the
ledger applied it (finalized: done), and the stored bytes can be submitted again
(the same message: the ledger applies it at most once); a transfer the ledger
never saw and can no longer apply is void. Withdrawals are transfers back to the
key of the meter's channel (the key in its SIM), audited.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, InvalidInput, Rejected, SimtrustError
from simtrust.ledger import LedgerNode, Transaction, message_id
from simtrust.store import Database

__all__ = ["ClearingHouse", "Escrow", "NodeClearingHouse", "bid_cost", "trade_cost"]

_MAX = 2**63 - 1


def bid_cost(wh: int, price: int) -> int:
    """The most a bid can cost: ``wh × price / 1000`` rounded up (price per kWh)."""
    return -(-wh * price // 1000)


def trade_cost(wh: int, price: int) -> int:
    """What ``wh`` cost at the clearing price, rounded half up (as ``settle`` pays)."""
    return (wh * price * 2 + 1000) // 2000


class ClearingHouse(Protocol):
    """The ledger as the market uses it: transfers from the clearing-house key."""

    def prepare(self, token: bytes, to: bytes, amount: int) -> bytes:
        """A signed transfer of ``amount`` of ``token`` to ``to`` (not submitted)."""

    def submit(self, raw: bytes) -> bytes:
        """Submit a prepared transfer; its id once finalized, else raise."""

    def state(self, message: bytes) -> str:
        """``unknown``, ``pending``, ``solid``, ``finalized`` or ``conflicting``."""

    def received(self, message: bytes) -> tuple[bytes, dict[bytes, int]]:
        """``(issuer, {token: amount paid to the clearing house})`` of a finalized transfer."""


class NodeClearingHouse:
    """:class:`ClearingHouse` over a ledger node, its node key the clearing house."""

    def __init__(self, node: LedgerNode) -> None:
        self._node = node

    def __repr__(self) -> str:
        return f"NodeClearingHouse({self._node.signer.public_key.hex()[:16]}…)"

    def prepare(self, token: bytes, to: bytes, amount: int) -> bytes:
        return self._node.build_transfer(self._node.signer, to, amount, token=token)

    def submit(self, raw: bytes) -> bytes:
        result = self._node.submit(raw)
        sent = result.message_id or message_id(raw)
        state = self._node.status(sent)
        if state.get("state") != "finalized":
            raise Rejected(str(state.get("reason") or state.get("state")),
                           f"the transfer is {state.get('state')}, not finalized")
        return sent

    def state(self, message: bytes) -> str:
        return str(self._node.status(message).get("state"))

    def received(self, message: bytes) -> tuple[bytes, dict[bytes, int]]:
        if self.state(message) != "finalized":
            raise Conflict(f"the transfer is {self.state(message)}, not finalized")
        found = self._node.get_message(message)
        if not isinstance(found.body, Transaction):
            raise Conflict("the message is not a transaction")
        paid: dict[bytes, int] = {}
        for output in found.body.outputs:
            if output.owner == self._node.signer.public_key:
                for token, amount in output.tokens:
                    paid[token] = paid.get(token, 0) + amount
        return found.issuer, paid


def send_recorded(house: ClearingHouse, raw: bytes) -> tuple[str, str | None]:
    """Finish a recorded transfer: ``("paid", id)``, ``("void", None)`` when the ledger never
    applied it and cannot now, ``("waiting", id)`` while it is not final yet."""
    sent = message_id(raw)
    state = house.state(sent)
    if state == "finalized":
        return "paid", sent.hex()
    if state in ("pending", "solid"):
        return "waiting", sent.hex()
    if state == "conflicting":
        return "void", None
    try:
        return "paid", house.submit(raw).hex()
    except SimtrustError:
        return ("void", None) if house.state(sent) in ("unknown", "conflicting") else (
            "waiting", sent.hex())


class Escrow:
    """Deposits, balances, bid commitments and withdrawals of a platform's energy markets."""

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime],
                 house: ClearingHouse, author_of: Callable[[str, str], bytes],
                 lock: threading.Lock | None = None) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self.house = house
        self._author_of = author_of  # (tenant, meter) -> the meter channel's key
        #: One clearing-house transfer at a time: a prepared transfer spends the node
        #: key's outputs, which the next one must not pick again.
        self.lock = lock or threading.Lock()

    def __repr__(self) -> str:
        return f"Escrow({self.house!r})"

    def deposit(self, tenant: str, meter: str, message: bytes, *,
                actor: str) -> dict[bytes, int]:
        """Credit a meter with the tokens its finalized transfer paid to the clearing house."""
        issuer, paid = self.house.received(message)
        if issuer != self._author_of(tenant, meter):
            raise Conflict("the transfer was not made by the meter's key")
        if not paid:
            raise Conflict("the transfer paid no token to the market")
        now = self._clock().isoformat()
        with self._db.transaction(durable=True):
            if self._db.query_one("SELECT 1 FROM energy_deposits WHERE message_id = ?",
                                  (message.hex(),)):
                raise Conflict("this transfer is registered already")
            for token, amount in sorted(paid.items()):
                self._db.execute(
                    "INSERT INTO energy_deposits (message_id, token, tenant_id, meter, amount,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (message.hex(), token.hex(), tenant, meter, amount, now))
            self._audit.append(actor=actor, action="energy.deposit", subject=f"meter:{meter}",
                               outcome="success", reason=f"transfer {message.hex()}",
                               tenant_id=tenant)
        return paid

    def balances(self, tenant: str, meter: str) -> dict[str, int]:
        """Per token: deposits, less settlement debits, less withdrawals not void."""
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
        for token, amount in self._db.query(
                "SELECT token, SUM(amount) FROM energy_withdrawals WHERE tenant_id = ?"
                " AND meter = ? AND status <> 'void' GROUP BY token", (tenant, meter)):
            out[str(token)] = out.get(str(token), 0) - int(amount)
        return dict(sorted(out.items()))

    def committed(self, tenant: str, meter: str, token: str) -> int:
        """What the meter's bids in ``token`` can still cost: open bids at their limit,
        cleared-but-unsettled intervals at the clearing price."""
        total = 0
        for wh, price in self._db.query(
                "SELECT o.wh, o.price FROM energy_orders o LEFT JOIN energy_intervals i"
                " ON i.tenant_id = o.tenant_id AND i.interval_start = o.interval_start"
                " WHERE o.tenant_id = ? AND o.meter = ? AND o.side = 'buy' AND o.token = ?"
                " AND i.interval_start IS NULL", (tenant, meter, token)):
            total += bid_cost(int(wh), int(price))
        for price, trades in self._db.query(
                "SELECT i.price, i.trades FROM energy_intervals i WHERE i.tenant_id = ?"
                " AND i.status = 'cleared' AND i.price IS NOT NULL AND EXISTS (SELECT 1 FROM"
                " energy_orders o WHERE o.tenant_id = i.tenant_id AND o.interval_start ="
                " i.interval_start AND o.meter = ? AND o.side = 'buy' AND o.token = ?)",
                (tenant, meter, token)):
            total += sum(trade_cost(int(wh), int(price))
                         for _seller, buyer, wh in json.loads(trades) if buyer == meter)
        return total

    def available(self, tenant: str, meter: str, token: str) -> int:
        """The unused deposit: balance less what bids commit."""
        return self.balances(tenant, meter).get(token, 0) - self.committed(tenant, meter, token)

    def withdraw(self, tenant: str, meter: str, token: bytes, amount: int, *,
                 actor: str) -> dict[str, Any]:
        """Pay ``amount`` of the unused deposit back to the meter's key, on the ledger."""
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= _MAX:
            raise InvalidInput("the amount is an integer from 1 to 2^63-1", field="amount")
        to = self._author_of(tenant, meter)
        now = self._clock().isoformat()
        with self.lock:
            with self._db.transaction(durable=True):
                free = self.available(tenant, meter, token.hex())
                if amount > free:
                    raise Rejected("insufficient-deposit",
                                   f"meter {meter} has {max(free, 0)} of token {token.hex()}"
                                   " not committed to bids; it cannot withdraw"
                                   f" {amount}", available=max(free, 0), requested=amount)
                raw = self.house.prepare(token, to, amount)
                sent = message_id(raw).hex()
                withdrawal = self._db.insert_returning_id(
                    "INSERT INTO energy_withdrawals (tenant_id, meter, token, amount, status,"
                    " raw, message_id, created_at) VALUES (?, ?, ?, ?, 'sending', ?, ?, ?)",
                    (tenant, meter, token.hex(), amount, raw.hex(), sent, now))
                self._audit.append(actor=actor, action="energy.withdraw",
                                   subject=f"meter:{meter}", outcome="success",
                                   reason=f"{amount} of {token.hex()} in {sent}",
                                   tenant_id=tenant)
            outcome, _ = send_recorded(self.house, raw)
            self._finish_withdrawal(withdrawal, outcome, actor)
        return self.withdrawal(withdrawal)

    def _finish_withdrawal(self, withdrawal: int, outcome: str, actor: str) -> None:
        if outcome == "waiting":
            return
        row = self._db.query_one("SELECT tenant_id, meter FROM energy_withdrawals WHERE id = ?",
                                 (withdrawal,))
        assert row is not None
        with self._db.transaction(durable=True):
            self._db.execute("UPDATE energy_withdrawals SET status = ?, done_at = ? WHERE id = ?"
                             " AND status = 'sending'",
                             (outcome, self._clock().isoformat(), withdrawal))
            self._audit.append(actor=actor, action=f"energy.withdraw.{outcome}",
                               subject=f"meter:{row[1]}", outcome="success"
                               if outcome == "paid" else "failure",
                               reason=f"withdrawal {withdrawal}", tenant_id=row[0])

    def withdrawal(self, withdrawal: int) -> dict[str, Any]:
        row = self._db.query_one(
            "SELECT id, tenant_id, meter, token, amount, status, message_id, created_at, done_at"
            " FROM energy_withdrawals WHERE id = ?", (withdrawal,))
        if row is None:
            raise InvalidInput(f"no withdrawal {withdrawal}")
        return {"withdrawal_id": int(row[0]), "tenant_id": row[1], "meter": row[2],
                "token": row[3], "amount": int(row[4]), "status": row[5],
                "message_id": row[6], "created_at": row[7], "done_at": row[8],
                "balances": self.balances(str(row[1]), str(row[2]))}

    def recover_withdrawals(self, *, actor: str) -> list[dict[str, Any]]:
        """Finish or void every withdrawal a crash left ``sending``, from the ledger's word."""
        done = []
        with self.lock:
            for withdrawal, raw in self._db.query(
                    "SELECT id, raw FROM energy_withdrawals WHERE status = 'sending' ORDER BY id"):
                outcome, _ = send_recorded(self.house, bytes.fromhex(str(raw)))
                self._finish_withdrawal(int(withdrawal), outcome, actor)
                done.append(self.withdrawal(int(withdrawal)))
        return done
