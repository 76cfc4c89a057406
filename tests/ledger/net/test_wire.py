"""Frame codec: round trips and strict decoding of untrusted bytes (fuzzed)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError
from simtrust.ledger.net._wire import (
    MAX_ITEMS,
    FrameType,
    Status,
    decode_frame,
    encode_get_blocks,
    encode_get_msgs,
    encode_get_tail,
    encode_items,
    encode_ping,
    encode_status,
)


def test_frames_round_trip() -> None:
    items = [os.urandom(n) for n in (0, 1, 200, 5000)]
    assert tuple(items) == decode_frame(encode_items(FrameType.MSGS, items)).items
    ids = [os.urandom(32) for _ in range(3)]
    frame = decode_frame(encode_get_blocks(ids, 17))
    assert (FrameType.GET_BLOCKS, tuple(ids), 17) == (frame.type, frame.items, frame.floor)
    assert tuple(ids) == decode_frame(encode_get_msgs(ids)).items
    status = Status(9, 7, 5, 1234)
    assert status == decode_frame(encode_status(status)).status
    pong = decode_frame(encode_ping(42, pong=True))
    assert (FrameType.PONG, 42) == (pong.type, pong.nonce)
    tail = decode_frame(encode_get_tail(3))
    assert (FrameType.GET_TAIL, 3) == (tail.type, tail.floor)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x99",
        b"\x01\x00\x00\x00\x01",  # one item announced, none present
        b"\x01\x00\x00\x00\x00extra",
        bytes([FrameType.MSGS]) + (MAX_ITEMS + 1).to_bytes(4, "big"),
        bytes([FrameType.GET_MSGS]) + (1).to_bytes(4, "big") + b"short",
        bytes([FrameType.STATUS]) + b"\x00" * 3,
        bytes([FrameType.PING]),
        bytes([FrameType.GET_TAIL]) + b"\x00" * 7,
    ],
)
def test_malformed_frames_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_frame(data)


def test_encoder_refuses_more_items_than_a_frame_holds() -> None:
    with pytest.raises(DecodeError):
        encode_get_msgs([b"\x00" * 32] * (MAX_ITEMS + 1))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except DecodeError:
        return
    assert frame.type in set(FrameType)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(0, 2))
def test_truncating_a_valid_frame_never_decodes_to_something_else(
    items: list[bytes], cut: int
) -> None:
    data = encode_items(FrameType.BLOCKS, items)
    assert tuple(items) == decode_frame(data).items
    if cut and len(data) > cut:
        with pytest.raises(DecodeError):
            decode_frame(data[:-cut])
