"""HPACK (RFC 7541) for the SBI server: the ``hpack`` library's coder, with less Python per block.

``h2`` spends a large share of a request's CPU in the pure-Python ``hpack`` coder
(docs/decisions/corenet-sbi-cpu.md). Two subclasses cut it without changing what
goes on the wire or what a header block decodes to:

* :class:`Decoder` decodes indexed field representations (RFC 7541 §6.1: the
  fields an HTTP/2 client repeats from one request to the next, found in the
  static or dynamic table) in its own loop, and hands every other representation
  (literals that do or do not enter the dynamic table, table size updates) to the
  library's own methods at the same position, so the dynamic table, its
  eviction, the size limits and every error stay the library's. Literals that
  leave the dynamic table alone, with a static name (an nghttp2 client's :path
  and content-length on every request), are decoded in its loop too, their
  Huffman strings by the C extension :mod:`simtrust.sbi._native` where it is
  built (the library's state table, run in C).
* :class:`Encoder` answers a header list it has encoded before with the same
  bytes: a cached block holds only static-table references and literals
  *without indexing* (RFC 7541 §6.2.2), which leave the peer's dynamic table as
  it is, so the block means the same whenever it is sent. A response's header
  lists repeat (status, content type, a few content lengths), so after the first
  answers every block comes from the cache. Blocks that must signal a table size
  change, or carry a never-indexed field, go through the library's encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import hpack
from hpack import huffman_table
from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

__all__ = ["Decoder", "Encoder"]

_CACHED_BLOCKS = 512  # distinct response header lists kept per connection
_STATIC = HeaderTable.STATIC_TABLE
_FULL = {entry: i + 1 for i, entry in reversed(list(enumerate(_STATIC)))}
_NAME = {name: i + 1 for i, (name, _) in reversed(list(enumerate(_STATIC)))}
_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_new_tuple = tuple.__new__
_STATIC_NAMED = len(_STATIC)  # name indices above this are the dynamic table's

_huffman: Callable[[bytes], bytes | None] | None
try:
    from simtrust.sbi import _native
except ImportError:  # the extension is optional (setup.py): the library decodes literals
    _huffman = None
else:
    _native.configure(huffman_table.HUFFMAN_TABLE, huffman_table.HUFFMAN_COMPLETE,
                      huffman_table.HUFFMAN_EMIT_SYMBOL, huffman_table.HUFFMAN_FAIL)
    _huffman = _native.huffman


def _string(data: bytes) -> bytes:
    """A string literal (RFC 7541 §5.2), Huffman-coded when that is shorter."""
    coded = _HUFFMAN.encode(data)
    if len(coded) < len(data):
        length = encode_integer(len(coded), 7)
        length[0] |= 0x80
        return bytes(length) + coded
    return bytes(encode_integer(len(data), 7)) + data


def stateless_field(name: bytes, value: bytes) -> bytes:
    """One field that does not touch the dynamic table (RFC 7541 §6.1 static, §6.2.2)."""
    full = _FULL.get((name, value))
    if full is not None:
        index = encode_integer(full, 7)
        index[0] |= 0x80
        return bytes(index)
    named = _NAME.get(name)
    if named is not None:
        return bytes(encode_integer(named, 4)) + _string(value)
    return b"\x00" + _string(name) + _string(value)


class Encoder(hpack.Encoder):
    """``hpack.Encoder`` that serves repeated header lists from a cache of stateless blocks."""

    def __init__(self) -> None:
        super().__init__()
        self._blocks: dict[tuple[Any, ...], bytes] = {}

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        if self.header_table.resized or not isinstance(headers, list) or not huffman:
            return super().encode(headers, huffman)
        for header in headers:  # plain (name, value) tuples only: no never-indexed field
            if type(header) is not tuple:
                return super().encode(headers, huffman)
        key = tuple(headers)
        block = self._blocks.get(key)
        if block is not None:
            return block
        parts = []
        for header in key:
            if (len(header) != 2 or type(header[0]) is not bytes
                    or type(header[1]) is not bytes):
                return super().encode(headers, huffman)
            parts.append(stateless_field(header[0], header[1]))
        block = b"".join(parts)
        if len(self._blocks) >= _CACHED_BLOCKS:
            self._blocks.clear()
        self._blocks[key] = block
        return block


def _plain_literal(data: bytes, at: int, first: int) -> tuple[hpack.HeaderTuple, int] | None:
    """A field that does not enter the dynamic table (RFC 7541 §6.2.2 without indexing,
    §6.2.3 never indexed) with a static table name (its index in the first octet or
    one more) and a value shorter than 127 octets: what an nghttp2 client sends for
    every request's :path and content-length. (header, octets) as the library decodes
    it; None for any other form, a truncated field or a bad Huffman string (the library
    decodes it then, and raises its error)."""
    index, pos = first & 0x0F, at + 1
    if index == 15:  # the index goes on in one more octet (RFC 7541 §5.1), or more
        if pos >= len(data) or data[pos] >= 0x80:
            return None
        index, pos = 15 + data[pos], pos + 1
    if index == 0 or index > _STATIC_NAMED or pos >= len(data):
        return None
    size = data[pos]
    length = size & 0x7F
    stop = pos + 1 + length
    if length == 0x7F or stop > len(data):
        return None
    raw = bytes(data[pos + 1:stop])
    value = _huffman(raw) if size & 0x80 and _huffman is not None else raw
    if value is None:
        return None
    kind = hpack.NeverIndexedHeaderTuple if first & 0x10 else hpack.HeaderTuple
    return _new_tuple(kind, (_STATIC[index - 1][0], value)), stop - at


class Decoder(hpack.Decoder):
    """``hpack.Decoder`` with indexed fields decoded inline (same results, same errors)."""

    def decode(self, data: bytes, raw: bool = False) -> Iterable[hpack.HeaderTuple]:
        if not raw:
            return super().decode(data, raw)
        header_tuple = hpack.HeaderTuple
        table = self.header_table
        static = _STATIC
        static_len = len(static)
        dynamic = table.dynamic_entries
        limit = self.max_header_list_size
        view = memoryview(data)
        headers: list[hpack.HeaderTuple] = []
        inflated = 0
        at = 0
        end = len(data)
        while at < end:
            first = data[at]
            if 0x80 < first < 0xFF:  # indexed, the index in the first byte
                index = first - 0x81
                if index < static_len:
                    name, value = static[index]
                elif index - static_len < len(dynamic):
                    name, value = dynamic[index - static_len]
                else:
                    name, value = table.get_by_index(index + 1)  # raises InvalidTableIndex
                header = _new_tuple(header_tuple, (name, value))
                at += 1
            elif first < 0x20 and _huffman is not None and (
                    plain := _plain_literal(data, at, first)) is not None:
                header, consumed = plain
                name, value = header
                at += consumed
            else:
                if first & 0x80:
                    found, consumed = self._decode_indexed(view[at:])
                elif first & 0x40:
                    found, consumed = self._decode_literal_index(view[at:])
                elif first & 0x20:
                    if headers:
                        raise hpack.HPACKDecodingError(
                            "Table size update not at the start of the block")
                    at += self._update_encoding_context(view[at:])
                    dynamic = table.dynamic_entries
                    continue
                else:
                    found, consumed = self._decode_literal_no_index(view[at:])
                at += consumed
                dynamic = table.dynamic_entries
                name, value = bytes(found[0]), bytes(found[1])
                header = _new_tuple(type(found), (name, value))
            headers.append(header)
            inflated += 32 + len(name) + len(value)  # RFC 7541 §4.1
            if inflated > limit:
                raise hpack.OversizedHeaderListError(
                    f"A header list larger than {limit} has been received")
        if table.maxsize > self.max_allowed_table_size:
            raise hpack.InvalidTableSizeError(
                "Encoder did not shrink table size to within the max")
        return headers
