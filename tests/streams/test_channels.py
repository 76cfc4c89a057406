"""Channels: frames byte by byte, the reader's verdicts, private channels and keyloads,
anchoring and proofs, provenance scores, and transport over the real Mosquitto broker."""

from __future__ import annotations

import contextlib
import itertools
import struct
import threading
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.crypto.merkle import merkle_root
from simtrust.errors import DecodeError, InvalidInput, InvalidSignature
from simtrust.identity import Ed25519Signer
from simtrust.streams import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    VERDICTS,
    Annotation,
    Author,
    BatchAnchorer,
    ConfidencePolicy,
    Frame,
    FrameKind,
    MqttChannelPublisher,
    MqttChannelSubscriber,
    ProvenanceGraph,
    Reader,
    SubscriberKey,
    decode_frame,
    frame_id,
    sign_annotation,
    stream_domain,
    verify_message_proof,
)


def _clock() -> object:
    ticks = itertools.count(1_700_000_000_000)
    return lambda: next(ticks)


def _author(**kwargs: object) -> Author:
    return Author(Ed25519Signer.generate(), _clock(), **kwargs)  # type: ignore[arg-type]


# --- frames -----------------------------------------------------------------


def test_frame_layout_is_the_documented_one() -> None:
    author = _author()
    frame = author.publish(b"hello").to_bytes()
    assert b"STF1" == frame[:4]
    assert FrameKind.DATA == frame[4]
    assert (0, 1) == struct.unpack(">HQ", frame[6:16])
    assert author.channel == frame[16:48]
    assert author.announce.message_id == frame[48:80]
    assert 5 == struct.unpack(">I", frame[124:128])[0]
    assert b"hello" == frame[HEADER_SIZE:HEADER_SIZE + 5]
    assert HEADER_SIZE + 5 + 64 == len(frame)
    assert decode_frame(frame).to_bytes() == frame


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:100], "shorter"),
        (lambda b: b"XXXX" + b[4:], "magic"),
        (lambda b: b[:4] + b"\x09" + b[5:], "kind"),
        (lambda b: b[:5] + b"\x04" + b[6:], "flags"),
        (lambda b: b[:124] + struct.pack(">I", 6) + b[128:], "header says"),
        (lambda b: b[:124] + struct.pack(">I", MAX_PAYLOAD + 1) + b[128:], "exceeds"),
        (lambda b: b[:130] + b"\x01" + b[131:], "reserved"),
        (lambda b: b[:8] + bytes(8) + b[16:], "seq 0"),
    ],
)
def test_malformed_frames_are_named(mutate: object, reason: str) -> None:
    frame = _author().publish(b"hello").to_bytes()
    with pytest.raises(DecodeError, match=reason):
        decode_frame(mutate(frame))  # type: ignore[operator]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decoder_fuzz_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_frame(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.integers(0, 1000), st.integers(0, 255))
def test_reader_never_raises_on_mutated_frames(payload: bytes, position: int,
                                               value: int) -> None:
    author = _author()
    reader = Reader(author.announce.to_bytes())
    frame = bytearray(author.publish(payload).to_bytes())
    frame[position % len(frame)] = value
    delivery = reader.accept(bytes(frame))
    assert delivery.verdict in VERDICTS
    assert 1 == sum(reader.counts.values())


# --- the reader's verdicts ----------------------------------------------------


def test_in_order_messages_are_ok_with_their_payloads() -> None:
    author = _author()
    reader = Reader(author.announce.to_bytes())
    frames = [author.publish(f"m{i}".encode()).to_bytes() for i in range(5)]
    deliveries = [reader.accept(f) for f in frames]
    assert ["ok"] * 5 == [d.verdict for d in deliveries]
    assert [f"m{i}".encode() for i in range(5)] == [d.payload for d in deliveries]


def test_gap_replay_reorder_fork_and_forgery_are_told_apart() -> None:
    signer = Ed25519Signer.generate()
    author = Author(signer, _clock())  # type: ignore[arg-type]
    reader = Reader(author.announce.to_bytes())
    one, two, three = (author.publish(p).to_bytes() for p in (b"1", b"2", b"3"))
    assert "ok" == reader.accept(one).verdict
    gap = reader.accept(three)
    assert ("gap", (2,)) == (gap.verdict, gap.missing)
    assert "reordered" == reader.accept(two).verdict
    assert "replay" == reader.accept(two).verdict
    # The same key writes a second message 3 with another payload: a fork.
    forked = decode_frame(three)
    other = Frame(forked.kind, forked.branch, forked.seq, forked.channel, forked.prev,
                  forked.author, forked.time_ms, 0, b"other")
    forged_twin = Frame(other.kind, other.branch, other.seq, other.channel, other.prev,
                        other.author, other.time_ms, 0, other.payload, False,
                        signer.sign(other.signed_bytes()))
    assert "fork" == reader.accept(forged_twin.to_bytes()).verdict
    tampered = bytearray(author.publish(b"4").to_bytes())
    tampered[HEADER_SIZE] ^= 1
    assert "forged" == reader.accept(bytes(tampered)).verdict
    stranger = _author().publish(b"x").to_bytes()
    assert "forged" == reader.accept(stranger).verdict
    assert "malformed" == reader.accept(b"junk").verdict
    expected = {"ok": 1, "gap": 1, "reordered": 1, "replay": 1, "fork": 1, "forged": 2,
                "malformed": 1}
    assert expected == dict(reader.counts)


def test_a_late_message_that_does_not_link_is_a_fork() -> None:
    signer = Ed25519Signer.generate()
    author = Author(signer, _clock())  # type: ignore[arg-type]
    reader = Reader(author.announce.to_bytes())
    one = decode_frame(author.publish(b"1").to_bytes())
    author.publish(b"2")
    three = author.publish(b"3").to_bytes()
    assert "ok" == reader.accept(one.to_bytes()).verdict
    assert "gap" == reader.accept(three).verdict
    # A message 2 signed by the key but not the one message 3 follows.
    rogue = Frame(FrameKind.DATA, 0, 2, one.channel, one.message_id, one.author, 1, 0, b"x")
    rogue = Frame(rogue.kind, 0, 2, rogue.channel, rogue.prev, rogue.author, 1, 0, b"x",
                  False, signer.sign(rogue.signed_bytes()))
    assert "fork" == reader.accept(rogue.to_bytes()).verdict


def test_branches_have_their_own_chains() -> None:
    author = _author()
    author.branch(7)
    reader = Reader(author.announce.to_bytes())
    main, side = author.publish(b"a").to_bytes(), author.publish(b"b", branch=7).to_bytes()
    assert ["ok", "ok"] == [reader.accept(f).verdict for f in (side, main)]
    with pytest.raises(InvalidInput):
        author.publish(b"c", branch=8)


# --- private channels -----------------------------------------------------------


def test_removed_subscriber_cannot_read_later_messages() -> None:
    author = _author(private=True)
    alice, bob = SubscriberKey.generate(), SubscriberKey.generate()
    readers = {name: Reader(author.announce.to_bytes(), key)
               for name, key in (("alice", alice), ("bob", bob))}
    outsider = Reader(author.announce.to_bytes(), SubscriberKey.generate())
    frames = [author.set_subscribers([alice.public, bob.public]).to_bytes(),
              author.publish(b"before").to_bytes(),
              author.remove_subscriber(bob.public).to_bytes(),
              author.publish(b"after").to_bytes()]
    seen = {name: [r.accept(f) for f in frames] for name, r in {**readers,
                                                                  "out": outsider}.items()}
    assert [None, b"before", None, b"after"] == [d.payload for d in seen["alice"]]
    assert [None, b"before", None, None] == [d.payload for d in seen["bob"]]
    assert "unreadable" == seen["bob"][3].verdict
    assert ["ok", "unreadable", "ok", "unreadable"] == [d.verdict for d in seen["out"]]
    assert b"after" not in frames[3]


def test_private_channel_refuses_to_publish_before_a_keyload() -> None:
    author = _author(private=True)
    with pytest.raises(InvalidInput, match="keyload"):
        author.publish(b"x")
    with pytest.raises(InvalidInput):
        _author().set_subscribers([])


def test_a_tampered_keyload_entry_is_malformed_not_a_crash() -> None:
    signer = Ed25519Signer.generate()
    author = Author(signer, _clock(), private=True)  # type: ignore[arg-type]
    alice = SubscriberKey.generate()
    keyload = decode_frame(author.set_subscribers([alice.public]).to_bytes())
    payload = bytearray(keyload.payload)
    payload[-1] ^= 1
    bad = Frame(keyload.kind, 0, keyload.seq, keyload.channel, keyload.prev, keyload.author,
                keyload.time_ms, keyload.key_epoch, bytes(payload))
    bad = Frame(bad.kind, 0, bad.seq, bad.channel, bad.prev, bad.author, bad.time_ms,
                bad.key_epoch, bad.payload, False, signer.sign(bad.signed_bytes()))
    assert "malformed" == Reader(author.announce.to_bytes(), alice).accept(
        bad.to_bytes()).verdict


# --- anchoring -------------------------------------------------------------------


def test_a_message_is_proven_against_the_anchored_root_alone() -> None:
    author = _author()
    frames = [author.publish(bytes([i])).to_bytes() for i in range(7)]
    anchored: list[tuple[str, int, int, int, bytes]] = []

    def anchor(domain: str, first: int, last: int, size: int, root: bytes) -> bytes:
        anchored.append((domain, first, last, size, root))
        return bytes([len(anchored)]) * 32

    anchorer = BatchAnchorer(author.channel, anchor)
    batch_one, batch_two = anchorer.anchor(frames[:4]), anchorer.anchor(frames[4:])
    assert [(0, 3, 4), (4, 6, 3)] == [(a[1], a[2], a[3]) for a in anchored]
    assert merkle_root([frame_id(f) for f in frames[4:]]) == anchored[1][4]
    proof = batch_two.proof(frame_id(frames[5]))
    assert 5 == proof["position"]
    verify_message_proof(frames[5], proof, anchored[1][4])
    with pytest.raises(InvalidSignature):
        verify_message_proof(frames[6], proof, anchored[1][4])
    with pytest.raises(InvalidSignature):
        verify_message_proof(frames[5], proof, anchored[0][4])
    with pytest.raises(InvalidInput):
        batch_one.proof(frame_id(frames[5]))


# --- provenance and confidence ------------------------------------------------------


def test_score_is_satisfied_weight_over_all_weight() -> None:
    annotator = Ed25519Signer.generate()
    graph = ProvenanceGraph(ConfidencePolicy({"signature": 3, "sim": 3, "tls": 2, "clean": 2}))
    graph.add("r1")
    for kind, ok in (("signature", True), ("sim", True), ("tls", False)):
        graph.annotate(sign_annotation(annotator, "r1", kind, ok))
    assert Fraction(6, 10) == graph.score("r1")


def test_derived_data_take_their_weakest_input_and_the_graph_verifies() -> None:
    annotator = Ed25519Signer.generate()
    graph = ProvenanceGraph()
    for name, kinds in (("a", ("signature", "sim", "tls", "source", "clean", "anchored")),
                        ("b", ("signature",))):
        graph.add(name)
        for kind in kinds:
            graph.annotate(sign_annotation(annotator, name, kind, True))
    graph.add("sum", inputs=["a", "b"])
    for kind in ("signature", "sim", "tls", "source", "clean", "anchored"):
        graph.annotate(sign_annotation(annotator, "sum", kind, True))
    assert Fraction(1) == graph.score("a")
    assert Fraction(3, 12) == graph.score("b")
    assert graph.score("b") == graph.score("sum")
    document = graph.provenance("sum")
    assert {"a", "b", "sum"} == set(document["nodes"])
    assert [["a", "sum"], ["b", "sum"]] == document["edges"]
    ProvenanceGraph.check(document)
    document["nodes"]["a"]["annotations"][0]["satisfied"] = False
    with pytest.raises(InvalidSignature, match="forged"):
        ProvenanceGraph.check(document)


def test_forged_annotations_and_bad_policies_are_refused() -> None:
    graph = ProvenanceGraph()
    graph.add("r")
    real = sign_annotation(Ed25519Signer.generate(), "r", "tls", False)
    forged = Annotation(real.datum, real.kind, True, real.annotator, "", real.signature)
    with pytest.raises(InvalidSignature):
        graph.annotate(forged)
    assert Fraction(0) == graph.score("r")
    with pytest.raises(InvalidInput):
        ConfidencePolicy({"magic": 1})
    with pytest.raises(InvalidInput):
        ConfidencePolicy({"tls": 0})
    with pytest.raises(InvalidInput):
        graph.add("x", inputs=["missing"])


# --- MQTT on the real broker -------------------------------------------------------


@pytest.mark.mqtt
def test_frames_cross_the_real_broker_and_bad_ones_are_counted(
    require_service: object,
) -> None:
    require_service("mqtt")  # type: ignore[operator]
    url = "mqtt://127.0.0.1:1883"
    author = _author(private=True)
    key = SubscriberKey.generate()
    reader = Reader(author.announce.to_bytes(), key)
    done = threading.Event()
    got: list[str] = []

    def seen(delivery: object) -> None:
        got.append(delivery.verdict)  # type: ignore[attr-defined]
        if len(got) == 5:
            done.set()

    subscriber = MqttChannelSubscriber(url, reader, seen, prefix="simtrust-test/streams")
    publisher = MqttChannelPublisher(url, prefix="simtrust-test/streams")
    try:
        assert subscriber.wait_subscribed()
        frames = [author.set_subscribers([key.public]).to_bytes(),
                  author.publish(b"reading 1").to_bytes(),
                  author.publish(b"reading 2").to_bytes()]
        publisher.publish_many(author.channel, frames)
        publisher.publish(author.channel, b"not a frame")
        publisher.publish(author.channel, frames[1])
        assert done.wait(30), got
    finally:
        publisher.close()
        subscriber.close()
    assert ["ok", "ok", "ok", "malformed", "replay"] == got


def test_anchor_domain_fits_the_ledger() -> None:
    domain = stream_domain(bytes(range(32)))
    assert 50 == len(domain.encode())  # the ledger takes anchor domains of 1..64 bytes
    assert domain.startswith("stream:")
