"""Multibase / multicodec codecs: round trips and hostile input (hypothesis)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.errors import DecodeError
from simtrust.identity._multibase import (
    b58decode,
    b58encode,
    b64url_decode,
    multibase_decode,
    multibase_encode,
    multicodec_unwrap,
    multicodec_wrap,
)


@given(st.binary(max_size=96))
def test_base58_round_trip_keeps_leading_zeros(data: bytes) -> None:
    assert data == b58decode(b58encode(data))


@given(st.binary(max_size=96), st.sampled_from(["z", "u"]))
def test_multibase_round_trip(data: bytes, base: str) -> None:
    assert data == multibase_decode(multibase_encode(data, base))


@given(st.integers(min_value=0, max_value=0x1FFFFF), st.binary(max_size=8))
def test_multicodec_varint_round_trip(codec: int, data: bytes) -> None:
    assert (codec, data) == multicodec_unwrap(multicodec_wrap(codec, data))


def test_ed25519_priv_prefix_is_two_byte_varint() -> None:
    assert b"\x80\x26" == multicodec_wrap(0x1300, b"")[:2]


@given(st.text(max_size=200))
def test_multibase_decode_raises_only_decode_error(text: str) -> None:
    with contextlib.suppress(DecodeError):
        multibase_decode(text)


@given(st.text(max_size=200))
def test_base64url_decoder_raises_only_decode_error(text: str) -> None:
    with contextlib.suppress(DecodeError):
        b64url_decode(text)


def test_base58_rejects_invalid_characters_and_huge_input() -> None:
    with pytest.raises(DecodeError):
        b58decode("0OIl")
    with pytest.raises(DecodeError):
        b58decode("2" * 5000)
