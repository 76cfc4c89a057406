"""The message encoding: one canonical form, strict decoding, fuzzed (docs/ledger.md "Message format")."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import Rejected
from simtrust.ledger import (
    MAX_MESSAGE_SIZE,
    Anchor,
    Ed25519Signer,
    Foundry,
    Output,
    PayloadType,
    TaggedData,
    Transaction,
    Unlock,
    decode_message,
    encode_anchor,
    encode_tagged_data,
    encode_transaction,
    message_id,
    network_id_from_name,
    output_id,
    signing_bytes,
)

KEY = Ed25519Signer(b"\x07" * 32)
NET = network_id_from_name("simtrust-local")
P1, P2 = b"\x01" * 32, b"\x02" * 32


def sign(ptype: int, payload: bytes, parents: list[bytes] | None = None, at: int = 1_000) -> bytes:
    body = signing_bytes(NET, KEY.public_key, at, parents or [P1], ptype, payload)
    return body + KEY.sign(body)


def test_layout_is_byte_exact() -> None:
    """The header fields sit where docs/ledger.md says, big-endian."""
    raw = sign(PayloadType.TAGGED_DATA, encode_tagged_data(b"t", b"hi"), [P2, P1], at=0x0102)
    assert raw[0] == 1
    assert raw[1:9] == NET
    assert raw[9:41] == KEY.public_key
    assert raw[41:49] == struct.pack(">Q", 0x0102)
    assert raw[49] == 2
    assert raw[50:114] == P1 + P2  # sorted
    assert raw[114] == PayloadType.TAGGED_DATA
    assert raw[115:119] == struct.pack(">I", 8)
    assert raw[119:127] == b"\x01t\x00\x00\x00\x02hi"
    assert len(raw) == 127 + 64
    assert message_id(raw) == decode_message(raw).id


def test_network_id_is_blake2b_prefix() -> None:

    assert hashlib.blake2b(b"simtrust-local", digest_size=32).digest()[:8] == NET


def test_roundtrip_every_payload_type() -> None:
    tx = encode_transaction(
        [output_id(P1, 1), output_id(P1, 0)],
        [Output(KEY.public_key, 5, ((b"\x09" * 32, 3),)),
         Output(b"\x05" * 32, 0, (), Foundry(b"\x09" * 32, 3, 10))],
        [Unlock(b"\x06" * 32, b"\x00" * 64)],
    )
    payloads = {
        PayloadType.TAGGED_DATA: encode_tagged_data(b"tag", b"data"),
        PayloadType.TRANSACTION: tx,
        PayloadType.ANCHOR: encode_anchor(Anchor("audit", 1, 9, 9, b"\x03" * 32)),
        PayloadType.IDENTITY: b"did-op",
        PayloadType.VALIDATOR_BLOCK: b"block",
        PayloadType.CONTRACT: b"transition",
    }
    for ptype, payload in payloads.items():
        m = decode_message(sign(ptype, payload))
        assert ptype == m.payload_type
        assert payload == m.payload
    body = decode_message(sign(PayloadType.TRANSACTION, tx)).body
    assert isinstance(body, Transaction)
    assert [output_id(P1, 0), output_id(P1, 1)] == list(body.inputs)  # canonical order
    assert body.outputs[1].foundry == Foundry(b"\x09" * 32, 3, 10)
    assert TaggedData(b"tag", b"data") == decode_message(
        sign(PayloadType.TAGGED_DATA, payloads[PayloadType.TAGGED_DATA])).body


def _reason(raw: bytes) -> str:
    with pytest.raises(Rejected) as info:
        decode_message(raw)
    return info.value.reason


def test_trailing_bytes_rejected() -> None:
    assert "encoding" == _reason(sign(0, encode_tagged_data(b"", b"x")) + b"\x00")


def test_unsorted_or_duplicate_parents_rejected() -> None:
    raw = bytearray(sign(0, encode_tagged_data(b"", b"x"), [P1, P2]))
    raw[50:114] = P2 + P1
    assert "encoding" == _reason(bytes(raw))
    raw[50:114] = P1 + P1
    assert "encoding" == _reason(bytes(raw))


@pytest.mark.parametrize("count", [0, 9])
def test_parent_count_bounds(count: int) -> None:
    raw = bytearray(sign(0, encode_tagged_data(b"", b"x")))
    raw[49] = count
    assert "encoding" == _reason(bytes(raw))


def test_unknown_version_and_type_rejected() -> None:
    raw = bytearray(sign(0, encode_tagged_data(b"", b"x")))
    raw[0] = 2
    assert "encoding" == _reason(bytes(raw))
    raw = bytearray(sign(0, encode_tagged_data(b"", b"x")))
    raw[82] = 6  # payload type byte with one parent
    assert "encoding" == _reason(bytes(raw))


def test_size_limit() -> None:
    big = sign(PayloadType.IDENTITY, b"x" * (MAX_MESSAGE_SIZE - 151))
    assert MAX_MESSAGE_SIZE == len(big)
    decode_message(big)
    assert "size" == _reason(sign(PayloadType.IDENTITY, b"x" * (MAX_MESSAGE_SIZE - 150)))


def test_payload_internal_lengths_strict() -> None:
    data = encode_tagged_data(b"t", b"abc")
    assert "encoding" == _reason(sign(0, data + b"\x00"))
    assert "encoding" == _reason(sign(0, data[:-1]))


def test_transaction_canonical_rules() -> None:
    good = encode_transaction([output_id(P1, 0)], [Output(P2, 1)])
    decode_message(sign(1, good))
    dup = bytes([2]) + output_id(P1, 0) * 2 + good[35:]
    assert "encoding" == _reason(sign(1, dup))
    zero = encode_transaction([output_id(P1, 0)], [Output(P2, 0)])
    assert "payload" == _reason(sign(1, zero))
    over = encode_transaction([output_id(P1, 0)], [Output(P2, 2**63), Output(P1, 2**63)])
    assert "payload" == _reason(sign(1, over))
    minted_over = encode_transaction(
        [output_id(P1, 0)], [Output(P2, 1, (), Foundry(b"\x01" * 32, 11, 10))]
    )
    assert "payload" == _reason(sign(1, minted_over))


def test_anchor_rules() -> None:
    assert "payload" == _reason(sign(2, encode_anchor(Anchor("audit", 5, 4, 1, b"\x00" * 32))))
    assert "encoding" == _reason(sign(2, encode_anchor(Anchor("audit", 1, 4, 4, b"\x00" * 31))))


def test_empty_opaque_payload_rejected() -> None:
    assert "encoding" == _reason(sign(PayloadType.IDENTITY, b""))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes_only_reject(data: bytes) -> None:
    """Arbitrary bytes decode or raise Rejected, nothing else."""
    try:
        m = decode_message(data)
    except Rejected as exc:
        reason = exc.reason
    else:
        reason = "ok"
        assert data == m.raw
    assert reason in {"encoding", "size", "payload", "ok"}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutations_of_valid_message(data: st.DataObject) -> None:
    """Flipping, cutting or extending a valid message never crashes the decoder."""
    raw = bytearray(sign(1, encode_transaction([output_id(P1, 0)], [Output(P2, 7)])))
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    candidate = bytes(raw[:cut]) + data.draw(st.binary(max_size=8))
    try:
        m = decode_message(candidate)
    except Rejected:
        return
    assert candidate == m.raw


@settings(max_examples=200, deadline=None)
@given(
    tag=st.binary(max_size=64),
    payload=st.binary(max_size=300),
    parents=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=8, unique=True),
    at=st.integers(0, 2**64 - 1),
)
def test_roundtrip_property(tag: bytes, payload: bytes, parents: list[bytes], at: int) -> None:
    raw = sign(0, encode_tagged_data(tag, payload), parents, at)
    m = decode_message(raw)
    assert (tag, payload) == (m.body.tag, m.body.data)  # type: ignore[union-attr]
    assert sorted(parents) == list(m.parents)
    assert at == m.issued_at
