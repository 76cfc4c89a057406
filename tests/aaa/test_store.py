"""The AAA tables on SQLite and PostgreSQL: sealed gateway secrets, APN access and users,
and accounting sessions whose counters only grow and whose Stop is final."""

from __future__ import annotations

import threading

import pytest

from simtrust.aaa import AccountingLog, AcctRecord
from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.runtime import Runtime


def test_clients_are_sealed_and_matched_by_longest_prefix(runtime: Runtime) -> None:
    clients = runtime.aaa.clients
    wide = clients.add("10.0.0.0/8", "wide-secret", actor="t")
    narrow = clients.add("10.1.2.0/24", "narrow-secret", actor="t", coa_port=1700)
    assert narrow == clients.match("10.1.2.3")
    assert wide == clients.match("10.9.9.9")
    assert clients.match("192.0.2.1") is None
    assert "narrow-secret" not in repr(narrow)
    assert "narrow-secret" not in str(narrow.to_json())
    stored = runtime.db.query("SELECT secret_sealed FROM aaa_clients")
    assert all(b"secret" not in bytes(row[0]) for row in stored)
    with pytest.raises(Conflict):
        clients.add("10.1.2.0/24", "again", actor="t")
    with pytest.raises(InvalidInput):
        clients.add("10.1.2.0/24", "", actor="t")
    assert narrow == clients.remove("10.1.2.0/24", actor="t")
    assert wide == clients.match("10.1.2.3")
    with pytest.raises(NotFound):
        clients.remove("10.1.2.0/24", actor="t")


def test_apn_access_and_users(runtime: Runtime) -> None:
    apns = runtime.aaa.apns
    assert "none" == apns.access("acme", "acme.iot").auth
    apns.set_access("acme", "acme.iot", actor="t", auth="chap", session_timeout=120)
    assert (apns.access("acme", "acme.iot").auth, 120) == (
        "chap", apns.access("acme", "acme.iot").session_timeout)
    apns.add_user("acme", "acme.iot", "meter", "pw-1", actor="t")
    assert apns.check_pap("acme", "acme.iot", "meter", b"pw-1")
    assert not apns.check_pap("acme", "acme.iot", "meter", b"pw-2")
    assert not apns.check_pap("acme", "acme.iot", "other", b"pw-1")
    with pytest.raises(Conflict):
        apns.add_user("acme", "acme.iot", "meter", "x", actor="t")
    apns.remove_user("acme", "acme.iot", "meter", actor="t")
    assert not apns.check_pap("acme", "acme.iot", "meter", b"pw-1")


def _record(status: str, octets: int, **kw: object) -> AcctRecord:
    return AcctRecord(session_key="1:s", acct_session_id="s", client_id=1, status=status,
                      at="2026-01-01T00:00:00+00:00", imsi="001010000000001",
                      iccid="8988200000000000018", in_octets=octets, out_octets=octets,
                      **kw)  # type: ignore[arg-type]


def test_sessions_grow_and_stop_is_final(runtime: Runtime) -> None:
    log = AccountingLog(runtime.db)
    try:
        done = threading.Event()
        log.submit(_record("open", 10, serving_plmn="26202", visited_plmn="26202"), done.set)
        assert done.wait(10)
        log.write_now([_record("open", 50)])
        log.write_now([_record("open", 20)])  # reordered: never lowers the counters
        assert 50 == log.get("1:s").in_octets  # type: ignore[union-attr]
        log.write_now([_record("closed", 60, terminate_cause=1)])
        log.write_now([_record("open", 70)])  # late interim after Stop: stays closed
        session = log.get("1:s")
        assert session is not None
        assert ("closed", 70, 1, 5) == (session.status, session.in_octets,
                                        session.terminate_cause, session.updates)
        assert "26202" == session.visited_plmn
        assert ["1:s"] == [s.session_key for s in log.roaming_sessions()]
        log.write_now([AcctRecord("1:t", "t", 1, "open", "2026-01-01T00:00:01+00:00")])
        assert 1 == log.close_client(1, "2026-01-01T00:00:02+00:00")
        assert "closed" == log.get("1:t").status  # type: ignore[union-attr]
    finally:
        log.close()
