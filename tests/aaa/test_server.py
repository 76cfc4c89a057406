"""Server rules without sockets: retransmissions answered from the cache (decided once),
the per-client rate bound, Accounting-On closing a gateway's sessions."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from simtrust.aaa import Attr, Code, Packet, Vendor, decode
from simtrust.aaa._admission import ClientRateLimit
from simtrust.errors import StoreError

from .conftest import APN, SECRET, Aaa, imeisv, imsi, wait_until

ADDR = ("127.0.0.1", 40000)


def _access(n: int) -> bytes:
    packet = Packet(Code.ACCESS_REQUEST, 9, os.urandom(16))
    packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, str(imsi(n)).encode())
    packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMEISV, str(imeisv(n)).encode())
    packet.add(Attr.CALLED_STATION_ID, APN.encode())
    return packet.encode()


def _acct(session: str, status: int, identifier: int = 1) -> bytes:
    packet = Packet(Code.ACCOUNTING_REQUEST, identifier)
    packet.add_int(Attr.ACCT_STATUS_TYPE, status)
    if status in (1, 2, 3):
        packet.add(Attr.ACCT_SESSION_ID, session.encode())
    return packet.sign_request(SECRET.encode())


def test_retransmission_gets_the_cached_answer(aaa: Aaa) -> None:
    aaa.add_sim(1)
    server = aaa.services.server
    attach = aaa.rt.subscriber.attach
    datagram = _access(1)
    first = server.handle_auth(datagram, ADDR)
    decided = attach.decisions
    second = server.handle_auth(datagram, ADDR)
    assert first is not None
    assert first == second
    assert decided == attach.decisions
    assert 1 == server.counters["duplicates"]
    assert Code.ACCESS_ACCEPT == decode(first).code


def test_accounting_retransmission_is_written_once(aaa: Aaa) -> None:
    server = aaa.services.server
    answers: list[bytes] = []
    done = threading.Event()

    def send(data: bytes) -> None:
        answers.append(data)
        if len(answers) == 2:
            done.set()

    datagram = _acct("dup-1", 1)
    server.handle_acct(datagram, ADDR, send)
    wait_until(lambda: answers)
    server.handle_acct(datagram, ADDR, send)
    assert done.wait(10)
    assert answers[0] == answers[1]
    assert 1 == aaa.services.accounting.get("1:dup-1").updates  # type: ignore[union-attr]


def test_client_over_its_rate_is_dropped(aaa: Aaa) -> None:
    server = aaa.services.server
    server._rates = ClientRateLimit(rate=0.001, burst=3.0)
    for n in range(5):
        server.handle_auth(_access(100 + n), ADDR)
    assert 2 == server.counters["rate_limited"]


def test_accounting_on_closes_the_gateways_sessions(aaa: Aaa) -> None:
    server = aaa.services.server
    answers: list[bytes] = []
    server.handle_acct(_acct("on-1", 1), ADDR, answers.append)
    wait_until(lambda: answers)
    server.handle_acct(_acct("", 7, identifier=2), ADDR, answers.append)
    assert 2 == len(answers)
    session = aaa.services.accounting.get("1:on-1")
    assert session is not None
    assert ("closed", 11) == (session.status, session.terminate_cause)


def test_failed_commit_is_not_answered_and_the_retransmission_is_written(
    aaa: Aaa, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = aaa.services.server
    db = aaa.services.accounting._db
    real = db.executemany
    calls = {"n": 0}

    def flaky(sql: str, rows: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("disk full")
        real(sql, rows)

    monkeypatch.setattr(db, "executemany", flaky)
    answers: list[bytes] = []
    datagram = _acct("fail-1", 1)
    server.handle_acct(datagram, ADDR, answers.append)
    wait_until(lambda: aaa.services.accounting.failures == 1)
    assert [] == answers
    server.handle_acct(datagram, ADDR, answers.append)
    wait_until(lambda: answers)
    assert aaa.services.accounting.get("1:fail-1") is not None


def test_a_burst_is_answered_after_its_one_commit_and_retransmissions_wait(
    aaa: Aaa, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2, 3):
        aaa.add_sim(n)
    server = aaa.services.server
    group = aaa.rt.subscriber.attach.group_commit
    real = group._write
    writes: list[int] = []
    seen_during_write: list[bytes | None] = []
    burst = [(_access(n), ADDR) for n in (1, 2, 3)]

    def write(items: Any) -> None:
        writes.append(len(items))
        # While the burst's records are being written, a retransmission is not answered.
        seen_during_write.append(server.handle_auth(burst[0][0], ADDR))
        real(items)

    monkeypatch.setattr(group, "_write", write)
    answers = server.handle_auth_burst(burst, lambda data, addr: None)
    assert [3] == writes  # the three decisions shared one write
    assert [None] == seen_during_write
    assert [ADDR] * 3 == [addr for _answer, addr in answers]
    assert {Code.ACCESS_ACCEPT} == {decode(answer).code for answer, _addr in answers}
    # After the commit, a retransmission gets the answer that was sent.
    assert answers[0][0] == server.handle_auth(burst[0][0], ADDR)


def test_a_burst_whose_commit_fails_is_not_answered_and_is_decided_again(
    aaa: Aaa, monkeypatch: pytest.MonkeyPatch
) -> None:
    aaa.add_sim(1)
    server = aaa.services.server
    group = aaa.rt.subscriber.attach.group_commit
    real = group._write
    calls = {"n": 0}

    def flaky(items: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("disk full")
        real(items)

    monkeypatch.setattr(group, "_write", flaky)
    datagram = _access(1)
    with pytest.raises(StoreError):
        server.handle_auth_burst([(datagram, ADDR)], lambda data, addr: None)
    answers = server.handle_auth_burst([(datagram, ADDR)], lambda data, addr: None)
    assert 1 == len(answers)
    assert Code.ACCESS_ACCEPT == decode(answers[0][0]).code
    assert 2 == calls["n"]
