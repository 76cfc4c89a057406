"""The audit records this server writes itself (refusals before the attach decision, EAP
access without equipment): durable before their answer leaves, a burst's records
handed to the committing thread together (docs/decisions/aaa-eap-cpu.md)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

import pytest

from simtrust.aaa import Attr, Code, Packet, Vendor, decode
from simtrust.aaa._commit import AuditCommitter, AuditJob
from simtrust.audit import AuditEntry
from simtrust.errors import StoreError

from .conftest import APN, Aaa, imsi, wait_until

ADDR = ("127.0.0.1", 40002)


class _Log:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.fail = fail

    def append_many(self, entries: Sequence[AuditEntry], *, durable: bool = False,
                    returning: bool = True) -> list[Any]:
        self.calls.append((len(entries), durable))
        if self.fail:
            raise StoreError("disk full")
        return []


def _entry(n: int) -> AuditEntry:
    return AuditEntry(actor="test", action="radius.access", subject=f"sim:{n}",
                      outcome="failure")


def _jobs(count: int, log: list[str]) -> list[AuditJob]:
    return [([_entry(n)], partial(log.append, f"done {n}"), partial(log.append, f"failed {n}"))
            for n in range(count)]


def _commit_burst(committer: AuditCommitter, count: int) -> list[str]:
    seen: list[str] = []
    try:
        committer.submit_many(_jobs(count, seen))
        wait_until(lambda: len(seen) == count)
    finally:
        committer.close()
    return seen


def test_a_burst_is_one_durable_append_before_its_answers() -> None:
    audit = _Log()
    committer = AuditCommitter(audit)
    seen = _commit_burst(committer, 3)
    assert [(3, True)] == audit.calls  # fsynced (durable) in one transaction
    assert ["done 0", "done 1", "done 2"] == seen
    assert 1 == committer.batches


def test_a_failed_append_sends_none_of_the_burst() -> None:
    audit = _Log(fail=True)
    committer = AuditCommitter(audit)
    assert ["failed 0", "failed 1"] == _commit_burst(committer, 2)
    assert 2 == committer.failures


def test_jobs_queued_while_a_commit_runs_are_committed_next() -> None:
    gate = threading.Event()
    audit = _Log()
    original = audit.append_many

    def slow(entries: Sequence[AuditEntry], **kwargs: Any) -> list[Any]:
        gate.wait(5)
        return original(entries, **kwargs)

    audit.append_many = slow  # type: ignore[method-assign]
    committer = AuditCommitter(audit)
    seen: list[str] = []
    try:
        committer.submit_many(_jobs(1, seen))
        wait_until(lambda: committer._queue == type(committer._queue)())
        committer.submit_many(_jobs(2, seen))  # the thread is busy: queued, not woken
        gate.set()
        wait_until(lambda: len(seen) == 3)
    finally:
        committer.close()
    assert [(1, True), (2, True)] == audit.calls


def _no_equipment(n: int) -> bytes:
    packet = Packet(Code.ACCESS_REQUEST, n, os.urandom(16))
    packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, str(imsi(n)).encode())
    packet.add(Attr.CALLED_STATION_ID, APN.encode())
    return packet.encode()


def test_refusals_of_a_burst_are_committed_durably_together(
    aaa: Aaa, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2, 3):
        aaa.add_sim(n)
    server = aaa.services.server
    calls: list[tuple[int, bool]] = []
    log = server.committer._audit

    class Spy:
        def append_many(self, entries: Sequence[AuditEntry], **kwargs: Any) -> Any:
            calls.append((len(entries), bool(kwargs.get("durable"))))
            return log.append_many(entries, **kwargs)

    monkeypatch.setattr(server.committer, "_audit", Spy())
    sent: list[bytes] = []
    answers = server.handle_auth_burst([(_no_equipment(n), ADDR) for n in (1, 2, 3)],
                                       lambda data, addr: sent.append(data))
    assert [] == answers
    wait_until(lambda: len(sent) == 3)
    assert [(3, True)] == calls
    assert {Code.ACCESS_REJECT} == {decode(data).code for data in sent}
    refused = aaa.rt.audit.query(action="radius.access")
    assert 3 == len([e for e in refused if e.reason == "equipment-missing"])
