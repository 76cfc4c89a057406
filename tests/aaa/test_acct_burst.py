"""Accounting bursts (a UDP listener's datagrams read together): one commit, answers only
after it, retransmissions inside and across bursts, Accounting-On in the middle, and the
one-pass parser agreeing with the packet decoder."""

from __future__ import annotations

import socket
import sqlite3
from typing import Any

import pytest

from simtrust.aaa import Attr, Code, Packet, Vendor, decode
from simtrust.aaa._acct_record import scan
from simtrust.aaa._radius import MalformedPacket
from simtrust.errors import StoreError

from .conftest import SECRET, Aaa, imsi

ADDR = ("127.0.0.1", 40001)


def _acct(session: str, status: int, identifier: int, octets: int = 0) -> bytes:
    packet = Packet(Code.ACCOUNTING_REQUEST, identifier)
    packet.add_int(Attr.ACCT_STATUS_TYPE, status)
    if status in (1, 2, 3):
        packet.add(Attr.ACCT_SESSION_ID, session.encode())
        packet.add_int(Attr.ACCT_INPUT_OCTETS, octets)
    return packet.sign_request(SECRET.encode())


def test_a_burst_is_one_commit_answered_after_it(aaa: Aaa, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    server = aaa.services.server
    log = aaa.services.accounting
    sent: list[tuple[bytes, tuple[str, int]]] = []
    real = log._db.executemany
    sent_before_commit: list[int] = []

    def executemany(sql: str, rows: Any) -> None:
        sent_before_commit.append(len(sent))
        real(sql, rows)

    monkeypatch.setattr(log._db, "executemany", executemany)
    first = _acct("b-1", 1, 1)
    bad = bytearray(_acct("b-bad", 1, 4))
    bad[5] ^= 0xFF  # Request Authenticator no longer matches
    burst = [(first, ADDR), (_acct("b-2", 1, 2), ADDR), (first, ADDR), (bytes(bad), ADDR),
             (_acct("b-3", 3, 3, 500), ADDR)]
    batches = log.batches
    server.handle_acct_burst(burst, lambda data, addr: sent.append((data, addr)))
    assert [0] == sent_before_commit
    assert batches + 1 == log.batches
    assert 4 == len(sent)  # three records and the copy of the first
    assert sent[3] == sent[0]  # the copy's answer is the first's
    assert all(decode(data).code == Code.ACCOUNTING_RESPONSE for data, _addr in sent)
    assert 1 == server.counters["bad_authenticator"]
    assert 1 == server.counters["duplicates"]
    assert 1 == log.get("1:b-1").updates  # type: ignore[union-attr]
    assert 500 == log.get("1:b-3").in_octets  # type: ignore[union-attr]
    assert log.get("1:b-bad") is None
    # A retransmission in a later burst gets the answer already sent, nothing is written.
    again: list[bytes] = []
    server.handle_acct_burst([(first, ADDR)], lambda data, _addr: again.append(data))
    assert [sent[0][0]] == again
    assert batches + 1 == log.batches


def test_a_failed_commit_answers_none_and_the_retransmissions_are_written(
    aaa: Aaa, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = aaa.services.server
    log = aaa.services.accounting
    real = log._db.executemany
    calls = {"n": 0}

    def flaky(sql: str, rows: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("disk full")
        real(sql, rows)

    monkeypatch.setattr(log._db, "executemany", flaky)
    burst = [(_acct("f-1", 1, 1), ADDR), (_acct("f-2", 1, 2), ADDR)]
    sent: list[bytes] = []
    server.handle_acct_burst(burst, lambda data, _addr: sent.append(data))
    assert [] == sent
    assert 2 == log.failures
    assert log.get("1:f-1") is None
    server.handle_acct_burst(burst, lambda data, _addr: sent.append(data))
    assert 2 == len(sent)
    assert log.get("1:f-1") is not None
    assert log.get("1:f-2") is not None


def test_accounting_on_in_a_burst_closes_what_came_before_it(aaa: Aaa) -> None:
    server = aaa.services.server
    log = aaa.services.accounting
    sent: list[bytes] = []
    burst = [(_acct("o-1", 1, 1), ADDR), (_acct("", 7, 2), ADDR), (_acct("o-2", 1, 3), ADDR)]
    server.handle_acct_burst(burst, lambda data, _addr: sent.append(data))
    assert 3 == len(sent)
    before, after = log.get("1:o-1"), log.get("1:o-2")
    assert before is not None
    assert after is not None
    assert ("closed", 11) == (before.status, before.terminate_cause)
    assert "open" == after.status


def test_volume_is_metered_once_per_byte_across_bursts(aaa: Aaa) -> None:
    aaa.add_sim(7)
    server = aaa.services.server
    metered: list[int] = []

    class Usage:
        def meter(self, _imsi: str, octets: int, *, at: float | None = None) -> None:
            metered.append(octets)

    server.usage = Usage()
    packets = []
    for n, octets in enumerate((100, 300, 300, 250, 900)):
        packet = Packet(Code.ACCOUNTING_REQUEST, n)
        packet.add_int(Attr.ACCT_STATUS_TYPE, 3)
        packet.add(Attr.ACCT_SESSION_ID, b"m-1")
        packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, str(imsi(7)).encode())
        packet.add_int(Attr.ACCT_INPUT_OCTETS, octets)
        packets.append((packet.sign_request(SECRET.encode()), ADDR))
    server.handle_acct_burst(packets[:3], lambda _d, _a: None)
    server.handle_acct_burst(packets[3:], lambda _d, _a: None)
    # counters are cumulative: a repeat or a lower value adds nothing
    assert [100, 200, 600] == metered


def test_scan_agrees_with_decode() -> None:
    packet = Packet(Code.ACCOUNTING_REQUEST, 7)
    packet.add_int(Attr.ACCT_STATUS_TYPE, 3)
    packet.add(Attr.ACCT_SESSION_ID, b"s-1")
    packet.add(Attr.ACCT_SESSION_ID, b"s-2")
    packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, b"001010000000001")
    packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, b"001010000000002")
    packet.add_vendor(Vendor.MICROSOFT, Vendor.TGPP_IMSI, b"not-3gpp")
    packet.add_vendor(Vendor.TGPP, Vendor.TGPP_SGSN_MCC_MNC, b"00102")
    packet.add(Attr.FRAMED_IP_ADDRESS, bytes((10, 0, 0, 1)))
    wire = packet.sign_request(SECRET.encode()) + b"\x00" * 3  # padding past Length
    length, first, tgpp = scan(wire)
    decoded = decode(wire)
    assert len(wire) - 3 == length
    assert decoded.first() == first
    for sub in (Vendor.TGPP_IMSI, Vendor.TGPP_SGSN_MCC_MNC, Vendor.TGPP_IMEISV):
        assert decoded.vendor(Vendor.TGPP, sub) == tgpp.get(sub)


@pytest.mark.parametrize("mangle", [
    lambda w: w[:19],  # shorter than a header
    lambda w: w[:2] + (19).to_bytes(2, "big") + w[4:],  # Length below 20
    lambda w: w[:2] + (len(w) + 5).to_bytes(2, "big") + w[4:],  # datagram shorter
    lambda w: w[:21] + b"\x00" + w[22:],  # attribute length 0 (would loop)
    lambda w: w[:21] + b"\xff" + w[22:],  # attribute runs past the packet
    lambda w: w + b"\x00" * 4097,  # oversized
])
def test_scan_refuses_what_decode_refuses(mangle: Any) -> None:
    packet = Packet(Code.ACCOUNTING_REQUEST, 1)
    packet.add_int(Attr.ACCT_STATUS_TYPE, 3)
    bad = mangle(packet.sign_request(SECRET.encode()))
    with pytest.raises(MalformedPacket):
        decode(bad)
    with pytest.raises(MalformedPacket):
        scan(bad)


def test_an_unexpected_store_error_costs_a_burst_not_the_listener(
        aaa: Aaa, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error of a kind the path does not expect (here the database driver's own) drops
    the burst unanswered, is counted, and the listener answers the retransmission."""
    server = aaa.services.server
    real = server.handle_acct_burst
    failures = [sqlite3.OperationalError("database is locked")]

    def flaky(burst: Any, send: Any) -> None:
        if failures:
            raise failures.pop()
        real(burst, send)

    monkeypatch.setattr(server, "handle_acct_burst", flaky)
    request = _acct("x-1", 1, 9)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        answers: list[bytes] = []
        for _attempt in range(40):  # the gateway's retransmissions
            sock.sendto(request, ("127.0.0.1", aaa.acct_port))
            try:
                answers.append(sock.recvfrom(4096)[0])
                break
            except TimeoutError:
                continue
    assert answers, "the listener stopped answering after the error"
    assert Code.ACCOUNTING_RESPONSE == decode(answers[0]).code
    assert 1 == server.counters["internal_errors"]
    assert aaa.services.accounting.get("1:x-1") is not None
