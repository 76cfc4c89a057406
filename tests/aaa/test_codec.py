"""The RADIUS codec: round trips against pyrad (the independent peer), the RFC 2865/2548
hiding functions, and fuzzing of the decoder and the server entry points with bytes an
attacker chooses: every datagram is answered correctly or counted and dropped."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad.packet import AuthPacket

from simtrust.aaa._radius import (  # the codec's own helpers under test
    Attr,
    Code,
    MalformedPacket,
    Packet,
    Vendor,
    decode,
    hide_password,
    mppe_decrypt,
    mppe_encrypt,
    unhide_password,
    verify_message_authenticator,
)

from .conftest import SECRET, Aaa
from .peers import pyrad_dictionary


def test_pyrad_request_decodes_and_verifies() -> None:
    request = AuthPacket(secret=SECRET.encode(), dict=pyrad_dictionary())
    request["User-Name"] = "meter-1"
    request["User-Password"] = request.PwCrypt("pw-123")
    request["3GPP-IMSI"] = "001010000000001"
    request.add_message_authenticator()
    wire = request.RequestPacket()
    packet = decode(wire)
    assert Code.ACCESS_REQUEST == packet.code
    assert "001010000000001" == packet.vendor(Vendor.TGPP, Vendor.TGPP_IMSI).decode()
    hidden = packet.get(Attr.USER_PASSWORD)
    assert hidden is not None
    assert b"pw-123" == unhide_password(hidden, SECRET.encode(), packet.authenticator)
    assert verify_message_authenticator(wire, SECRET.encode(), packet.authenticator)


def test_our_reply_verifies_in_pyrad() -> None:
    request = AuthPacket(secret=SECRET.encode(), dict=pyrad_dictionary())
    request["User-Name"] = "x"
    wire = request.RequestPacket()
    reply = Packet(Code.ACCESS_ACCEPT, decode(wire).identifier)
    reply.add(Attr.FRAMED_IP_ADDRESS, bytes((10, 0, 0, 1)))
    reply.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
    out = reply.sign_response(decode(wire).authenticator, SECRET.encode())
    parsed = request.CreateReply(packet=out)
    assert request.VerifyReply(parsed, out)
    assert parsed.verify_message_authenticator(original_authenticator=request.authenticator)
    assert ["10.0.0.1"] == parsed["Framed-IP-Address"]


@given(st.binary(max_size=128), st.binary(min_size=16, max_size=16))
@settings(max_examples=60, deadline=None)
def test_password_hiding_round_trips(password: bytes, authenticator: bytes) -> None:
    password = password.rstrip(b"\x00")
    hidden = hide_password(password, b"secret", authenticator)
    assert 0 == len(hidden) % 16
    assert password == unhide_password(hidden, b"secret", authenticator)


def test_pyrad_decrypts_our_password_hiding() -> None:
    request = AuthPacket(secret=SECRET.encode(), dict=pyrad_dictionary(),
                         authenticator=bytes(range(16)))
    hidden = hide_password(b"a-longer-password-than-16", SECRET.encode(), request.authenticator)
    assert "a-longer-password-than-16" == request.PwDecrypt(hidden)


def test_mppe_key_round_trip() -> None:
    key = bytes(range(32))
    value = mppe_encrypt(key, b"s", bytes(16), b"\x80\x01")
    assert 2 + 48 == len(value)
    assert key == mppe_decrypt(value, b"s", bytes(16))


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x01\x00\x00", "short"),
    (struct.pack("!BBH16s", 1, 0, 19, bytes(16)), "length"),
    (struct.pack("!BBH16s", 1, 0, 30, bytes(16)), "truncated"),
    (struct.pack("!BBH16s", 1, 0, 22, bytes(16)) + b"\x01\x00", "attribute-length"),
    (struct.pack("!BBH16s", 1, 0, 23, bytes(16)) + b"\x01\x05\x00", "attribute"),
    (struct.pack("!BBH16s", 1, 0, 21, bytes(16)) + b"\x01", "attribute"),
    (bytes(4097), "oversized"),
])
def test_malformed_datagrams_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket) as caught:
        decode(data)
    assert reason == caught.value.context["reason"]


def _attributes() -> st.SearchStrategy[bytes]:
    one = st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)).map(
        lambda t: bytes((t[0], t[1])) + t[2])
    return st.lists(one, max_size=8).map(b"".join)


@given(st.one_of(st.binary(max_size=300), st.tuples(
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 5000), st.binary(min_size=16,
                                                                               max_size=16),
    _attributes()).map(lambda t: struct.pack("!BBH16s", t[0], t[1], t[2], t[3]) + t[4])))
@settings(max_examples=300, deadline=None)
def test_decoder_fuzz(data: bytes) -> None:
    try:
        packet = decode(data)
    except MalformedPacket:
        return
    assert 20 + len(packet.encode_attributes()) == int.from_bytes(data[2:4], "big")


@given(data=st.binary(max_size=200), code=st.sampled_from([1, 4, 40, 2]),
       attributes=_attributes())
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_server_fuzz(aaa: Aaa, data: bytes, code: int, attributes: bytes) -> None:
    server = aaa.services.server
    crafted = struct.pack("!BBH16s", code, 7, 20 + len(attributes), bytes(16)) + attributes
    sent: list[bytes] = []
    for datagram in (data, crafted):
        answer = server.handle_auth(datagram, ("127.0.0.1", 5000))
        assert answer is None or decode(answer).code in (Code.ACCESS_ACCEPT, Code.ACCESS_REJECT,
                                                         Code.ACCESS_CHALLENGE)
        server.handle_acct(datagram, ("127.0.0.1", 5001), sent.append)
        assert server.handle_auth(datagram, ("192.0.2.1", 5000)) is None


def test_bad_input_is_counted(aaa: Aaa) -> None:
    server = aaa.services.server
    before: dict[str, Any] = dict(server.counters)
    assert server.handle_auth(b"\x01\x02", ("127.0.0.1", 1)) is None
    assert server.handle_auth(b"\x01" * 30, ("203.0.113.5", 1)) is None
    bogus = Packet(Code.ACCOUNTING_REQUEST, 1, bytes(16))
    bogus.add_int(Attr.ACCT_STATUS_TYPE, 1)
    server.handle_acct(bogus.encode(), ("127.0.0.1", 1), lambda _d: None)
    eap = Packet(Code.ACCESS_REQUEST, 2, bytes(16))
    eap.add(Attr.EAP_MESSAGE, b"\x02\x01\x00\x05\x01")
    assert server.handle_auth(eap.encode(), ("127.0.0.1", 1)) is None
    assert 1 == server.counters["malformed"] - before["malformed"]
    assert 1 == server.counters["unknown_client"] - before["unknown_client"]
    assert 1 == server.counters["bad_authenticator"] - before["bad_authenticator"]
    assert 1 == (server.counters["missing_message_authenticator"]
                 - before["missing_message_authenticator"])
