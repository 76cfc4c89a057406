"""Shared fraud intelligence between operators, each with its own ledger node and store.

Operator B (a visited network) reports a SIM of operator A and a stolen
device; the signed report travels as raw ledger messages to A's and C's nodes
(as a peer relays them). A recognises its SIM by keyed hash and alerts; C,
which does not know the SIM, learns nothing and never sees the identifiers in
clear, but applies the shared equipment blocklist by policy. Forged,
replayed, stale, malformed and foreign documents and a revocation by another
member are refused with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.detect import (
    Alert,
    DetectionService,
    SimEvent,
)
from simtrust.domain import imsi_digits
from simtrust.errors import Conflict, InvalidInput, PermissionDenied
from simtrust.fraudshare import (
    INTEL_TAG,
    ConsortiumKey,
    ConsortiumKeys,
    FraudIntelligence,
    ReceivedStatusLists,
    ReportStatusList,
    SharingPolicy,
    check_report,
    fraud_report,
    intel_payload,
)
from simtrust.identity import (
    MIN_LIST_SIZE,
    DidResolver,
    Ed25519Signer,
    StatusListRegistry,
    VerificationFailed,
    decode_status_list,
    encode_status_list,
    issue_credential,
    status_bit,
)
from simtrust.identity._schema import MIGRATIONS as IDENTITY_MIGRATIONS
from simtrust.ledger import Ed25519Signer as NodeSigner
from simtrust.ledger import FinalizedMessage, LedgerNode, TaggedData
from simtrust.store import SqliteDatabase, apply_migrations

A_SIM = "234150000000001"  # operator A's subscriber, roaming on B
C_SIM = "310260000000042"  # operator C's subscriber
STOLEN = "490154203237518"  # a valid IMEI (Luhn)
OTHER_IMEI = "356938035643809"
EPOCH = "2026-12"
KEYS = ConsortiumKeys([ConsortiumKey(EPOCH, bytes(range(32)))], EPOCH)


def _did_signer(seed: int) -> Ed25519Signer:
    """An operator's did:key issuer (resolvable by every member without a registry)."""
    return Ed25519Signer.from_seed(bytes([seed + 0x40]) * 32)


class ListSink:
    """An alert sink that keeps what it was given (the operator's alert inbox)."""

    name = "inbox"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        pass


@dataclass
class Operator:
    name: str
    node: LedgerNode
    signer: Ed25519Signer
    own: list[str]
    status: ReportStatusList
    members: list[str] = field(default_factory=list)
    sink: ListSink = field(default_factory=ListSink)
    service: DetectionService | None = None
    intel: FraudIntelligence | None = None

    def join(self, members: list[str], policy: SharingPolicy | None = None) -> None:
        self.service = DetectionService([self.sink])
        self.intel = FraudIntelligence(
            me=self.signer.controller, members=members, keys=KEYS, resolver=DidResolver(),
            own_imsis=lambda: self.own, own_version=lambda: len(self.own),
            deliver=self.service.deliver, policy=policy, status=self.status)
        self.service.fraud.shared_blocklist = self.intel.blocked_by
        self.node.register_handler("tagged-data", self.intel, replay_from=1)

    def submit(self, tag: bytes, data: bytes) -> bytes:
        return self.node.issue_data(tag, data)


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[dict[str, Operator]]:
    made = {}
    genesis = None
    for i, name in enumerate("ABCX"):
        node = LedgerNode(SqliteDatabase(tmp_path / f"{name}.db"), NodeSigner(bytes([i + 1]) * 32),
                          genesis=genesis)
        genesis = node.genesis
        made[name] = Operator(name, node, _did_signer(i), {"A": [A_SIM], "C": [C_SIM]}.get(name, []),
                              _status_list(tmp_path, name, _did_signer(i)))
    members = [made[n].signer.controller for n in "ABC"]  # X is not a member
    for name in "ABC":
        made[name].join(members)
    yield made
    for op in made.values():
        op.node.close()


def _status_list(tmp_path: Path, name: str, signer: Ed25519Signer) -> ReportStatusList:
    """The operator's revocation list of its reports, in its own identity tables."""
    db = SqliteDatabase(tmp_path / f"{name}-identity.db")
    apply_migrations(db, IDENTITY_MIGRATIONS)
    url = f"https://{name.lower()}.operator.example/credentials/status/fraud-reports/1"
    return ReportStatusList(StatusListRegistry(db), url, lambda: signer)


def _relay(ops: dict[str, Operator], source: str, message_id: bytes) -> None:
    raw = ops[source].node.get_raw(message_id)
    for name, op in ops.items():
        if name != source and name != "X":
            op.node.submit(raw)


def _report(op: Operator, now: datetime | None = None, **kw: Any) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    args: dict[str, Any] = {
        "indicator": "cloned-sim", "severity": "high", "imsis": [A_SIM],
        "evidence": {"feature": "serving_network_alternation", "route": ["23415", "26201"]},
        "observed_at": now - timedelta(hours=1), "now": now,
    }
    args.update(kw)
    return fraud_report(op.signer, KEYS.get(EPOCH), **args,
                        status_entry=lambda rid: op.status.entry(rid, now))


def _publish(ops: dict[str, Operator], source: str, kind: str, body: dict[str, Any]) -> bytes:
    mid = ops[source].submit(INTEL_TAG, intel_payload(kind, body))
    _relay(ops, source, mid)
    return mid


def _outcome(op: Operator, mid: bytes) -> tuple[str, str] | None:
    assert op.intel is not None
    return op.intel.outcome(mid)


def test_a_report_reaches_the_home_operator_and_reveals_nothing_to_others(
        ops: dict[str, Operator]) -> None:
    report = _report(ops["B"], imeis=[STOLEN])
    mid = _publish(ops, "B", "report", report)
    assert all(("applied", "report") == _outcome(ops[n], mid) for n in "ABC")
    # A knows the SIM: one alert through its alert stack, with the partner's evidence digest
    [alert] = ops["A"].sink.alerts
    assert ("shared-report", A_SIM, "high") == (alert.kind, alert.imsi, alert.severity)
    assert report["id"] == alert.evidence["report"]
    assert ops["B"].signer.controller == alert.evidence["reporter"]
    # C does not know it: nothing; the ledger message holds no identifier in clear
    assert [] == ops["C"].sink.alerts
    raw = ops["C"].node.get_raw(mid)
    for clear in (A_SIM, STOLEN, STOLEN[:14]):
        assert clear.encode() not in raw
    assert {"imsi": 1, "imei": 1} == ops["C"].intel.report(report["id"])["identifiers"]  # type: ignore[union-attr]


def test_equipment_report_feeds_the_partners_blocklist_until_revoked(
        ops: dict[str, Operator]) -> None:
    report = _report(ops["B"], indicator="stolen-equipment", imsis=[], imeis=[STOLEN])
    _publish(ops, "B", "report", report)
    c = ops["C"]
    assert c.service is not None
    assert c.intel is not None
    found = c.service.observe_sim(SimEvent(at=1000.0, imsi=imsi_digits(C_SIM), kind="location",
                                           plmn="310260", imei=STOLEN))
    assert [("equipment", "imei_shared_blocklist", report["id"])] == [
        (a.kind, a.evidence["feature"], a.evidence.get("report")) for a in found]
    # another device of C's is not blocked
    assert [] == c.service.observe_sim(SimEvent(at=1001.0, imsi=imsi_digits("310260000000043"),
                                                kind="location", plmn="310260",
                                                imei=OTHER_IMEI))
    # only B can revoke; A's attempt is refused with a reason and changes nothing
    now = datetime.now(UTC)
    with pytest.raises(PermissionDenied):
        c.intel.revoke(ops["A"].submit, ops["A"].signer, report["id"], "wrong", now)
    forged = _publish(ops, "A", "revocation",
                      _signed_revocation(ops["A"], report["id"], now))
    assert ("refused", "not-the-reporter") == _outcome(c, forged)
    assert c.intel.blocked_by(STOLEN) == report["id"]
    mid = ops["B"].intel.revoke(ops["B"].submit, ops["B"].signer, report["id"],  # type: ignore[union-attr]
                                "device recovered", now)
    _relay(ops, "B", mid)
    assert ("applied", "status-list") == _outcome(c, mid)
    assert c.intel.blocked_by(STOLEN) is None
    assert c.intel.report(report["id"])["revoked"].startswith("status list https://b.")
    assert {"reports": 1, "confirmed": 0, "revoked": 1} == {
        k: v for k, v in c.intel.reputation(ops["B"].signer.controller).items()
        if k in ("reports", "confirmed", "revoked")}


def _signed_revocation(op: Operator, report_id: str, now: datetime) -> dict[str, Any]:
    # build the document directly: FraudIntelligence.revoke refuses before signing
    from simtrust.fraudshare._intel import revocation  # noqa: PLC0415 - the private builder

    return revocation(op.signer, report_id, "wrong", now)


def test_policy_keeps_a_low_reputation_reporters_blocklist_out(tmp_path: Path,
                                                               ops: dict[str, Operator]) -> None:
    c = ops["C"]
    assert c.intel is not None
    strict = FraudIntelligence(me=c.signer.controller, members=c.intel.members, keys=KEYS,
                               resolver=DidResolver(), policy=SharingPolicy(min_reputation=0.6))
    c.node.register_handler("tagged-data", strict, replay_from=1)
    _publish(ops, "B", "report", _report(ops["B"], indicator="stolen-equipment", imsis=[],
                                         imeis=[STOLEN]))
    assert c.intel.blocked_by(STOLEN) is not None
    assert strict.blocked_by(STOLEN) is None  # B's reputation is 0.5, below 0.6


def test_confirmations_build_reputation(ops: dict[str, Operator]) -> None:
    report = _report(ops["B"])
    _publish(ops, "B", "report", report)
    a = ops["A"]
    assert a.intel is not None
    mid = a.intel.confirm(a.submit, a.signer, report["id"], datetime.now(UTC))
    _relay(ops, "A", mid)
    body = a.node.get_message(mid).body
    assert isinstance(body, TaggedData)
    again = _publish(ops, "A", "confirmation", json.loads(body.data)["confirmation"])
    b_rep = ops["C"].intel.reputation(ops["B"].signer.controller)  # type: ignore[union-attr]
    assert (1, 0, 0.667) == (b_rep["confirmed"], b_rep["revoked"], b_rep["score"])
    assert ("refused", "replayed") == _outcome(ops["C"], again)
    # a reporter cannot confirm itself
    self_conf = ops["B"].intel.confirm(ops["B"].submit, ops["B"].signer,  # type: ignore[union-attr]
                                       report["id"], datetime.now(UTC))
    assert ("refused", "self-confirmation") == _outcome(ops["B"], self_conf)


def test_forged_replayed_stale_foreign_and_malformed_reports_are_refused(
        ops: dict[str, Operator]) -> None:
    b, c = ops["B"], ops["C"]
    good = _report(b)
    _publish(ops, "B", "report", good)
    forged = json.loads(json.dumps(_report(b)))
    forged["credentialSubject"]["severity"] = "critical"  # altered after signing
    stale_at = datetime.now(UTC) - timedelta(days=2)
    stale = _report(b, now=stale_at)
    foreign = _report(ops["X"])  # a valid signature by a non-member
    clear = _report(b)
    clear_body = json.loads(json.dumps(clear))
    clear_body["credentialSubject"]["identifiers"] = [{"scheme": "imsi", "keyedHash": A_SIM}]
    cases = {
        "replayed": intel_payload("report", good),
        "stale": intel_payload("report", stale),
        "not-a-member": intel_payload("report", foreign),
        "malformed": b'{"v": 1, "kind": "report"}',
    }
    for expected, data in cases.items():
        mid = b.submit(INTEL_TAG, data)
        _relay(ops, "B", mid)
        assert ("refused", expected) == _outcome(c, mid), expected
    for doc in (forged, clear_body):
        mid = b.submit(INTEL_TAG, intel_payload("report", doc))
        _relay(ops, "B", mid)
        outcome = _outcome(c, mid)
        assert outcome is not None
        assert "refused" == outcome[0]
        assert outcome[1] != "replayed"
    # a revocation of an unknown report; other tags are not ours and are left alone
    mid = b.submit(INTEL_TAG, intel_payload("revocation", _signed_revocation(
        b, "urn:uuid:nothing", datetime.now(UTC))))
    assert ("refused", "unknown-report") == _outcome(b, mid)
    other = b.submit(b"another/tag", b"not json")
    assert _outcome(b, other) is None
    assert 1 == len(c.intel.reports())  # type: ignore[union-attr]


def test_state_is_rebuilt_from_the_ledger(tmp_path: Path, ops: dict[str, Operator]) -> None:
    report = _report(ops["B"], indicator="stolen-equipment", imeis=[STOLEN])
    _publish(ops, "B", "report", report)
    c = ops["C"]
    again = FraudIntelligence(me=c.signer.controller, members=c.intel.members,  # type: ignore[union-attr]
                              keys=KEYS, resolver=DidResolver())
    c.node.register_handler("tagged-data", again, replay_from=1)
    assert [report["id"]] == [r["id"] for r in again.reports()]
    assert report["id"] == again.blocked_by(STOLEN)


def test_keyed_hashes_match_imei_and_imeisv_and_differ_per_epoch() -> None:
    k1, k2 = ConsortiumKey("e1", b"\x01" * 32), ConsortiumKey("e2", b"\x02" * 32)
    assert k1.hash("imei", STOLEN) == k1.hash("imei", STOLEN[:14] + "07")
    assert k1.hash("imei", STOLEN) != k2.hash("imei", STOLEN)
    assert k1.hash("imsi", A_SIM) != k1.hash("imei", A_SIM[:15])
    assert "e1" in repr(k1)
    assert "01" * 4 not in repr(k1)
    with pytest.raises(InvalidInput):
        ConsortiumKey("e3", b"short")
    with pytest.raises(InvalidInput):
        k1.hash("imsi", "not-digits")


def test_check_report_refuses_a_report_without_proof_or_status_entry() -> None:
    signer = _did_signer(9)
    entry = {"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
             "statusListIndex": "7", "statusListCredential": "https://x.example/status/1"}
    for drop in ("proof", "credentialStatus"):
        report = fraud_report(signer, KEYS.get(EPOCH), indicator="sim-box", severity="low",
                              evidence={}, observed_at=datetime.now(UTC), now=datetime.now(UTC),
                              imsis=[C_SIM], status_entry=lambda _rid: dict(entry))
        del report[drop]
        with pytest.raises(VerificationFailed) as info:
            check_report(report, resolver=DidResolver(), now=datetime.now(UTC),
                         status=ReceivedStatusLists(DidResolver()))
        assert "malformed" == info.value.reason
    # a suspension entry is not a revocation entry
    report = fraud_report(signer, KEYS.get(EPOCH), indicator="sim-box", severity="low",
                          evidence={}, observed_at=datetime.now(UTC), now=datetime.now(UTC),
                          imsis=[C_SIM],
                          status_entry=lambda _rid: {**entry, "statusPurpose": "suspension"})
    with pytest.raises(VerificationFailed) as info:
        check_report(report, resolver=DidResolver(), now=datetime.now(UTC),
                     status=ReceivedStatusLists(DidResolver()))
    assert "malformed" == info.value.reason


class _Message:
    """A finalized tagged-data message built from fuzzed bytes (the handler's contract)."""

    def __init__(self, data: bytes) -> None:
        self.message_id = b"\x00" * 32
        self.issuer = b"\x00" * 32
        self.issued_at = datetime.now(UTC)
        self.payload_type = "tagged-data"
        self.payload = b""
        self.body = TaggedData(INTEL_TAG, data)
        self.order = 1


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda kids: st.lists(kids, max_size=4)
                 | st.dictionaries(st.text(max_size=12), kids, max_size=4),
                 max_leaves=20).map(lambda doc: json.dumps(
                     {"v": 1, "kind": "report", "report": doc}).encode()),
))
def test_untrusted_payloads_are_refused_with_a_reason_never_raised(data: bytes) -> None:
    intel = FraudIntelligence(me="did:key:z6Mkme", members=[], keys=KEYS, resolver=DidResolver())
    message: FinalizedMessage = _Message(data)  # type: ignore[assignment]
    intel.apply(message)  # never raises: a member's refusal must not void the message
    outcome = intel.outcome(b"\x00" * 32)
    assert outcome is not None
    assert "refused" == outcome[0]


def test_a_sim_added_after_a_report_matches_the_next_one(ops: dict[str, Operator]) -> None:
    _publish(ops, "B", "report", _report(ops["B"]))
    assert 1 == len(ops["A"].sink.alerts)
    new_sim = "234150000000002"
    ops["A"].own.append(new_sim)
    _publish(ops, "B", "report", _report(ops["B"], imsis=[new_sim]))
    assert [A_SIM, new_sim] == [a.imsi for a in ops["A"].sink.alerts]


def _bit(listed: dict[str, Any], index: int) -> bool:
    return status_bit(decode_status_list(listed["credentialSubject"]["encodedList"]), index)


def test_a_report_carries_a_status_entry_and_is_withdrawn_by_its_reporters_list(
        ops: dict[str, Operator]) -> None:
    """Bitstring Status List v1.0: §2.1 entry in the report, §3.1 the reporter sets the
    bit, §3.2 members verify the list (proof, issuer, id, purpose) and read the bit."""
    b, a = ops["B"], ops["A"]
    report = _report(b)
    entry = report["credentialStatus"]
    assert ("BitstringStatusListEntry", "revocation", b.status.list_id) == (
        entry["type"], entry["statusPurpose"], entry["statusListCredential"])
    index = int(entry["statusListIndex"])
    _publish(ops, "B", "report", report)
    assert 1 == len(a.sink.alerts)
    before = b.status.published()
    assert not _bit(before, index)
    assert 0.5 == a.intel.reputation(b.signer.controller)["score"]  # type: ignore[union-attr]

    mid = b.intel.revoke(b.submit, b.signer, report["id"], "wrong SIM", datetime.now(UTC))  # type: ignore[union-attr]
    _relay(ops, "B", mid)
    listed = b.status.published()
    assert _bit(listed, index)
    assert all(("applied", "status-list") == _outcome(ops[n], mid) for n in "ABC")
    # A held an alert for its SIM: the withdrawal comes through the same alert stack
    withdrawn = a.sink.alerts[-1]
    assert (A_SIM, "shared_fraud_report_withdrawn", report["id"], True) == (
        withdrawn.imsi, withdrawn.evidence["feature"], withdrawn.evidence["report"],
        withdrawn.evidence["withdrawn"])
    assert [] == ops["C"].sink.alerts  # C matched nothing, so nothing is withdrawn there
    assert 0.333 == a.intel.reputation(b.signer.controller)["score"]  # type: ignore[union-attr]
    assert 1 == a.intel.stats()["withdrawn"]  # type: ignore[union-attr]
    # B cannot revoke it twice
    with pytest.raises(Conflict):
        b.intel.revoke(b.submit, b.signer, report["id"], "again", datetime.now(UTC))  # type: ignore[union-attr]
    # the older list again (replay) is refused and does not undo the withdrawal
    old = _publish(ops, "B", "status-list", before)
    assert ("refused", "replayed") == _outcome(a, old)
    assert a.intel.report(report["id"])["revoked"] is not None  # type: ignore[union-attr]


def test_status_lists_that_are_not_the_reporters_are_refused(ops: dict[str, Operator]) -> None:
    b, a, c = ops["B"], ops["A"], ops["C"]
    report = _report(b)
    index = int(report["credentialStatus"]["statusListIndex"])
    _publish(ops, "B", "report", report)
    now = datetime.now(UTC)
    # A signs a list under B's URL with B's report's bit set: squatting a reporter's list
    squat = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": b.status.list_id, "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": a.signer.controller, "validFrom": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "credentialSubject": {"id": f"{b.status.list_id}#list", "type": "BitstringStatusList",
                              "statusPurpose": "revocation",
                              "encodedList": encode_status_list(_set(index))},
    }
    mid = _publish(ops, "A", "status-list", issue_credential(squat, a.signer, now=now))
    assert ("refused", "not-the-reporter") == _outcome(c, mid)
    # B's own list with the bit flipped after signing: the proof fails
    mid = b.intel.revoke(b.submit, b.signer, report["id"], "x", now)  # type: ignore[union-attr]
    body = b.node.get_message(mid).body
    assert isinstance(body, TaggedData)
    tampered = json.loads(body.data)["status-list"]
    tampered["credentialSubject"]["encodedList"] = encode_status_list(bytes(MIN_LIST_SIZE // 8))
    c_mid = c.submit(INTEL_TAG, intel_payload("status-list", tampered))
    outcome = _outcome(c, c_mid)
    assert outcome is not None
    assert "refused" == outcome[0]
    assert c.intel.report(report["id"])["revoked"] is None  # type: ignore[union-attr]
    # B's list itself withdraws the report
    _relay(ops, "B", mid)
    assert c.intel.report(report["id"])["revoked"] is not None  # type: ignore[union-attr]
    # a report published after its bit is set is refused as revoked
    late = json.loads(json.dumps(report))
    late_mid = _publish(ops, "B", "report", late)
    assert ("refused", "revoked") == _outcome(b, late_mid)
    # a list that no report uses
    other = ReportStatusList(b.status._registry, "https://b.operator.example/other/1",
                             lambda: b.signer)
    other.entry("urn:uuid:unused", now)
    unused = _publish(ops, "B", "status-list", other.published())
    assert ("refused", "unknown-report") == _outcome(c, unused)


def _set(index: int) -> bytes:
    bits = bytearray(MIN_LIST_SIZE // 8)
    bits[index // 8] |= 0x80 >> (index % 8)
    return bytes(bits)
