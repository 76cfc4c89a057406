"""Tables of the ledger node (component ``ledger``), portable across SQLite and PostgreSQL.

Layout and the reasons for it: ``docs/ledger.md`` ("Storage"). Messages are
stored once, raw, keyed by arrival sequence; every table's key grows with
time and spends are appended rather than updated in place (hash-keyed
B-tree indexes and in-place updates rewrite a random page per row). Ids,
parents and owners are inside the stored bytes; the id → sequence index
lives in memory, rebuilt on start. The finalized order,
rounds, UTXO outputs and anchors are derived tables written in the same
transaction as the messages whose finalization produced them.
"""

from __future__ import annotations

from simtrust.store import Migration

__all__ = ["MIGRATIONS"]

_V1 = """
CREATE TABLE ledger_meta (
    key TEXT PRIMARY KEY,
    value {blob} NOT NULL
);
CREATE TABLE ledger_messages (
    seq {bigint} PRIMARY KEY,
    issuer {blob} NOT NULL,
    issued_at {bigint} NOT NULL,
    payload_type INTEGER NOT NULL,
    raw {blob} NOT NULL
);
CREATE INDEX ledger_messages_issuer ON ledger_messages (issuer, seq);
CREATE TABLE ledger_finalized (
    ord {bigint} PRIMARY KEY,
    seq {bigint} NOT NULL,
    round {bigint} NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT
);
CREATE TABLE ledger_rounds (
    round {bigint} PRIMARY KEY,
    leader {blob} NOT NULL,
    first_ord {bigint} NOT NULL,
    count {bigint} NOT NULL
);
CREATE TABLE ledger_outputs (
    okey {bigint} PRIMARY KEY,
    output_id {blob} NOT NULL,
    body {blob} NOT NULL,
    created_ord {bigint} NOT NULL
);
CREATE TABLE ledger_spends (
    ord {bigint} NOT NULL,
    okey {bigint} NOT NULL
);
CREATE TABLE ledger_anchors (
    message_id {blob} PRIMARY KEY,
    issuer {blob} NOT NULL,
    domain TEXT NOT NULL,
    first_seq {bigint} NOT NULL,
    last_seq {bigint} NOT NULL,
    size {bigint} NOT NULL,
    root {blob} NOT NULL,
    ord {bigint} NOT NULL
);
CREATE INDEX ledger_anchors_range ON ledger_anchors (domain, last_seq)
"""

# The commit chain (docs/ledger.md, "Commit chain"): each commit's height and chain
# head, written with the commit. Rows of stores older than this migration get
# theirs when the node next starts (LedgerNode._load).
_V2 = """
ALTER TABLE ledger_rounds ADD COLUMN height {bigint};
ALTER TABLE ledger_rounds ADD COLUMN chain {blob};
CREATE UNIQUE INDEX ledger_rounds_height ON ledger_rounds (height)
"""

MIGRATIONS: list[Migration] = [
    Migration("ledger", 1, "messages, order, outputs, anchors", _V1),
    Migration("ledger", 2, "commit chain heads per round", _V2),
]
