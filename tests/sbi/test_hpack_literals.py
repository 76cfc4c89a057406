"""Literals that leave the dynamic table alone, decoded inline with the C Huffman decoder.

``simtrust.sbi._native.huffman`` against ``hpack``'s ``decode_huffman`` (the same
octets, or None where the library raises), and the SBI decoder against
``hpack.Decoder`` on blocks of such literals (RFC 7541 §6.2.2, §6.2.3): the same
fields and tuple types, the same errors. Skipped when the extension is not built.
"""

from __future__ import annotations

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.sbi import _hpack

try:
    from simtrust.sbi import _native
except ImportError:  # pragma: no cover - the extension is optional
    _native = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(_native is None, reason="simtrust.sbi._native is not built")

_CODER = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def _reference(data: bytes) -> bytes | None:
    try:
        return decode_huffman(data)
    except hpack.HPACKDecodingError:
        return None


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.binary(max_size=40), st.binary(max_size=60).map(_CODER.encode)),
       st.integers(0, 7), st.integers(0, 255))
def test_huffman_decodes_as_hpack(data: bytes, cut: int, last: int) -> None:
    for case in (data, data[:max(0, len(data) - cut)], data + bytes([last])):
        assert _native.huffman(case) == _reference(case)


@st.composite
def _literal(draw: st.DrawFn) -> bytes:
    first = draw(st.integers(0, 0x1F))
    if first & 0x0F == 0x0F:  # a name index from 15 on: one more octet, or a continuation
        first_octets = bytes([first, draw(st.sampled_from([0, 13, 46, 47, 60, 127, 0x80, 0xFF]))])
    else:
        first_octets = bytes([first])
    value = draw(st.one_of(st.binary(max_size=140), st.binary(max_size=140).map(_CODER.encode)))
    huffman = draw(st.booleans())
    length = draw(st.one_of(st.just(len(value)), st.integers(0, 130)))
    prefix = first_octets + (bytes([0x80 if huffman else 0]) + b"\x7f" + bytes([length - 127])
                               if length >= 127 else bytes([(0x80 if huffman else 0) | length]))
    if first & 0x0F == 0:  # a literal name first (left to the library)
        prefix = bytes([first, 3]) + b"x-a" + prefix[len(first_octets):]
    return prefix + value


def _outcome(decoder: hpack.Decoder, block: bytes) -> object:
    try:
        return [(type(h), bytes(h[0]), bytes(h[1])) for h in decoder.decode(block, raw=True)]
    except hpack.HPACKError as err:
        return type(err)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_literal(), min_size=1, max_size=5), st.integers(0, 300),
       st.lists(st.tuples(st.text(max_size=5), st.text(max_size=20)), max_size=3))
def test_plain_literals_decode_as_hpack(fields: list[bytes], cut: int,
                                        indexed: list[tuple[str, str]]) -> None:
    ours, reference = _hpack.Decoder(), hpack.Decoder()
    if indexed:  # a dynamic table with entries, as after a first request
        block = hpack.Encoder().encode(indexed)
        assert _outcome(ours, block) == _outcome(reference, block)
    raw = b"".join(fields)
    for block in (raw, raw[:cut]):
        assert _outcome(ours, block) == _outcome(reference, block)
        assert list(ours.header_table.dynamic_entries) == list(
            reference.header_table.dynamic_entries)


def test_nghttp2_request_fields_take_the_inline_path() -> None:
    path = b"/nudm-ueau/v1/imsi-001010000000007/security-information/generate-auth-data"
    coded = _CODER.encode(path)
    length = _CODER.encode(b"118")  # content-length is static 28: one octet past the nibble
    block = (bytes([0x04, 0x80 | len(coded)]) + coded
             + bytes([0x0F, 28 - 15, 0x80 | len(length)]) + length)
    assert _hpack._plain_literal(block, 0, block[0]) == ((b":path", path), 2 + len(coded))
    assert _hpack._plain_literal(block, 2 + len(coded), 0x0F) == (
        (b"content-length", b"118"), 3 + len(length))
    assert _outcome(_hpack.Decoder(), block) == _outcome(hpack.Decoder(), block) == [
        (hpack.HeaderTuple, b":path", path), (hpack.HeaderTuple, b"content-length", b"118")]
