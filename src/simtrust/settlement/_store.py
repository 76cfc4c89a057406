"""Settlement statements kept per period (``settlement_statements``), read back for netting.

A tenant stores the signed statements of a period (the JSON ``simtrust settle``
writes) after they pass the netting rules and the signature rule of
``POST /v1/settlement/net`` (:func:`check_statements`); the positions before
and after netting are then computed from what is stored, every time, with
:func:`~simtrust.settlement.net_statements`. The same statement stored by both
of its parties is one obligation: a view over several owners counts each
``statement_id`` once. Storing is durable before it is acknowledged.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from simtrust.errors import InvalidInput
from simtrust.settlement._netting import net_statements
from simtrust.settlement._statement import statement_id, verify_statement
from simtrust.store import Database

__all__ = ["PERIOD_RULE", "StatementStore", "check_period", "check_statements"]

#: A settlement period is a calendar month, ``YYYY-MM``.
PERIOD_RULE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
MAX_STATEMENTS = 10_000


def check_period(text: str) -> str:
    """The period ``text`` names (``YYYY-MM``), or InvalidInput with ``field='period'``."""
    period = text.strip()
    if not PERIOD_RULE.fullmatch(period):
        raise InvalidInput("a period is a month written YYYY-MM, e.g. 2026-11", field="period")
    return period


def check_statements(statements: list[Any], *, require_signatures: bool) -> list[list[str]]:
    """The rules of ``POST /v1/settlement/net``: nettable, and signatures that verify.

    Every statement's signatures are checked when ``require_signatures`` (both
    parties must have signed); otherwise the signatures a statement carries must
    still verify. Returns the roles that signed each statement.
    """
    if not statements:
        raise InvalidInput("a non-empty list of statements", field="statements")
    if len(statements) > MAX_STATEMENTS:
        raise InvalidInput(f"at most {MAX_STATEMENTS:,} statements", field="statements")
    net_statements(statements)
    signed = []
    for index, statement in enumerate(statements):
        try:
            if require_signatures:
                signed.append(verify_statement(statement))
            elif statement.get("signatures"):
                signed.append(verify_statement(statement, require=()))
            else:
                signed.append([])
        except InvalidInput as exc:
            raise InvalidInput(f"statement {index}: {exc.detail}", field="statements") from None
    return signed


class StatementStore:
    """Statements per (owner, period): ``owner`` is a tenant id, ``""`` for the operator."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __repr__(self) -> str:
        return "StatementStore()"

    def put(self, statements: list[Any], *, period: str, tenant_id: str | None,
            require_signatures: bool, now: datetime) -> dict[str, int]:
        """Check and store a period's statements; how many were new and how many known."""
        period = check_period(period)
        signed = check_statements(statements, require_signatures=require_signatures)
        owner = tenant_id or ""
        rows = []
        for statement, roles in zip(statements, signed, strict=True):
            rows.append((owner, period, statement_id(statement), tenant_id,
                         str(statement["currency"]), str(statement["payer"]),
                         str(statement["payee"]), ",".join(roles),
                         json.dumps(statement, sort_keys=True, separators=(",", ":")),
                         now.isoformat()))
        new = 0
        with self._db.transaction(durable=True):
            for row in rows:
                new += self._db.execute(
                    "INSERT INTO settlement_statements (owner, period, statement_id, tenant_id,"
                    " currency, payer, payee, signed_by, body, stored_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (owner, period, statement_id) DO NOTHING", row)
        return {"stored": new, "known": len(rows) - new}

    def periods(self, tenant_id: str | None, limit: int = 100) -> list[dict[str, Any]]:
        """Periods newest first: statements (distinct), parties, currencies, last stored."""
        where, params = ("WHERE owner = ?", [tenant_id]) if tenant_id else ("", [])
        rows = self._db.query(
            "SELECT period, COUNT(DISTINCT statement_id), MAX(stored_at) FROM"
            f" settlement_statements {where} GROUP BY period ORDER BY period DESC LIMIT ?",
            (*params, limit))
        out = []
        for period, count, last in rows:
            detail = self._db.query(
                "SELECT DISTINCT currency, payer, payee FROM settlement_statements"
                f" WHERE period = ?{' AND owner = ?' if tenant_id else ''}",
                (period, *params))
            out.append({"period": str(period), "statements": int(count),
                        "currencies": sorted({str(c) for c, _, _ in detail}),
                        "parties": len({str(p) for _, a, b in detail for p in (a, b)}),
                        "stored_at": str(last)})
        return out

    def statements(self, period: str, tenant_id: str | None) -> list[dict[str, Any]]:
        """The period's statements (one per ``statement_id``), oldest stored first."""
        period = check_period(period)
        where, params = ("AND owner = ?", [tenant_id]) if tenant_id else ("", [])
        seen: set[str] = set()
        out = []
        for sid, body in self._db.query(
                "SELECT statement_id, body FROM settlement_statements WHERE period = ?"
                f" {where} ORDER BY stored_at, statement_id", (period, *params)):
            if sid not in seen:
                seen.add(str(sid))
                out.append(json.loads(str(body)))
        return out
