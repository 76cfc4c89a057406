"""Consortium key rotation among three operators, each with its own ledger node.

Operator A coordinates; B and C are members. A rotation seals a fresh epoch
key to each member's did:key keyAgreement key with HPKE and travels on the
ledger. After C is removed, B can match a report made under the new epoch and
C cannot; older epochs keep matching for the grace period. Forged, replayed,
rolled-back, foreign, malformed and not-addressed rotations are refused with
a reason and change nothing; no key appears in a repr, log or error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simtrust.detect import Alert
from simtrust.errors import Conflict, PermissionDenied
from simtrust.fraudshare import (
    CONSORTIUM_TAG,
    INTEL_TAG,
    ConsortiumKey,
    ConsortiumKeys,
    ConsortiumMembership,
    FraudIntelligence,
    KeyAgreementKey,
    ReportStatusList,
    fraud_report,
    intel_payload,
    key_agreement_of,
    rotation,
    rotation_payload,
)
from simtrust.identity import DidResolver, Ed25519Signer, StatusListRegistry, VerificationFailed
from simtrust.identity._schema import MIGRATIONS as IDENTITY_MIGRATIONS
from simtrust.ledger import Ed25519Signer as NodeSigner
from simtrust.ledger import LedgerNode
from simtrust.store import SqliteDatabase, apply_migrations

B_SIM = "262010000000007"  # operator B's subscriber
C_SIM = "310260000000042"  # operator C's subscriber
START = "2026-12"
START_KEYS = ConsortiumKeys([ConsortiumKey(START, bytes(range(32)))], START)
GRACE = timedelta(days=30)


def seed(i: int) -> bytes:
    return bytes([i + 0x50]) * 32


@dataclass
class Op:
    name: str
    node: LedgerNode
    signer: Ed25519Signer
    kak: KeyAgreementKey
    own: list[str]
    status: ReportStatusList
    alerts: list[Alert] = field(default_factory=list)
    intel: FraudIntelligence | None = None

    @property
    def did(self) -> str:
        return self.signer.controller

    def start(self, coordinator: str, members: list[str]) -> None:
        resolver = DidResolver()
        membership = ConsortiumMembership(key=self.kak, coordinator=coordinator,
                                          resolver=resolver, grace=GRACE)
        self.intel = FraudIntelligence(
            me=self.did, members=members, keys=START_KEYS, resolver=resolver,
            own_imsis=lambda: self.own, deliver=self.alerts.extend, status=self.status,
            membership=membership)
        self.node.register_handler("tagged-data", self.intel, replay_from=1)


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[dict[str, Op]]:
    made: dict[str, Op] = {}
    genesis = None
    for i, name in enumerate("ABCX"):
        node = LedgerNode(SqliteDatabase(tmp_path / f"{name}.db"), NodeSigner(bytes([i + 1]) * 32),
                          genesis=genesis)
        genesis = node.genesis
        signer = Ed25519Signer.from_seed(seed(i))
        vm, public = key_agreement_of(DidResolver(), signer.controller)
        kak = KeyAgreementKey.from_ed25519_seed(seed(i), vm)
        assert kak.public == public  # the did:key document's derived keyAgreement key
        db = SqliteDatabase(tmp_path / f"{name}-identity.db")
        apply_migrations(db, IDENTITY_MIGRATIONS)
        status = ReportStatusList(
            StatusListRegistry(db),
            f"https://{name.lower()}.operator.example/credentials/status/fraud-reports/1",
            lambda s=signer: s)  # type: ignore[misc]
        made[name] = Op(name, node, signer, kak, {"B": [B_SIM], "C": [C_SIM]}.get(name, []),
                        status)
    members = [made[n].did for n in "ABC"]
    for name in "ABC":
        made[name].start(made["A"].did, members)
    yield made
    for op in made.values():
        op.node.close()


def relay(ops: dict[str, Op], source: str, mid: bytes) -> None:
    raw = ops[source].node.get_raw(mid)
    for name in "ABC":
        if name != source:
            ops[name].node.submit(raw)


def rotate(ops: dict[str, Op], **kw: Any) -> bytes:
    a = ops["A"]
    assert a.intel is not None
    mid, _ = a.intel.rotate(a.node.issue_data, a.signer, now=datetime.now(UTC), **kw)
    relay(ops, "A", mid)
    return mid


def put(ops: dict[str, Op], source: str, tag: bytes, data: bytes) -> bytes:
    mid = ops[source].node.issue_data(tag, data)
    relay(ops, source, mid)
    return mid


def intel(op: Op) -> FraudIntelligence:
    assert op.intel is not None
    return op.intel


def report(op: Op, imsi: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    keys = intel(op).keys
    return fraud_report(op.signer, keys.get(keys.current), indicator="cloned-sim",
                        severity="high", evidence={"seen": "twice"}, observed_at=now,
                        now=now, imsis=[imsi], status_entry=lambda rid: op.status.entry(rid, now))


def test_rotation_reaches_every_member_and_removal_locks_the_removed_one_out(
        ops: dict[str, Op]) -> None:
    first = rotate(ops)
    assert all(intel(ops[n]).outcome(first) == ("applied", "rotation") for n in "ABC")
    epoch1 = intel(ops["A"]).keys.current
    assert epoch1 != START
    assert {intel(ops[n]).keys.current for n in "ABC"} == {epoch1}
    # the members hold the same key: B's report under the new epoch matches C's SIM
    mid = put(ops, "B", INTEL_TAG, intel_payload("report", report(ops["B"], C_SIM)))
    assert intel(ops["C"]).outcome(mid) == ("applied", "report")
    assert [a.imsi for a in ops["C"].alerts] == [C_SIM]

    # C leaves: the next epoch is sealed to A and B only
    second = rotate(ops, remove=[ops["C"].did])
    assert intel(ops["B"]).outcome(second) == ("applied", "rotation")
    assert intel(ops["C"]).outcome(second) == ("refused", "not-a-recipient")
    epoch2 = intel(ops["B"]).keys.current
    assert ops["C"].did not in intel(ops["B"]).members
    assert intel(ops["C"]).keys.current == epoch1  # nothing changed for C
    # A reports C's and B's SIMs under epoch 2: B matches, C cannot even read the epoch
    new = put(ops, "A", INTEL_TAG, intel_payload("report", report(ops["A"], B_SIM)))
    assert intel(ops["B"]).outcome(new) == ("applied", "report")
    assert [a.imsi for a in ops["B"].alerts] == [B_SIM]
    leaked = put(ops, "A", INTEL_TAG, intel_payload("report", report(ops["A"], C_SIM)))
    assert intel(ops["C"]).outcome(leaked) == ("refused", "unknown-key-epoch")
    assert [a.imsi for a in ops["C"].alerts] == [C_SIM]  # still only the epoch-1 match
    # and C, no longer a member for A and B, is refused as a reporter
    late = put(ops, "C", INTEL_TAG, intel_payload("report", report(ops["C"], B_SIM)))
    assert intel(ops["B"]).outcome(late) == ("refused", "not-a-member")
    # epoch 1 is kept for the grace period; the state shows no key
    state = intel(ops["B"]).consortium()
    assert (state["current"], state["sequence"]) == (epoch2, 2)
    assert {e["epoch"] for e in state["epochs"]} == {START, epoch1, epoch2}
    assert [e["expires"] is None for e in state["epochs"] if e["epoch"] == epoch2] == [True]


def test_adding_a_member_gives_it_the_next_epoch(ops: dict[str, Op], tmp_path: Path) -> None:
    x = ops["X"]
    x.start(ops["A"].did, [])
    mid = rotate(ops, add=[x.did])
    x.node.submit(ops["A"].node.get_raw(mid))
    assert intel(x).outcome(mid) == ("applied", "rotation")
    assert intel(x).keys.current == intel(ops["B"]).keys.current
    assert x.did in intel(ops["C"]).members


def test_superseded_epochs_expire_after_the_grace_period(ops: dict[str, Op]) -> None:
    b = ops["B"]
    membership = intel(b).membership
    assert membership is not None
    rotate(ops)
    assert START in intel(b).keys
    later = datetime.now(UTC) + GRACE + timedelta(seconds=1)
    assert membership.expire(later)
    assert START not in (membership.keys() or START_KEYS)
    # an expired epoch cannot come back under its old name
    with pytest.raises(Conflict):
        membership.next_rotation(ops["A"].signer, now=later, epoch=START)


def test_bad_rotations_are_refused_with_a_reason_and_change_nothing(
        ops: dict[str, Op], caplog: pytest.LogCaptureFixture) -> None:
    a, b = ops["A"], ops["B"]
    first = rotate(ops)
    before = intel(b).consortium()
    now = datetime.now(UTC)
    members = [a.did, b.did, ops["C"].did]
    resolver = DidResolver()

    # replayed: the same document again
    raw_doc = rotation(a.signer, resolver, epoch="again", sequence=1, members=members, now=now)
    replay = put(ops, "A", CONSORTIUM_TAG, rotation_payload(raw_doc))
    assert intel(b).outcome(replay) == ("refused", "replayed")
    # a non-coordinator member signs a rotation
    rogue = rotation(ops["C"].signer, resolver, epoch="rogue", sequence=9, members=members,
                     now=now)
    assert intel(b).outcome(put(ops, "C", CONSORTIUM_TAG, rotation_payload(rogue))) == (
        "refused", "not-the-coordinator")
    # forged: altered after signing
    good = rotation(a.signer, resolver, epoch="forge", sequence=5, members=members, now=now)
    forged = {**good, "epoch": "forged"}
    assert intel(b).outcome(put(ops, "A", CONSORTIUM_TAG, rotation_payload(forged))) == (
        "refused", "invalid-signature")
    # swapping B's sealed key for C's (signature no longer holds)
    swapped = dict(good)
    keys = [dict(e) for e in good["keys"]]
    seals = {e["member"]: e["sealed"] for e in keys}
    for e in keys:
        if e["member"] == b.did:
            e["sealed"] = seals[ops["C"].did]
    swapped["keys"] = keys
    assert intel(b).outcome(put(ops, "A", CONSORTIUM_TAG, rotation_payload(swapped))) == (
        "refused", "invalid-signature")
    # rolled back: a lower sequence, properly signed
    a_membership = intel(a).membership
    assert a_membership is not None
    rotate(ops)  # sequence 2
    old = rotation(a.signer, resolver, epoch="old", sequence=1, members=members, now=now)
    assert intel(b).outcome(put(ops, "A", CONSORTIUM_TAG, rotation_payload(old))) == (
        "refused", "rolled-back")
    # stale: signed two days before it reached the ledger
    stale = rotation(a.signer, resolver, epoch="stale", sequence=7, members=members,
                     now=now - timedelta(days=2))
    assert intel(b).outcome(put(ops, "A", CONSORTIUM_TAG, rotation_payload(stale))) == (
        "refused", "stale")
    # malformed payloads
    for junk in (b"{", b'{"v":1,"kind":"rotation","rotation":[]}', b"\xff" * 10,
                 rotation_payload({"type": "ConsortiumKeyRotation"})):
        assert intel(b).outcome(put(ops, "A", CONSORTIUM_TAG, junk)) == ("refused", "malformed")
    after = intel(b).consortium()
    assert (after["sequence"], before["sequence"]) == (2, 1)
    assert {e["epoch"] for e in after["epochs"]} == {e["epoch"] for e in before["epochs"]} | {
        after["current"]}
    assert intel(b).outcome(first) == ("applied", "rotation")


def test_only_the_coordinator_rotates(ops: dict[str, Op]) -> None:
    b = ops["B"]
    with pytest.raises(PermissionDenied):
        intel(b).rotate(b.node.issue_data, b.signer, now=datetime.now(UTC))


def test_keys_never_appear_in_reprs_logs_or_errors(ops: dict[str, Op],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rotate(ops)
    b = intel(ops["B"])
    membership = b.membership
    assert membership is not None
    secrets = [key._secret for key in (b.keys.get(e) for e in b.keys.epochs())]
    private = ops["B"].kak._private.private_bytes_raw()
    texts = [repr(b), repr(membership), repr(b.keys), repr(ops["B"].kak), str(b.consortium()),
             caplog.text]
    # an error about a key that does not open
    wrong = KeyAgreementKey.generate(ops["B"].kak.verification_method)
    doc = rotation(ops["A"].signer, DidResolver(), epoch="x1", sequence=3,
                   members=[ops["B"].did], now=datetime.now(UTC))
    from simtrust.fraudshare import check_rotation  # noqa: PLC0415 - the decoder under test

    found = check_rotation(doc, resolver=DidResolver(), now=datetime.now(UTC))
    with pytest.raises(Exception) as failed:
        found.open(wrong)
    texts += [str(failed.value), repr(failed.value), repr(found)]
    for text in texts:
        for secret in [*secrets, private]:
            assert secret.hex() not in text
            assert secret.hex().upper() not in text
    assert len(secrets) == 2


def test_a_sealed_key_moved_to_another_rotation_does_not_open(ops: dict[str, Op]) -> None:
    """HPKE info binds coordinator, epoch, sequence and recipient: a copied seal fails."""
    from simtrust.fraudshare import check_rotation  # noqa: PLC0415 - the decoder under test

    a, b = ops["A"], ops["B"]
    now = datetime.now(UTC)
    one = rotation(a.signer, DidResolver(), epoch="one", sequence=3, members=[b.did], now=now)
    two = rotation(a.signer, DidResolver(), epoch="two", sequence=4, members=[b.did], now=now)
    found = check_rotation(two, resolver=DidResolver(), now=now)
    sealed_one = check_rotation(one, resolver=DidResolver(), now=now).sealed[b.did]
    moved = type(found)(found.coordinator, found.epoch, found.sequence, found.members,
                        {**found.sealed, b.did: sealed_one})
    assert len(found.open(b.kak)) == 32
    with pytest.raises(VerificationFailed) as failed:
        moved.open(b.kak)
    assert failed.value.reason == "undecryptable"
