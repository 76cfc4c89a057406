"""Child process of the kill -9 test: ingest forever, print each acknowledged id.

Usage: ``python -m tests.ledger.ingest_child DB_PATH``. A line ``ACK <hex>``
is written (and flushed) only after ``submit_many`` returned, i.e. after the
store transaction holding that message committed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from simtrust.ledger import (
    Ed25519Signer,
    Genesis,
    LedgerConfig,
    LedgerNode,
    Output,
    PayloadType,
    encode_tagged_data,
    network_id_from_name,
)
from simtrust.store import SqliteDatabase

OPERATOR = Ed25519Signer(b"\x01" * 32)
WALLETS = [Ed25519Signer(bytes([i]) * 32) for i in range(2, 6)]
GENESIS = Genesis(
    network_id_from_name("simtrust-local"),
    1_700_000_000_000,
    tuple(Output(w.public_key, 1_000_000) for w in [OPERATOR, *WALLETS]),
)
CONFIG = LedgerConfig(
    quota_rate=1e6, quota_burst=10**6, pool_threshold=64, chunk=64, workers=2,
    max_parent_age_ms=10**12, max_past_skew_ms=10**12,
)


def open_node(path: str) -> LedgerNode:
    return LedgerNode(SqliteDatabase(path), OPERATOR, config=CONFIG, genesis=GENESIS,
                      clock=lambda: datetime.now(UTC))


def main(path: str) -> None:
    node = open_node(path)
    n = 0
    while True:
        raws = []
        for _ in range(120):
            n += 1
            raws.append(node.build(PayloadType.TAGGED_DATA,
                                   encode_tagged_data(b"k", f"{path}:{n}:{node.info()['messages']}".encode())))
        for i, w in enumerate(WALLETS):
            to = WALLETS[(i + 1) % len(WALLETS)].public_key
            if node.balance(w.public_key).amount > 10:
                raws.append(node.build_transfer(w, to, 1 + n % 7))
        for result in node.submit_many(raws):
            if result.status in ("accepted", "duplicate") and result.message_id:
                sys.stdout.write(f"ACK {result.message_id.hex()}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
