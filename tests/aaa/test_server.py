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
