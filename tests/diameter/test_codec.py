"""The Diameter codec: round trips, RFC 6733 error codes for bad input, fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.diameter import Avp, DiameterError, Message, decode_message
from simtrust.diameter._codec import MAX_DEPTH

from .conftest import Env, Mme


def _msg(avps: list[Avp]) -> bytes:
    return Message(318, 0xC0, 16777251, 1, 2, avps).encode()


def test_round_trip() -> None:
    avps = [Avp.text(263, "a;b;1"), Avp.u32(1410, 3, 10415), Avp.grouped(1408, [
        Avp.u32(1410, 2, 10415)], 10415), Avp.address(257, "::1"), Avp.u32(278, 2**31)]
    raw = _msg(avps)
    message = decode_message(raw)
    assert avps == message.avps
    assert raw == message.encode()


def test_unknown_mandatory_avp_is_5001_with_the_avp_quoted() -> None:
    unknown = Avp(99_999, b"xyz", 0, mandatory=True)
    with pytest.raises(DiameterError) as info:
        decode_message(_msg([Avp.text(263, "s"), unknown]))
    assert 5001 == info.value.result_code
    assert unknown.encode()[:11] == (info.value.failed_avp or b"")[:11]


def test_unknown_optional_avp_is_kept() -> None:
    message = decode_message(_msg([Avp(99_999, b"xyz", 0, mandatory=False)]))
    assert b"xyz" == message.avps[0].data


@pytest.mark.parametrize(("raw", "code"), [
    (b"\x02" + bytes(19), 5011),                                     # version 2
    (struct.pack(">I", (1 << 24) | 22) + bytes(16), 5015),           # length not 4-aligned
    (struct.pack(">I", (1 << 24) | 16) + bytes(16), 5015),           # shorter than a header
])
def test_bad_headers(raw: bytes, code: int) -> None:
    with pytest.raises(DiameterError) as info:
        decode_message(raw)
    assert code == info.value.result_code


def test_avp_length_past_the_message_is_5014() -> None:
    raw = bytearray(_msg([Avp.text(263, "session")]))
    struct.pack_into(">I", raw, 24, (0x40 << 24) | 200)
    with pytest.raises(DiameterError) as info:
        decode_message(bytes(raw))
    assert 5014 == info.value.result_code


def test_zero_length_avp_cannot_loop() -> None:
    raw = bytearray(_msg([Avp.text(263, "s")]))
    struct.pack_into(">I", raw, 24, (0x40 << 24) | 0)
    with pytest.raises(DiameterError) as info:
        decode_message(bytes(raw))
    assert 5014 == info.value.result_code


def test_nesting_is_bounded() -> None:
    avp = Avp.u32(1410, 1, 10415)
    for _ in range(MAX_DEPTH + 2):
        avp = Avp.grouped(1408, [avp], 10415)
    with pytest.raises(DiameterError) as info:
        decode_message(_msg([avp]))
    assert 5004 == info.value.result_code


def test_wrong_size_integer_is_5014() -> None:
    with pytest.raises(DiameterError) as info:
        decode_message(_msg([Avp(268, b"\x00\x00\x07")]))
    assert 5014 == info.value.result_code


def _outcome(data: bytes) -> int:
    """2001 when ``data`` decodes, else the result code of the DiameterError (anything else fails)."""
    try:
        decode_message(data)
    except DiameterError as exc:
        return exc.result_code
    return 2001


VALID = _msg([Avp.text(263, "mme;1;1"), Avp.text(264, "mme.test.realm"),
              Avp.grouped(1408, [Avp.u32(1410, 1, 10415), Avp(1411, bytes(30), 10415)], 10415),
              Avp(1407, b"\x00\xf1\x10", 10415)])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_diameter_errors(data: bytes) -> None:
    assert 2001 == _outcome(data) or 3000 <= _outcome(data) < 6000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
       st.integers(20, len(VALID)))
def test_mutated_and_truncated_messages_only_raise_diameter_errors(
    flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(VALID)
    for pos, value in flips:
        raw[pos] = value
    code = _outcome(bytes(raw[:cut]))
    assert code == 2001 or 3000 <= code < 6000


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(20, len(VALID) - 1), st.integers(0, 255)), max_size=4))
def test_listener_survives_mutated_requests(env: Env, flips: list[tuple[int, int]]) -> None:
    """Every mutated request is answered or its connection closed; the node keeps serving."""
    raw = bytearray(VALID)
    for pos, value in flips:
        raw[pos] = value
    client = Mme(env.port)
    try:
        assert 2001 == client.cer().result_code
        client.send_raw(bytes(raw))
        answer = client.read_raw()
        assert 0 == answer[4] & 0x80  # an answer, never a request or a crash
    except (ConnectionError, TimeoutError):
        pass
    finally:
        client.close()
    probe = Mme(env.port)
    try:
        assert 2001 == probe.cer().result_code
    finally:
        probe.close()
