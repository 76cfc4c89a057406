"""The SBI server's HPACK coder (``simtrust.sbi._hpack``) against the ``hpack`` library.

The decoder must decode every block, in every state of the dynamic table, to what
``hpack.Decoder`` decodes it to (the same fields, the same tuple types) and refuse
what it refuses; the encoder's blocks must decode, with the library's decoder, to
the header lists given, whatever the table state and size changes in between.
"""

from __future__ import annotations

import hpack
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.sbi import _hpack

_names = st.sampled_from([b":method", b":path", b":status", b"content-type",
                          b"content-length", b"user-agent", b"authorization", b"x-custom",
                          b"accept-encoding", b"x-" + b"n" * 40])
_values = st.one_of(st.sampled_from([b"", b"POST", b"200", b"application/json", b"gzip",
                                     b"/nudm-ueau/v1/imsi-001010000000007"]),
                    st.binary(max_size=60))
_field = st.tuples(_names, _values, st.booleans())  # the last: never indexed
_block = st.lists(_field, max_size=10)
_step = st.tuples(_block, st.booleans(), st.sampled_from([None, 0, 64, 256, 4096]))


def _tuples(fields: list[tuple[bytes, bytes, bool]]) -> list[hpack.HeaderTuple]:
    return [hpack.NeverIndexedHeaderTuple(n, v) if never else hpack.HeaderTuple(n, v)
            for n, v, never in fields]


def _outcome(decoder: hpack.Decoder, block: bytes) -> object:
    try:
        return [(type(h), bytes(h[0]), bytes(h[1])) for h in decoder.decode(block, raw=True)]
    except hpack.HPACKError as err:  # the same error class, the same state after it
        return type(err)


@settings(max_examples=400, deadline=None)
@given(steps=st.lists(_step, min_size=1, max_size=12))
def test_decoder_decodes_as_hpack(steps: list[tuple[list[tuple[bytes, bytes, bool]], bool,
                                                    int | None]]) -> None:
    encoder = hpack.Encoder()
    ours, reference = _hpack.Decoder(), hpack.Decoder()
    for fields, huffman, size in steps:
        if size is not None:
            encoder.header_table_size = size
        block = encoder.encode(_tuples(fields), huffman=huffman)
        assert _outcome(ours, block) == _outcome(reference, block)
        assert list(ours.header_table.dynamic_entries) == list(
            reference.header_table.dynamic_entries)


@settings(max_examples=400, deadline=None)
@given(prefix=st.lists(_block, max_size=3), garbage=st.lists(st.binary(max_size=12), max_size=6),
       limit=st.sampled_from([0, 100, 65536]), allowed=st.sampled_from([0, 128, 4096]))
def test_decoder_refuses_as_hpack(prefix: list[list[tuple[bytes, bytes, bool]]],
                                  garbage: list[bytes], limit: int, allowed: int) -> None:
    encoder = hpack.Encoder()
    ours, reference = _hpack.Decoder(), hpack.Decoder()
    for decoder in (ours, reference):
        decoder.max_header_list_size = limit
    blocks = [encoder.encode(_tuples(fields)) for fields in prefix]
    # Random bytes after real blocks: indexed fields into a filled table, bad indices,
    # truncated literals and integers, size updates out of place or over the maximum.
    blocks += [bytes([0x80 | (b[0] & 0x7F)]) + b[1:] if b and i % 2 else b
               for i, b in enumerate(garbage)]
    for i, block in enumerate(blocks):
        if i == len(prefix):
            for decoder in (ours, reference):
                decoder.max_allowed_table_size = allowed
        assert _outcome(ours, block) == _outcome(reference, block)
        assert list(ours.header_table.dynamic_entries) == list(
            reference.header_table.dynamic_entries)


@settings(max_examples=300, deadline=None)
@given(lists=st.lists(st.lists(st.tuples(_names, _values), max_size=6), min_size=1, max_size=6),
       order=st.lists(st.integers(min_value=0, max_value=5), max_size=20),
       sizes=st.lists(st.sampled_from([None, None, None, 0, 100, 4096]), max_size=20))
def test_encoder_blocks_decode_to_the_headers(lists: list[list[tuple[bytes, bytes]]],
                                              order: list[int],
                                              sizes: list[int | None]) -> None:
    ours, decoder = _hpack.Encoder(), hpack.Decoder()
    for step, pick in enumerate(order or [0]):
        size = sizes[step] if step < len(sizes) else None
        if size is not None:  # the peer's SETTINGS_HEADER_TABLE_SIZE, as h2 applies it
            ours.header_table_size = size
        headers = list(lists[pick % len(lists)])
        block = ours.encode(headers)
        assert [tuple(h) for h in decoder.decode(block, raw=True)] == headers
        assert decoder.header_table_size == ours.header_table_size


def test_encoder_repeats_stateless_blocks_and_keeps_never_indexed() -> None:
    ours, decoder = _hpack.Encoder(), hpack.Decoder()
    headers = [(b":status", b"200"), (b"content-length", b"187"),
               (b"content-type", b"application/json")]
    first = ours.encode(headers)
    assert first == ours.encode(list(headers))
    assert first[0] == 0x88  # :status 200 is static entry 8
    assert list(decoder.decode(first, raw=True)) == headers
    assert not decoder.header_table.dynamic_entries  # nothing entered the peer's table
    secret = [hpack.NeverIndexedHeaderTuple(b"authorization", b"Bearer x")]
    block = ours.encode(secret)
    assert block[0] & 0xF0 == 0x10  # RFC 7541 §6.2.3 literal never indexed, as hpack
    (field,) = decoder.decode(block, raw=True)
    assert isinstance(field, hpack.NeverIndexedHeaderTuple)
