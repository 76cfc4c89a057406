"""The stored streams service on SQLite and PostgreSQL: channels, frames, provenance and
meters survive a restart; device certificates gate meters; security events annotate."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from simtrust.bootstrap import DeviceClaims
from simtrust.crypto import Keyring
from simtrust.errors import Conflict, DecodeError, InvalidSignature, Rejected
from simtrust.identity import Ed25519Signer, issue_credential
from simtrust.runtime import Runtime
from simtrust.store import PostgresDatabase, open_database
from simtrust.streams import (
    Author,
    MeterReading,
    ProvenanceGraph,
    Reader,
    SubscriberKey,
    encode_reading,
    stream_domain,
    verify_message_proof,
)
from tests.conftest import PG_URL, close_runtime, make_runtime
from tests.streams.world import TENANT, certificate, setup_tenant, sim_meter
from tests.subscriber.conftest import imei


def _reopen(rt: Runtime) -> Runtime:
    """The same store and master key in a fresh runtime (a restarted process)."""
    db = rt.db
    schema = db.schema if isinstance(db, PostgresDatabase) else None
    settings = rt.settings
    rt.close()
    url = PG_URL if schema else settings.store_url
    return Runtime(settings, open_database(url, schema=schema),
                   Keyring.load(settings.master_key_file))


@dataclass
class Box:
    rt: Runtime


@pytest.fixture
def box(store_kind: str, tmp_path: Path) -> Iterator[Box]:
    holder = Box(make_runtime(store_kind, tmp_path / "home"))
    yield holder
    close_runtime(holder.rt)


def _reading(meter_did: str, wh: int, at: int) -> bytes:
    return encode_reading(MeterReading(meter_did, wh, at))


def test_a_registered_meter_is_annotated_and_everything_survives_a_restart(box: Box) -> None:
    rt = box.rt
    setup_tenant(rt)
    meter = sim_meter(rt, 1)
    streams = rt.streams
    streams.open_channel(TENANT, meter.author.announce.to_bytes(), label="meter 1",
                         actor="test")
    channel = meter.author.channel.hex()
    registered = streams.register_meter(TENANT, channel, meter.credential, actor="test")
    assert (meter.imsi, meter.imei, "active") == (
        registered["imsi"], registered["imei"], registered["status"])
    # The SIM attaches in its certified device: bound, and the attach event is seen.
    assert rt.subscriber.attach.decide(meter.imsi, meter.imei, "00101").allowed
    address = rt.subscriber.addresses.address_of(meter.imsi)
    first = streams.publish(channel, meter.author.publish(
        _reading(meter.meter_did, 1_000, 100)).to_bytes(), source=address, actor="test")
    kinds = {a["kind"]: a["satisfied"] for a in first["annotations"]}
    assert {"signature": True, "sim": True, "tls": False, "source": True,
            "clean": True} == kinds
    assert str(Fraction(9, 12)) == first["score"]
    second = meter.author.publish(_reading(meter.meter_did, 1_500, 200)).to_bytes()
    assert "ok" == streams.publish(channel, second, source=address, actor="test")["verdict"]
    anchored = streams.anchor(channel, actor="test")
    assert 3 == anchored["anchored"]

    rt = box.rt = _reopen(rt)
    streams = rt.streams
    # The SIM's key lives in its secure element, in the store: the author resumes.
    signer = rt.identity.element(meter.iccid).signer("did-key-1", f"{meter.sim.did}#key-1")
    meter.author = Author.resume(signer, lambda: 10**12, meter.author.announce,
                                 meter.author.heads)
    stored = streams.channel(channel)
    assert (3, 3, meter.iccid) == (stored["messages"], stored["anchored"], stored["iccid"])
    assert 1_500 == streams.meter(meter.meter_did)["register_wh"]
    # The reader was rebuilt from the stored frames: a replay is still a replay ...
    with pytest.raises(Conflict) as replay:
        streams.publish(channel, second, actor="test")
    assert "replay" == replay.value.context["verdict"]
    assert {"replay": 1} == streams.channel(channel)["rejected"]
    # ... and the chain goes on where it stopped.
    third = streams.publish(channel, meter.author.publish(
        _reading(meter.meter_did, 1_700, 300)).to_bytes(), source=address, actor="test")
    assert ("ok", 4) == (third["verdict"], third["seq"] + 1)
    # The anchored reading is proven from the ledger alone, and its graph checks.
    message = streams.message(first["message_id"])
    proof = message["proof"]
    anchor = rt.ledger.anchor_covering(stream_domain(meter.author.channel), proof["position"])
    assert anchor is not None
    verify_message_proof(base64.b64decode(message["frame"]), proof,
                         anchor["root"])
    graph = streams.provenance(first["message_id"])
    ProvenanceGraph.check(graph)
    assert str(Fraction(10, 12)) == graph["score"]


def test_bad_frames_are_refused_counted_and_audited(box: Box) -> None:
    rt = box.rt
    setup_tenant(rt, sims=0)
    author_key = Ed25519Signer.generate()
    author = Author(author_key, lambda: 1)
    streams = rt.streams
    channel = streams.open_channel(TENANT, author.announce.to_bytes(), actor="t")["id"]
    good = author.publish(b"hello").to_bytes()
    forged = bytearray(author.publish(b"second").to_bytes())
    forged[170] ^= 1
    with pytest.raises(InvalidSignature):
        streams.publish(channel, bytes(forged), actor="t")
    with pytest.raises(DecodeError):
        streams.publish(channel, b"STF1 no frame", actor="t")
    result = streams.publish(channel, good, actor="t")
    assert {"signature": True, "sim": False} == {
        a["kind"]: a["satisfied"] for a in result["annotations"]
        if a["kind"] in ("signature", "sim")}
    assert {"forged": 1, "malformed": 1} == streams.channel(channel)["rejected"]
    assert 2 == len(rt.audit.query(action="stream.reject", limit=10))


def test_meter_identity_needs_a_trusted_unrevoked_certificate_of_the_signing_sim(
        box: Box) -> None:
    rt = box.rt
    setup_tenant(rt)
    meter, other = sim_meter(rt, 1), sim_meter(rt, 2)
    streams = rt.streams
    channel = streams.open_channel(TENANT, meter.author.announce.to_bytes(), actor="t")["id"]
    # Another SIM's certificate does not name this channel's key.
    with pytest.raises(Rejected) as wrong_key:
        streams.register_meter(TENANT, channel, other.credential, actor="t")
    assert "key-not-in-sim" == wrong_key.value.reason
    # A certificate by an issuer the platform does not trust.
    stranger = Ed25519Signer.generate()
    foreign = issue_credential({
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],
        "type": ["VerifiableCredential", "DeviceCertificate"],
        "issuer": stranger.controller,
        "credentialSubject": {"id": meter.sim.did, "meter": meter.meter_did,
                              "iccid": meter.iccid, "imei": meter.imei},
    }, stranger, now=rt.identity.now())
    with pytest.raises(Rejected) as unknown:
        streams.register_meter(TENANT, channel, foreign, actor="t")
    assert "unknown-issuer" == unknown.value.reason
    # A revoked certificate.
    rt.identity.set_status(meter.credential["credentialStatus"], True)
    with pytest.raises(Rejected) as revoked:
        streams.register_meter(TENANT, channel, meter.credential, actor="t")
    assert "revoked" == revoked.value.reason
    fresh = certificate(rt, {"id": meter.sim.did, "meter": meter.meter_did,
                             "iccid": meter.iccid, "imei": meter.imei})
    assert "active" == streams.register_meter(TENANT, channel, fresh, actor="t")["status"]
    assert [] == streams.meters("other-tenant")
    reading = meter.author.publish(_reading(meter.meter_did, 1, 1)).to_bytes()
    assert "ok" == streams.publish(channel, reading, actor="t")["verdict"]
    # Revoked after registration: the next check stops the meter's readings.
    rt.identity.set_status(fresh["credentialStatus"], True)
    assert "revoked" == streams.verify_meter(meter.meter_did, actor="t")["status"]
    with pytest.raises(Rejected) as stopped:
        streams.publish(channel, meter.author.publish(
            _reading(meter.meter_did, 2, 2)).to_bytes(), actor="t")
    assert "revoked" == stopped.value.reason
    assert {"certificate-revoked"} == {a["kind"] for a in streams.meter(meter.meter_did)["alerts"]}
    assert {"revoked": 1} == streams.channel(channel)["rejected"]


def test_security_events_annotate_the_data_of_the_sim(box: Box) -> None:
    rt = box.rt
    setup_tenant(rt)
    meter = sim_meter(rt, 1)
    streams = rt.streams
    channel = streams.open_channel(TENANT, meter.author.announce.to_bytes(), actor="t")["id"]
    streams.register_meter(TENANT, channel, meter.credential, actor="t")
    rt.subscriber.attach.decide(meter.imsi, meter.imei, "00101")
    first = streams.publish(channel, meter.author.publish(
        _reading(meter.meter_did, 10, 1)).to_bytes(), actor="t")["message_id"]
    # `tls` is about how the datum arrived (not over mTLS here): a tier-2 certificate issued
    # to the SIM later, or revoked, does not change it (tests/streams/test_tls_ingest.py).
    cas = rt.bootstrap.cas
    ca = cas.create_hosted(TENANT, "meters", common_name="Acme meters", actor="t")
    before = streams.score(first)
    cas.generate_key_and_issue(ca, DeviceClaims(TENANT, meter.iccid, meter.imsi, meter.imei),
                               actor="t")
    assert before == streams.score(first)
    cas.revoke_sim(meter.iccid, reason="cessationOfOperation", actor="t")
    assert before == streams.score(first)
    tls = [a for a in streams.provenance(first)["nodes"][first]["annotations"]
           if a["kind"] == "tls"]
    assert [False] == [a["satisfied"] for a in tls]

    @dataclass(frozen=True)
    class Scan:
        source: str = "detect"
        kind: str = "scanning"
        tenant_id: str = TENANT
        imsi: str = meter.imsi
        summary: str = "port scan of 512 hosts"

    for sink in rt.detect.sinks:
        if sink.name == "streams":
            sink.send(Scan())
    after = streams.score(first)
    assert before - Fraction(2, 12) == after
    evidence = [a for a in streams.provenance(first)["nodes"][first]["annotations"]
                if a["kind"] == "clean"][-1]
    assert (False, True) == (evidence["satisfied"], "scanning" in evidence["evidence"])
    # The meter's SIM shows up in another device: the attach event drops `sim`, and the
    # next reading from there raises a cloned-meter alert.
    rt.subscriber.attach.decide(meter.imsi, imei(99).value, "00101")
    assert not {a["kind"]: a["satisfied"] for a in
                streams.provenance(first)["nodes"][first]["annotations"]}["sim"]
    clone = streams.publish(channel, meter.author.publish(
        _reading(meter.meter_did, 20, 2)).to_bytes(), actor="t")
    assert "cloned-meter" in {a["kind"] for a in clone["alerts"]}
    assert {"cloned-meter"} <= {a["kind"] for a in streams.meter(meter.meter_did)["alerts"]}
    rollback = streams.publish(channel, meter.author.publish(
        _reading(meter.meter_did, 5, 3)).to_bytes(), actor="t")
    assert "register-rollback" in {a["kind"] for a in rollback["alerts"]}


def test_private_channels_are_relayed_unread_and_subscribers_decrypt_from_the_store(
        box: Box) -> None:
    rt = box.rt
    setup_tenant(rt, sims=0)
    alice, bob = SubscriberKey.generate(), SubscriberKey.generate()
    author = Author(Ed25519Signer.generate(), lambda: 5, private=True)
    streams = rt.streams
    channel = streams.open_channel(TENANT, author.announce.to_bytes(), private=True,
                                   actor="t")["id"]
    sent = [author.set_subscribers([alice.public, bob.public]), author.publish(b"for both"),
            author.remove_subscriber(bob.public), author.publish(b"alice only")]
    results = [streams.publish(channel, f.to_bytes(), actor="t") for f in sent]
    assert ["ok"] * 4 == [r["verdict"] for r in results]
    stored = [base64.b64decode(m["frame"]) for m in streams.messages(channel)]
    assert b"alice only" not in b"".join(stored)  # the platform never held plaintext
    for key, expected in ((alice, [b"for both", b"alice only"]), (bob, [b"for both", None])):
        reader = Reader(stored[0], key)
        payloads = [d.payload for d in map(reader.accept, stored[1:])
                    if d.frame is not None and d.frame.kind.name == "DATA"]
        assert expected == payloads
