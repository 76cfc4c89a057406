"""Disconnect-Request and CoA-Request (RFC 5176) to a gateway endpoint built on pyrad:
on suspension, on a volume cap crossed in accounting, on an operator's request; NAKs,
retransmissions and timeouts, each audited."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pyrad.packet import AccountingResponse, AcctPacket

from simtrust.policy import policy_from_dict
from simtrust.subscriber import SimState

from .conftest import APN, SECRET, Aaa, iccid, imsi, wait_until
from .peers import COA_REQUEST, DISCONNECT_REQUEST, CoaReceiver, pyrad_dictionary


def accounting(aaa: Aaa, n: int, session: str, status: int, **counters: int) -> None:
    """One Accounting-Request from pyrad; waits for the Accounting-Response."""
    packet = AcctPacket(secret=SECRET.encode(), dict=pyrad_dictionary())
    packet["Acct-Session-Id"] = session
    packet["Acct-Status-Type"] = status
    packet["3GPP-IMSI"] = str(imsi(n))
    packet["Framed-IP-Address"] = f"10.45.0.{n}"
    packet["NAS-IP-Address"] = "127.0.0.1"
    packet["Called-Station-Id"] = APN
    for name, value in counters.items():
        packet[name.replace("_", "-")] = value
    wire = packet.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(wire, ("127.0.0.1", aaa.acct_port))
        data, _ = sock.recvfrom(4096)
    reply = packet.CreateReply(packet=data)
    assert AccountingResponse == reply.code
    assert packet.VerifyReply(reply, data)


@pytest.fixture
def gateway(aaa: Aaa) -> Iterator[CoaReceiver]:
    receiver = CoaReceiver(SECRET)
    aaa.services.clients.remove("127.0.0.1/32", actor="test")
    aaa.services.clients.add("127.0.0.1/32", SECRET, actor="test", name="pgw-1",
                             coa_port=receiver.port)
    aaa.services.coa.timeout = 0.2
    try:
        yield receiver
    finally:
        receiver.close()


def test_suspending_a_sim_disconnects_its_session(aaa: Aaa, gateway: CoaReceiver) -> None:
    aaa.add_sim(1)
    accounting(aaa, 1, "sess-1", 1)
    inventory = aaa.rt.subscriber.inventory
    inventory.transition(iccid(1), SimState.SUSPENDED, actor="operator", reason="fraud")
    wait_until(lambda: gateway.received)
    request = gateway.received[0]
    assert [True] == gateway.verified
    assert DISCONNECT_REQUEST == request.code
    assert ["sess-1"] == request["Acct-Session-Id"]
    assert [str(imsi(1))] == request["3GPP-IMSI"]
    assert ["10.45.0.1"] == request["Framed-IP-Address"]

    def audited() -> bool:
        return any(e.outcome == "success" for e in aaa.rt.audit.query(action="radius.disconnect"))

    wait_until(audited)


def test_volume_cap_crossed_in_accounting_removes_and_disconnects(
    aaa: Aaa, gateway: CoaReceiver
) -> None:
    aaa.add_sim(2)
    store = aaa.rt.policy.store
    store.put(policy_from_dict({
        "tenant_id": "acme", "scope": f"apn:{APN}",
        "rules": [{"kind": "volume", "period": "month", "max_bytes": 10_000,
                   "actions": ["remove", "log"]}],
    }), actor="test")
    accounting(aaa, 2, "sess-2", 1)
    accounting(aaa, 2, "sess-2", 3, Acct_Input_Octets=4_000, Acct_Output_Octets=4_000)
    inventory = aaa.rt.subscriber.inventory
    assert SimState.ACTIVE == inventory.get_sim(iccid(2)).state
    accounting(aaa, 2, "sess-2", 3, Acct_Input_Octets=9_000, Acct_Output_Octets=6_000)
    wait_until(lambda: inventory.get_sim(iccid(2)).state == SimState.SUSPENDED)
    wait_until(lambda: gateway.received)
    assert DISCONNECT_REQUEST == gateway.received[0].code
    assert ["sess-2"] == gateway.received[0]["Acct-Session-Id"]


def test_nak_is_kept_with_its_error_cause(aaa: Aaa, gateway: CoaReceiver) -> None:
    gateway.nak_cause = 503
    aaa.add_sim(3)
    accounting(aaa, 3, "sess-3", 1)
    results = aaa.services.disconnect_sim(str(imsi(3)), actor="operator", reason="manual")
    assert ["nak"] == [r.outcome for r in results]
    assert 503 == results[0].error_cause
    assert "session-context-not-found" == results[0].to_json()["error"]
    events = aaa.rt.audit.query(action="radius.disconnect")
    assert ["failure"] == [e.outcome for e in events]


def test_lost_requests_are_retransmitted_then_time_out(aaa: Aaa, gateway: CoaReceiver) -> None:
    gateway.drop_first = 1
    aaa.add_sim(4)
    accounting(aaa, 4, "sess-4", 1)
    results = aaa.services.disconnect_sim(str(imsi(4)), actor="operator", reason="manual")
    assert ("ack", 2) == (results[0].outcome, results[0].attempts)
    gateway.drop_first = 10**6
    aaa.services.coa.attempts = 2
    results = aaa.services.disconnect_sim(str(imsi(4)), actor="operator", reason="manual")
    assert ("timeout", 2) == (results[0].outcome, results[0].attempts)


def test_operator_coa_changes_the_session_timeout(aaa: Aaa, gateway: CoaReceiver) -> None:
    aaa.add_sim(5)
    accounting(aaa, 5, "sess-5", 1)
    results = aaa.services.change_sim(str(imsi(5)), actor="operator", reason="shorten",
                                      session_timeout=600)
    assert ["ack"] == [r.outcome for r in results]
    assert COA_REQUEST == gateway.received[0].code
    assert [600] == gateway.received[0]["Session-Timeout"]
    assert [True] == gateway.verified


def test_stopped_sessions_are_not_disconnected(aaa: Aaa, gateway: CoaReceiver) -> None:
    aaa.add_sim(6)
    accounting(aaa, 6, "sess-6", 1)
    accounting(aaa, 6, "sess-6", 2, Acct_Input_Octets=10)
    assert [] == aaa.services.disconnect_sim(str(imsi(6)), actor="operator", reason="manual")
