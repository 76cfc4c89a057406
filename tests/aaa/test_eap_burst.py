"""EAP responses that arrive together: their AuC vectors are drawn in one durable SQN
group commit and one audit append, and no AKA-Challenge leaves without its SQN advance
committed (docs/decisions/aaa-eap-vector-bursts.md)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from simtrust.aaa import AkaMessage, Attr, Code, EapPacket, Packet, decode, decode_eap
from simtrust.errors import StoreError
from simtrust.subscriber._sqn import decode_sqn_state

from .conftest import SECRET, Aaa, iccid, imsi

REALM = "wlan.mnc001.mcc001.3gppnetwork.org"
ADDR = ("127.0.0.1", 40001)


def _identity_request(identifier: int, identity: bytes) -> bytes:
    packet = Packet(Code.ACCESS_REQUEST, identifier, os.urandom(16))
    packet.add(Attr.USER_NAME, identity)
    packet.add(Attr.EAP_MESSAGE, EapPacket(2, 0, b"\x01" + identity).encode())
    packet.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
    return packet.sign_access_request(SECRET.encode())


def _burst(aaa: Aaa, numbers: list[int]) -> dict[int, Packet]:
    burst = [(_identity_request(i, f"6{imsi(n)}@{REALM}".encode()), ADDR)
             for i, n in enumerate(numbers)]
    sent: list[tuple[bytes, Any]] = []
    answers = aaa.services.server.handle_auth_burst(
        burst, lambda data, addr: sent.append((data, addr)))
    return {data[1]: decode(data) for data, _addr in answers + sent}


def test_a_burst_of_identities_costs_one_sqn_commit(aaa: Aaa) -> None:
    for n in (1, 2, 3):
        aaa.add_sim(n)
    auth = aaa.rt.subscriber.auth
    batches = auth.group_commit.batches
    replies = _burst(aaa, [1, 2, 3, 9])  # SIM 9 does not exist
    assert batches + 1 == auth.group_commit.batches
    assert [0, 1, 2, 3] == sorted(replies)
    for i in (0, 1, 2):
        assert Code.ACCESS_CHALLENGE == replies[i].code
        eap = decode_eap(b"".join(replies[i].get_all(Attr.EAP_MESSAGE)))
        assert 1 == AkaMessage.decode(eap.data).subtype  # AKA-Challenge
    assert Code.ACCESS_REJECT == replies[3].code
    for n in (1, 2, 3):
        assert 1 == decode_sqn_state(aaa.rt.subscriber.inventory.sqn_state(iccid(n))[0]).seq
    assert 3 == len(aaa.rt.audit.query(action="auc.eap-aka-prime"))


def test_no_challenge_leaves_when_the_sqn_commit_fails(
    aaa: Aaa, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2):
        aaa.add_sim(n)

    def fail(batch: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(aaa.rt.subscriber.auth.group_commit, "_write", fail)
    replies = _burst(aaa, [1, 2])
    assert [Code.ACCESS_REJECT, Code.ACCESS_REJECT] == [replies[i].code for i in (0, 1)]
    for n in (1, 2):
        assert 0 == decode_sqn_state(aaa.rt.subscriber.inventory.sqn_state(iccid(n))[0]).seq
