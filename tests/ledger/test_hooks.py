"""The ledger's hooks for the network layer (docs/ledger.md, "Hooks for the network").

``holds`` answers from memory, a duplicate costs no signature check,
commits taken from the orderer survive a failed batch, and messages a
commit names are admitted past the timestamp-skew and quota checks (and
only those).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import simtrust.ledger._ingest as node_module
from simtrust.ledger import (
    CommittedSubDag,
    CommittedSubDagLike,
    Ed25519Signer,
    FinalizedMessage,
    LedgerConfig,
    LedgerNode,
    Message,
    Orderer,
    PayloadType,
    encode_tagged_data,
    message_id,
)
from simtrust.store import SqliteDatabase
from tests.ledger.conftest import ManualClock


class Scripted(Orderer):
    """Commits only when the test says so."""

    def __init__(self) -> None:
        self.queue: list[CommittedSubDagLike] = []

    def restore(self, last_round: int, unfinalized: Sequence[Message]) -> None:
        return None

    def on_solid(self, message: Message) -> None:
        return None

    def take_commits(self) -> list[CommittedSubDagLike]:
        out, self.queue = self.queue, []
        return out

    def commit(self, rnd: int, *ids: bytes) -> None:
        self.queue.append(CommittedSubDag(b"\x01" * 32, rnd, tuple(ids)))


@pytest.fixture
def scripted(tmp_path: Path, clock: ManualClock, operator: Ed25519Signer) -> Iterator[
        tuple[LedgerNode, Scripted]]:
    orderer = Scripted()
    db = SqliteDatabase(tmp_path / "scripted.db")
    node = LedgerNode(db, operator, clock=clock, orderer=orderer,
                      config=LedgerConfig(quota_rate=1.0, quota_burst=3))
    yield node, orderer
    node.close()
    db.close()


def _data(node: LedgerNode, signer: Ed25519Signer, n: int, parents: list[bytes],
          at: int | None = None) -> bytes:
    return node.build(PayloadType.TAGGED_DATA, encode_tagged_data(b"t", n.to_bytes(4, "big")),
                      signer=signer, parents=parents, issued_at_ms=at)


def test_holds_answers_for_stored_and_waiting_messages(scripted: tuple[LedgerNode, Scripted],
                                                        operator: Ed25519Signer) -> None:
    node, _ = scripted
    first = _data(node, operator, 1, [node.genesis_id])
    child_of_unknown = _data(node, operator, 2, [b"\x07" * 32])
    a = node.submit(first).message_id or b""
    b = node.submit_many([child_of_unknown])[0]
    assert "pending" == b.status
    assert node.holds(a)
    assert node.holds(b.message_id or b"")
    assert not node.holds(b"\x07" * 32)


def test_a_duplicate_is_recognised_before_its_signature_is_checked(
    scripted: tuple[LedgerNode, Scripted], operator: Ed25519Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, _ = scripted
    raw = _data(node, operator, 1, [node.genesis_id])
    waiting = _data(node, operator, 2, [b"\x07" * 32])
    node.submit_many([raw, waiting])
    checked: list[int] = []
    real = node_module.verify_chunk  # type: ignore[attr-defined]

    def counting(vraws: Sequence[bytes], unlocks: Sequence[object]) -> tuple[bytes, bytes]:
        checked.append(len(vraws))
        return real(vraws, unlocks)  # type: ignore[arg-type]

    monkeypatch.setattr(node_module, "verify_chunk", counting)
    results = node.submit_many([raw, waiting])
    assert ["duplicate", "pending"] == [r.status for r in results]
    assert (b"\x07" * 32,) == results[1].missing
    assert [0] == checked


def test_commits_taken_by_a_failed_batch_are_applied_by_the_next(
    scripted: tuple[LedgerNode, Scripted], operator: Ed25519Signer,
) -> None:
    node, orderer = scripted
    a = node.submit(_data(node, operator, 1, [node.genesis_id])).message_id or b""
    b = node.submit(_data(node, operator, 2, [a])).message_id or b""
    seen: list[bytes] = []
    broken = [True]

    class Flaky:
        def apply(self, fm: FinalizedMessage) -> None:
            if fm.message_id == b and broken[0]:
                raise RuntimeError("handler crashed")
            seen.append(fm.message_id)

    node.register_handler("tagged-data", Flaky())
    orderer.commit(1, a)
    orderer.commit(2, b)
    with pytest.raises(RuntimeError):
        node.finalize()
    assert 0 == node.snapshot().finalized  # the whole batch rolled back
    broken[0] = False
    seen.clear()
    assert 2 == node.finalize()
    assert [a, b] == seen
    assert node.snapshot() == node.recompute()


def test_messages_a_commit_names_skip_the_skew_and_quota_checks_only(
    scripted: tuple[LedgerNode, Scripted], operator: Ed25519Signer, clock: ManualClock,
) -> None:
    node, orderer = scripted
    issuer = Ed25519Signer.generate()
    first = _data(node, issuer, 1, [node.genesis_id])
    old = [first] + [_data(node, issuer, i, [node.genesis_id]) for i in range(2, 7)]
    ids = [message_id(r) for r in old]
    child = _data(node, issuer, 99, [ids[-1]])
    clock.advance(minutes=11)
    assert {"timestamp-skew"} == {r.reason for r in node.submit_many(old)}
    # The committee committed them (the parent of ``child`` only through ``child``).
    orderer.commit(1, *ids[:-1], message_id(child))
    assert 0 == node.finalize()
    assert set(ids[:-1]) <= set(node.missing())
    results = node.submit_many([child, *old[:-1]])
    assert ["pending"] + ["accepted"] * 5 == [r.status for r in results]
    # More than the quota burst (3) of one issuer, long past the skew window.
    assert [ids[-1]] == node.missing()
    assert "accepted" == node.submit_many([old[-1]])[0].status
    assert 6 == node.snapshot().finalized  # the commit's ids; the parent awaits its own
    assert 7 == node.stats["committed_admitted"]
    # Anything else old is still refused, and a bad signature never passes.
    stranger = _data(node, issuer, 200, [node.genesis_id], at=clock.ms - 700_000)
    assert "timestamp-skew" == node.submit_many([stranger])[0].reason
    forged = _data(node, issuer, 201, [node.genesis_id], at=clock.ms - 700_000)
    forged = forged[:-1] + bytes([forged[-1] ^ 1])
    orderer.commit(2, message_id(forged))
    node.finalize()
    assert "signature" == node.submit_many([forged])[0].reason


def test_commits_waiting_for_messages_survive_a_rebuild(
    scripted: tuple[LedgerNode, Scripted], operator: Ed25519Signer,
) -> None:
    node, orderer = scripted
    raw = _data(node, operator, 1, [node.genesis_id])
    mid = message_id(raw)
    orderer.commit(1, mid)
    assert 0 == node.finalize()
    node.ingest._load()  # what a failed batch or another process's writes trigger
    assert [mid] == node.missing()
    node.submit(raw)
    assert "finalized" == node.status(mid)["state"]


def test_a_handler_ends_the_orderers_commits_after_the_current_one(
    scripted: tuple[LedgerNode, Scripted], operator: Ed25519Signer,
) -> None:
    node, orderer = scripted
    a = node.submit(_data(node, operator, 1, [node.genesis_id])).message_id or b""
    b = node.submit(_data(node, operator, 2, [a])).message_id or b""
    c = node.submit(_data(node, operator, 3, [b])).message_id or b""

    class Boundary:
        def apply(self, fm: FinalizedMessage) -> None:
            if fm.message_id == a:
                node.end_commits_here()

    node.register_handler("tagged-data", Boundary())
    orderer.commit(1, a, b)
    orderer.commit(2, c)
    assert 2 == node.finalize()  # the whole first commit, none of the second
    assert "solid" == node.status(c)["state"]
    assert [c] == [m.id for m in node.unfinalized()]
    orderer.commit(3, c)  # the next orderer (epoch) orders it again
    assert 1 == node.finalize()
    assert node.snapshot() == node.recompute()
