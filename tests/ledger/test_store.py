"""The node on SQLite and PostgreSQL: same behaviour, restart resumes identical state."""

from __future__ import annotations

from pathlib import Path

from simtrust.ledger import Ed25519Signer, LedgerNode, PayloadType
from simtrust.store import Database, SqliteDatabase
from tests.ledger.conftest import ManualClock

BOB = Ed25519Signer(b"\x0b" * 32)


def test_ingest_transfer_restart(db: Database, clock: ManualClock, operator: Ed25519Signer) -> None:
    node = LedgerNode(db, operator, clock=clock)
    data = node.issue_data(b"t", b"x")
    tx = node.transfer(operator, BOB.public_key, 77)
    node.issue(PayloadType.IDENTITY, b"did-op")
    node.anchor("audit", 1, 4, 4, b"\x05" * 32)
    assert 77 == node.balance(BOB.public_key).amount
    live = node.snapshot()
    assert live == node.recompute()
    assert 4 == live.finalized
    node.close()
    again = LedgerNode(db, operator, clock=clock)
    assert live == again.snapshot()
    assert "finalized" == again.status(tx)["state"]
    assert [tx] == again.children(data)
    assert 77 == again.balance(BOB.public_key).amount
    assert again.anchor_covering("audit", 3) is not None
    assert 4 == again.last_anchored("audit")
    assert [m["payload_type"] for m in again.recent(10)] == [
        "anchor", "identity", "transaction", "tagged-data"]
    assert 4 == len(again.finalized_since(0))
    again.close()


def test_second_process_writes_are_picked_up(tmp_path: object, clock: ManualClock,
                                             operator: Ed25519Signer) -> None:
    """A CLI writing to the store next to the server: the server's node reloads its indexes."""


    path = Path(str(tmp_path)) / "shared.db"
    server = LedgerNode(SqliteDatabase(path), operator, clock=clock)
    cli = LedgerNode(SqliteDatabase(path), operator, clock=clock)
    paid = cli.transfer(operator, BOB.public_key, 5)
    assert "finalized" == server.status(paid)["state"]
    assert 5 == server.balance(BOB.public_key).amount
    after = server.issue_data(b"t", b"server again")  # continues the sequence, no conflict
    assert "finalized" == cli.status(after)["state"]
    assert server.snapshot() == cli.snapshot() == server.recompute()
    for node in (server, cli):
        node.close()
        node.db.close()
