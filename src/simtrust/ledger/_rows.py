"""Rows the ingest pipeline writes, as batch inserts for SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from simtrust.errors import Rejected
from simtrust.ledger._codec import Anchor
from simtrust.ledger._orderer import FinalizedMessage
from simtrust.store import Database

__all__ = ["ANCHOR_TARGET", "ROUNDS_TARGET", "AnchorIndex", "Rows", "hash_ids", "insert_rows",
           "okey"]


class AnchorIndex:
    """Built-in handler for anchor payloads: rows for ``ledger_anchors``."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[bytes, bytes, str, int, int, int, bytes, int]] = []

    def apply(self, fm: FinalizedMessage) -> None:
        body = fm.body
        if not isinstance(body, Anchor):
            raise Rejected("payload", "not an anchor")
        self.rows.append(
            (fm.message_id, fm.issuer, body.domain, body.first, body.last, body.size,
             body.root, fm.order)
        )


class Rows:
    __slots__ = ("finalized", "messages", "rounds")

    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes, int, int, bytes]] = []
        self.finalized: list[tuple[int, int, int, int, str | None]] = []
        self.rounds: list[tuple[int, bytes, int, int, int, bytes]] = []


ROUNDS_TARGET = "ledger_rounds (round, leader, first_ord, count, height, chain)"
ANCHOR_TARGET = (
    "ledger_anchors (message_id, issuer, domain, first_seq, last_seq, size, root, ord)"
)
#: PostgreSQL column types of each batch insert target, for ``unnest`` arrays.
_PG_TYPES: dict[str, tuple[str, ...]] = {
    "ledger_messages (seq, issuer, issued_at, payload_type, raw)":
        ("bigint", "bytea", "bigint", "integer", "bytea"),
    ROUNDS_TARGET: ("bigint", "bytea", "bigint", "bigint", "bigint", "bytea"),
    "ledger_finalized (ord, seq, round, status, reason)":
        ("bigint", "bigint", "bigint", "integer", "text"),
    "ledger_outputs (okey, output_id, body, created_ord)": ("bigint", "bytea", "bytea", "bigint"),
    "ledger_spends (ord, okey)": ("bigint", "bigint"),
    ANCHOR_TARGET: ("bytea", "bytea", "text", "bigint", "bigint", "bigint", "bytea", "bigint"),
}


def insert_rows(db: Database, target: str, rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` into ``target`` (``table (columns)``, constant SQL of the ledger package).

    SQLite reuses one prepared statement through ``executemany``. PostgreSQL
    gets one statement per batch, ``INSERT … SELECT * FROM unnest(arrays)``,
    with one array parameter per column instead of one round of
    parse/bind/execute per row.
    """
    types = _PG_TYPES[target]
    if db.dialect == "postgresql":
        columns = [list(col) for col in zip(*rows, strict=True)]
        arrays = ", ".join(f"?::{t}[]" for t in types)
        db.execute(f"INSERT INTO {target} SELECT * FROM unnest({arrays})", columns)
        return
    one = "(" + ", ".join(["?"] * len(types)) + ")"
    db.executemany(f"INSERT INTO {target} VALUES {one}", rows)


def okey(final: dict[bytes, int], oid: bytes) -> int:
    """Row key of an output: creating order × 65536 + index (grows with time)."""
    return final[oid[:32]] * 65536 + int.from_bytes(oid[32:34], "big")


def hash_ids(ids: Iterable[bytes]) -> str:
    h = hashlib.blake2b(digest_size=32)
    for i in ids:
        h.update(i)
    return h.hexdigest()
