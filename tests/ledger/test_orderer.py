"""The ordering seam: handlers see finalized messages only, in order; orderers are swappable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from simtrust.errors import InvalidInput, Rejected
from simtrust.ledger import (
    CommittedSubDag,
    CommittedSubDagLike,
    Ed25519Signer,
    FinalizedMessage,
    LedgerNode,
    Message,
    Orderer,
    PayloadType,
    SoloOrderer,
    decode_message,
    encode_tagged_data,
)
from simtrust.store import SqliteDatabase
from tests.ledger.conftest import ManualClock
from tests.ledger.test_codec import sign


class Recorder:
    def __init__(self, refuse: bytes | None = None) -> None:
        self.seen: list[FinalizedMessage] = []
        self.refuse = refuse

    def apply(self, fm: FinalizedMessage) -> None:
        if self.refuse is not None and fm.payload == self.refuse:
            raise Rejected("did-invalid", "refused by the registry")
        self.seen.append(fm)


def test_handler_gets_the_documented_attributes(node: LedgerNode, operator: Ed25519Signer) -> None:
    rec = Recorder()
    node.register_handler("identity", rec)
    first = node.issue(PayloadType.IDENTITY, b"op-1").message_id
    node.issue_data(b"x", b"not identity")
    second = node.issue("identity", b"op-2").message_id
    assert [first, second] == [fm.message_id for fm in rec.seen]
    fm = rec.seen[0]
    assert operator.public_key == fm.issuer
    assert 32 == len(fm.issuer)
    assert "identity" == fm.payload_type
    assert b"op-1" == fm.payload
    assert isinstance(fm.issued_at, datetime)
    assert fm.issued_at.tzinfo is not None
    assert [1, 3] == [f.order for f in rec.seen]


def test_handler_rejection_voids_the_message(node: LedgerNode) -> None:
    node.register_handler("identity", Recorder(refuse=b"bad"))
    mid = node.issue("identity", b"bad").message_id or b""
    assert {"state": "conflicting", "reason": "did-invalid"}.items() <= node.status(mid).items()
    assert mid in node.tips()


def test_unknown_payload_type_cannot_be_registered(node: LedgerNode) -> None:
    with pytest.raises(InvalidInput):
        node.register_handler("mystery", Recorder())


class HoldingOrderer(Orderer):
    """A stand-in committee: commits only when told, in an order it chooses."""

    def __init__(self) -> None:
        self.solid: list[bytes] = []
        self.ready: list[CommittedSubDagLike] = []
        self.round = 0

    def restore(self, last_round: int, unfinalized: Sequence[Message]) -> None:
        self.round = last_round
        self.solid = [m.id for m in unfinalized]

    def on_solid(self, message: Message) -> None:
        self.solid.append(message.id)

    def take_commits(self) -> list[CommittedSubDagLike]:
        out, self.ready = self.ready, []
        return out

    def commit(self, ids: Sequence[bytes]) -> None:
        self.round += 1
        self.ready.append(CommittedSubDag(b"\x01" * 32, self.round, tuple(ids)))


def test_orderer_decides_finality(tmp_path: object, clock: ManualClock,
                                  operator: Ed25519Signer) -> None:


    db = SqliteDatabase(Path(str(tmp_path)) / "o.db")
    orderer = HoldingOrderer()
    node = LedgerNode(db, operator, clock=clock, orderer=orderer)
    rec = Recorder()
    node.register_handler("identity", rec)
    a = node.issue("identity", b"a").message_id or b""
    b = node.issue("identity", b"b").message_id or b""
    assert "solid" == node.status(a)["state"]
    assert [] == rec.seen
    late = node.build("identity", b"late")  # signed, not yet delivered to the node

    late_id = decode_message(late).id
    orderer.commit([b, late_id, a])  # the committee committed an id this node lacks
    node.finalize()
    assert [late_id] == node.missing()
    assert [] == rec.seen
    node.submit(late)
    assert [b, late_id, a] == [fm.message_id for fm in rec.seen]
    assert [1, 2, 3] == [fm.order for fm in rec.seen]
    assert 3 == node.status(a)["order"]
    node.close()
    # Restart: stored-but-unfinalized messages go back to the orderer.
    c = LedgerNode(db, operator, clock=clock, orderer=HoldingOrderer())
    assert "finalized" == c.status(a)["state"]
    db.close()


def test_ids_named_by_waiting_commits_follow_arrivals_and_stale_commits(
        tmp_path: object, clock: ManualClock, operator: Ed25519Signer) -> None:
    """``missing()`` lists what waiting commits name and the node lacks; an id leaves
    it when its message is stored, or when the only commit naming it is stale."""
    db = SqliteDatabase(Path(str(tmp_path)) / "n.db")
    orderer = HoldingOrderer()
    node = LedgerNode(db, operator, clock=clock, orderer=orderer)
    a = node.issue("identity", b"a").message_id or b""
    late1, late2, late3, late4 = (node.build("identity", p) for p in (b"1", b"2", b"3", b"4"))
    id1, id2, id3, id4 = (decode_message(r).id for r in (late1, late2, late3, late4))
    orderer.commit([a, id1])
    orderer.commit([id2])
    node.finalize()
    assert sorted([id1, id2]) == node.missing()
    node.submit(late1)
    assert [id2] == node.missing()
    assert "finalized" == node.status(id1)["state"]
    orderer.round = 0  # a replayed commit of round 1, queued behind round 2
    orderer.commit([id3])
    orderer.round = 2
    orderer.commit([id4])  # round 3
    node.finalize()
    assert sorted([id2, id3, id4]) == node.missing()
    node.submit(late2)
    assert "finalized" == node.status(id2)["state"]
    assert [id4] == node.missing()  # round 1 was applied: its replay names nothing
    node.submit(late4)
    assert "finalized" == node.status(id4)["state"]
    assert [] == node.missing()
    node.close()
    db.close()


def test_restart_hands_unfinalized_messages_back(tmp_path: object, clock: ManualClock,
                                                 operator: Ed25519Signer) -> None:


    db = SqliteDatabase(Path(str(tmp_path)) / "r.db")
    node = LedgerNode(db, operator, clock=clock, orderer=HoldingOrderer())
    mid = node.issue_data(b"t", b"held")
    node.close()
    orderer = HoldingOrderer()
    again = LedgerNode(db, operator, clock=clock, orderer=orderer)
    assert [mid] == orderer.solid
    orderer.commit(orderer.solid)
    again.finalize()
    assert "finalized" == again.status(mid)["state"]
    db.close()


def test_solo_orderer_commits_every_round() -> None:
    solo = SoloOrderer(b"\x05" * 32)
    assert [] == solo.take_commits()
    solo.restore(7, [])

    m = decode_message(sign(0, encode_tagged_data(b"", b"x")))
    solo.on_solid(m)
    commits = solo.take_commits()
    assert [CommittedSubDag(b"\x05" * 32, 8, (m.id,))] == commits


def test_late_handler_replays_finalized_messages(node: LedgerNode) -> None:
    """Identity messages finalized before the registry registered are replayed in order."""
    first = node.issue("identity", b"early-1").message_id or b""
    node.issue_data(b"t", b"other")
    bad = node.issue("identity", b"bad").message_id or b""
    rec = Recorder(refuse=b"bad")
    node.register_handler("identity", rec, replay_from=1)
    assert [first] == [fm.message_id for fm in rec.seen]
    assert [1] == [fm.order for fm in rec.seen]
    assert {"state": "conflicting", "reason": "did-invalid"}.items() <= node.status(bad).items()
    later = node.issue("identity", b"later").message_id or b""
    assert [first, later] == [fm.message_id for fm in rec.seen]
    again = Recorder()
    node.register_handler("identity", again, replay_from=5)
    assert [] == again.seen
