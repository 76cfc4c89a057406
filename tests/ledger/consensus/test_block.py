"""Validator block encoding (docs/consensus.md §4): one encoding, strict decoding, signatures."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError, InvalidInput, InvalidSignature, PayloadTooLarge
from simtrust.ledger.consensus import MAX_BLOCK_BYTES, Block, BlockRef

from .conftest import Dag, mid


def test_encoding_layout_matches_the_spec(dag4: Dag) -> None:
    """Header fields big-endian in the documented order; digest is BLAKE2b-256 of the unsigned bytes."""
    parent = dag4.block(1, 2)
    block = dag4.block(2, 1, [parent], [mid("a"), mid("b")], timestamp_ms=1234)
    raw = block.encode()
    expected_header = struct.pack(">BQQIQH", 1, 0, 2, 1, 1234, 1)
    assert expected_header == raw[:31]
    assert struct.pack(">QI", 1, 2) + parent.digest == raw[31:75]
    assert struct.pack(">I", 2) + mid("a") + mid("b") == raw[75:143]
    assert 143 + 64 == len(raw)
    assert hashlib.blake2b(raw[:-64], digest_size=32).digest() == block.digest
    assert BlockRef(2, 1, block.digest) == block.ref


def test_round_trip_and_signature(dag4: Dag) -> None:
    block = dag4.block(1, 3, payload=[mid("x")])
    decoded = Block.decode(block.encode())
    assert block == decoded
    assert block.digest == decoded.digest
    decoded.verify_signature(dag4.committee.public_key(3))
    with pytest.raises(InvalidSignature):
        decoded.verify_signature(dag4.committee.public_key(0))


def test_signature_does_not_cover_another_payload(dag4: Dag) -> None:
    block = dag4.block(1, 0, payload=[mid("x")])
    forged = Block(
        epoch=0,
        round=1,
        author=0,
        timestamp_ms=0,
        parents=(),
        payload=[mid("y")],
        signature=block.signature,
    )
    with pytest.raises(InvalidSignature):
        forged.verify_signature(dag4.committee.public_key(0))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda raw: raw + b"\x00", "length"),
        (lambda raw: raw[:-1], "length"),
        (lambda raw: b"\x02" + raw[1:], "version"),
        (lambda raw: raw[:20], "header"),
    ],
)
def test_decoder_rejects_malformed_bytes(dag4: Dag, mutate: object, reason: str) -> None:
    raw = dag4.block(1, 0, payload=[mid("x")]).encode()
    with pytest.raises(DecodeError):
        Block.decode(mutate(raw))  # type: ignore[operator]


def test_decoder_rejects_unsorted_or_duplicate_parent_slots(dag4: Dag) -> None:
    a, b = dag4.block(1, 0), dag4.block(1, 1)
    good = dag4.block(2, 2, [a, b]).encode()
    # swap the two 44-byte parent references
    swapped = good[:31] + good[75:119] + good[31:75] + good[119:]
    with pytest.raises(DecodeError):
        Block.decode(swapped)
    duplicate = good[:31] + good[31:75] + good[31:75] + good[119:]
    with pytest.raises(DecodeError):
        Block.decode(duplicate)


def test_limits() -> None:
    with pytest.raises(PayloadTooLarge):
        Block.decode(b"\x01" * (MAX_BLOCK_BYTES + 1))
    with pytest.raises(InvalidInput):
        Block(
            epoch=0,
            round=1,
            author=0,
            timestamp_ms=0,
            parents=(),
            payload=[b"short"],
            signature=bytes(64),
        )
    with pytest.raises(InvalidInput):
        Block(
            epoch=-1, round=1, author=0, timestamp_ms=0, parents=(), payload=(), signature=bytes(64)
        )


def test_block_is_immutable(dag4: Dag) -> None:
    block = dag4.block(1, 0)
    with pytest.raises(AttributeError):
        block.round = 5


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes_only_raise_decode_errors(data: bytes) -> None:
    try:
        block = Block.decode(data)
    except (DecodeError, PayloadTooLarge):
        return
    assert data == block.encode()


_refs = st.builds(
    BlockRef,
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=32, max_size=32),
)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.lists(_refs, max_size=8, unique_by=lambda r: (r.round, r.author)),
    st.lists(st.binary(min_size=32, max_size=32), max_size=8),
    st.binary(min_size=64, max_size=64),
)
def test_fuzz_round_trip_is_exact(
    epoch: int,
    round_: int,
    author: int,
    ts: int,
    parents: list[BlockRef],
    payload: list[bytes],
    signature: bytes,
) -> None:
    block = Block(
        epoch=epoch,
        round=round_,
        author=author,
        timestamp_ms=ts,
        parents=sorted(parents),
        payload=payload,
        signature=signature,
    )
    raw = block.encode()
    again = Block.decode(raw)
    assert raw == again.encode()
    assert block.ref == again.ref


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_valid_blocks(data: st.DataObject) -> None:
    """A flipped byte either fails to decode, or yields a block whose signature fails."""
    dag = Dag(4)
    a, b, c = dag.block(1, 0), dag.block(1, 1), dag.block(1, 2)
    block = dag.block(2, 3, [a, b, c], [mid("m1"), mid("m2")], timestamp_ms=99)
    raw = bytearray(block.encode())
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        decoded = Block.decode(bytes(raw))
    except DecodeError:
        return
    assert decoded.encode() == bytes(raw)
    with pytest.raises(InvalidSignature):
        decoded.verify_signature(dag.committee.public_key(3))
