"""The C AVP walk (``simtrust.diameter._native``) against the Python walk, the reference.

Wherever the Python walk decodes, the C walk gives the same list of :class:`Avp`
(same types too); wherever the Python walk raises a DiameterError, the C walk
returns None, so :func:`decode_avps` raises the Python walk's error (result code,
Failed-AVP). Skipped when the extension is not built (it is optional, setup.py).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.diameter import Avp, DiameterError, _codec, decode_message
from simtrust.diameter._codec import MAX_AVPS, MAX_DEPTH, decode_avps_py, encode_avp
from simtrust.diameter._dictionary import AVPS, AvpType

try:
    from simtrust.diameter import _native
except ImportError:  # pragma: no cover - the extension is optional
    _native = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(_native is None, reason="simtrust.diameter._native is not built")

V = 10415
KNOWN = sorted(AVPS)


def _same(data: bytes, depth: int = 0) -> None:
    got = _native.decode_avps(data, depth)
    try:
        want = decode_avps_py(data, depth)
    except DiameterError:
        assert got is None
        return
    assert got == want
    for avp in got:
        assert type(avp) is Avp
        assert (type(avp.code), type(avp.data), type(avp.vendor), type(avp.mandatory)) == (
            int, bytes, int, bool)


def _raw_avp(code: int, data: bytes, vendor: int, flags: int) -> bytes:
    """An AVP with any flag bits (reserved ones too); V-bit as ``flags`` says."""
    pad = b"\x00" * (-len(data) & 3)
    if flags & 0x80:
        return struct.pack(">III", code, (flags << 24) | (12 + len(data)), vendor) + data + pad
    return struct.pack(">II", code, (flags << 24) | (8 + len(data))) + data + pad


values = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([b"\x00\x01\x7f\x00\x00\x01", b"\x00\x02" + bytes(16), b"\x00\x01" + bytes(16),
                     b"\xff\xfe", "é".encode(), b"\xed\xa0\x80", bytes(4), bytes(8)]),
    st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@st.composite
def avps(draw: st.DrawFn, depth: int = 0) -> bytes:
    if draw(st.booleans()):
        code, vendor = draw(st.sampled_from(KNOWN))
    else:
        code, vendor = draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([0, V, 2**32 - 1]))
    if depth < 3 and AVPS.get((code, vendor), ("", None))[1] is AvpType.GROUPED and draw(st.booleans()):
        data = b"".join(draw(st.lists(avps(depth + 1), max_size=4)))
    else:
        data = draw(values)
    flags = (0x80 if vendor else 0) | draw(st.sampled_from([0x40, 0x40, 0x00, 0x20, 0x01, 0x10]))
    if draw(st.integers(0, 9)) == 0:
        flags ^= 0x80  # V-bit disagreeing with the vendor
    return _raw_avp(code, data, vendor, flags)


@settings(max_examples=1500, deadline=None)
@given(st.lists(avps(), max_size=8), st.integers(0, MAX_DEPTH + 1))
def test_walks_agree_on_built_runs(run: list[bytes], depth: int) -> None:
    _same(b"".join(run), depth)


@settings(max_examples=1000, deadline=None)
@given(st.lists(avps(), min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       st.integers(0, 10_000))
def test_walks_agree_on_mutated_and_cut_runs(run: list[bytes], flips: list[tuple[int, int]],
                                              cut: int) -> None:
    raw = bytearray(b"".join(run))
    for pos, value in flips:
        raw[pos % len(raw)] = value
    _same(bytes(raw[:cut % (len(raw) + 1)]))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_walks_agree_on_random_octets(data: bytes) -> None:
    _same(data)


def test_limits_agree() -> None:
    one = encode_avp(9999, b"", 0, False)
    _same(one * MAX_AVPS)
    assert _native.decode_avps(one * MAX_AVPS, 0) is not None
    _same(one * (MAX_AVPS + 1))
    assert _native.decode_avps(one * (MAX_AVPS + 1), 0) is None
    avp = Avp.u32(1410, 1, V)
    for _ in range(MAX_DEPTH + 2):
        avp = Avp.grouped(1408, [avp], V)
        _same(avp.encode())


def test_decode_uses_the_walk_and_keeps_the_errors() -> None:
    assert _codec._native_walk is not None
    raw = struct.pack(">II", 1, 0xC0 << 24 | 300)  # M-bit set with a length past the end
    with pytest.raises(DiameterError) as info:
        decode_message(struct.pack(">IIIII", (1 << 24) | 28, 0x80 << 24 | 318, 16777251, 1, 2)
                       + raw)
    assert 5014 == info.value.result_code
    assert raw == info.value.failed_avp
