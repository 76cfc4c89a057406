"""Which EAP responses the UDP listener hands to a job of their own (they may wait on
the AuC's durable SQN commit or a store write), which its receiving thread answers
from memory, and which join the plain burst."""

from __future__ import annotations

import os

import pytest

from simtrust.aaa import Attr, Code, EapPacket, Packet
from simtrust.aaa._listener import FROM_MEMORY, MAY_WAIT, PLAIN, eap_may_wait, eap_round


def _request(eap: bytes | None, *, split: bool = False) -> bytes:
    packet = Packet(Code.ACCESS_REQUEST, 1, os.urandom(16))
    packet.add(Attr.USER_NAME, b"anonymous")
    if eap is not None:
        if split:
            packet.add(Attr.EAP_MESSAGE, eap[:6])
            packet.add(Attr.EAP_MESSAGE, eap[6:])
        else:
            packet.add(Attr.EAP_MESSAGE, eap)
        packet.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
    return packet.encode()


@pytest.mark.parametrize(("eap", "waits"), [
    (None, False),  # no EAP: a plain Access-Request
    (EapPacket(2, 1, b"\x01anonymous@wlan.example").encode(), False),  # asked for identity
    (EapPacket(2, 1, b"\x01" + b"6001010000000001@wlan").encode(), True),  # AKA' permanent
    (EapPacket(2, 1, b"\x01" + b"0001010000000001@wlan").encode(), True),  # AKA permanent
    (EapPacket(2, 1, b"\x01" + b"7pseudonym@wlan").encode(), True),  # pseudonym
    (EapPacket(2, 2, bytes((50, 5, 0, 0))).encode(), True),  # AKA'-Identity: a challenge next
    (EapPacket(2, 3, bytes((50, 1, 0, 0))).encode(), False),  # AKA'-Challenge response
    (EapPacket(2, 3, bytes((23, 1, 0, 0))).encode(), False),  # AKA-Challenge response
    (EapPacket(2, 3, bytes((50, 4, 0, 0))).encode(), True),  # synchronisation failure
    (EapPacket(2, 3, bytes((50, 13, 0, 0))).encode(), True),  # re-authentication
    (EapPacket(1, 3, bytes((50, 1, 0, 0))).encode(), True),  # not a response
    (EapPacket(2, 3, b"\x03").encode(), True),  # too short to classify
])
def test_eap_responses_are_classified(eap: bytes | None, waits: bool) -> None:
    assert waits is eap_may_wait(_request(eap))


def test_a_fragmented_eap_message_is_classified_by_its_first_attribute() -> None:
    challenge = EapPacket(2, 3, bytes((50, 1, 0, 0)) + bytes(40)).encode()
    assert eap_may_wait(_request(challenge, split=True)) is False


def test_a_malformed_attribute_list_joins_the_burst_where_decode_drops_it() -> None:
    wire = bytearray(_request(EapPacket(2, 1, b"\x01anonymous").encode()))
    wire[21] = 0  # first attribute's length 0
    assert eap_may_wait(bytes(wire)) is False


@pytest.mark.parametrize(("eap", "expected"), [
    (None, PLAIN),  # no EAP: the deciding thread's burst
    (EapPacket(2, 1, b"\x01anonymous@wlan.example").encode(), FROM_MEMORY),
    (EapPacket(2, 1, b"\x01" + b"6001010000000001@wlan").encode(), MAY_WAIT),
    (EapPacket(2, 1, b"\x01" + b"8reauthtoken@wlan").encode(), PLAIN),  # may be in the store
    (EapPacket(2, 1, b"\x01" + b"4reauthtoken@wlan").encode(), PLAIN),
    (EapPacket(2, 3, bytes((50, 1, 0, 0))).encode(), FROM_MEMORY),  # AKA'-Challenge response
    (EapPacket(2, 3, bytes((23, 1, 0, 0))).encode(), FROM_MEMORY),  # AKA-Challenge response
    (EapPacket(2, 2, bytes((50, 5, 0, 0))).encode(), MAY_WAIT),  # AKA'-Identity
    (EapPacket(2, 3, bytes((50, 13, 0, 0))).encode(), MAY_WAIT),  # re-authentication
])
def test_eap_rounds_are_routed(eap: bytes | None, expected: int) -> None:
    """The receiving thread answers only rounds that never wait on the AuC or the store."""
    assert expected == eap_round(_request(eap))
