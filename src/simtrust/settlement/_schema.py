"""Tables of the settlement component: the statements a tenant keeps per settlement period.

A statement is stored once per owner and period under its ``statement_id``
(SHA-256 of its signing bytes, settlement/_statement.py), so storing the same
file twice changes nothing; its amounts stay in the JSON it was stored as.
"""

from __future__ import annotations

from simtrust.store import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS = [
    Migration(
        "settlement",
        1,
        "statements per period",
        """
        CREATE TABLE settlement_statements (
            owner TEXT NOT NULL,
            period TEXT NOT NULL,
            statement_id TEXT NOT NULL,
            tenant_id TEXT,
            currency TEXT NOT NULL,
            payer TEXT NOT NULL,
            payee TEXT NOT NULL,
            signed_by TEXT NOT NULL,
            body TEXT NOT NULL,
            stored_at TEXT NOT NULL,
            PRIMARY KEY (owner, period, statement_id)
        );
        CREATE INDEX settlement_statements_period ON settlement_statements (period, owner)
        """,
    ),
]
