"""A burst's records of stored sessions are written by a lean UPDATE, to the same rows.

``AccountingLog.commit(records, stored)`` writes a record of a session named in
``stored`` by an UPDATE of the values it carries (SQLite); the stored row must be
exactly what the upsert makes of the same records (counters that never fall, a Stop
that is final, first identities kept, the latest network taken) — on generated
sequences (hypothesis) on SQLite and PostgreSQL. A session taken for stored that has
no row rolls the burst back and writes it again by upsert: nothing is lost.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.aaa import AccountingLog, AcctRecord
from simtrust.runtime import Runtime

_keys = itertools.count()

maybe = st.one_of(st.none(), st.sampled_from(["x", "y"]))
records = st.builds(
    lambda status, imsi, iccid, tenant, apn, msisdn, imeisv, framed, serving, visited,
    counters, cause, second: {
        "status": status, "at": f"2026-12-07T05:00:{second:02d}", "imsi": imsi,
        "iccid": iccid, "tenant_id": tenant, "apn": apn, "msisdn": msisdn, "imeisv": imeisv,
        "framed_ip": framed, "serving_plmn": serving, "visited_plmn": visited,
        "in_octets": counters[0], "out_octets": counters[1], "in_packets": counters[2],
        "out_packets": counters[3], "session_time": counters[4], "terminate_cause": cause},
    st.sampled_from(["open", "open", "closed"]), maybe, maybe, maybe, maybe, maybe, maybe,
    maybe, maybe, maybe, st.tuples(*[st.integers(0, 2**40)] * 5),
    st.one_of(st.none(), st.integers(1, 20)), st.integers(0, 59),
)


def _record(key: str, fields: dict[str, object]) -> AcctRecord:
    return AcctRecord(key, key.split(":")[1], 1, **fields)  # type: ignore[arg-type]


def _row(log: AccountingLog, key: str) -> tuple[object, ...]:
    session = log.get(key)
    assert session is not None
    values = session.to_json()
    values.pop("session_id")
    return tuple(sorted(values.items()))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=records, later=st.lists(st.lists(records, min_size=1, max_size=4), max_size=4))
def test_updates_of_stored_sessions_store_what_the_upsert_stores(
        runtime: Runtime, first: dict[str, object], later: list[list[dict[str, object]]]
) -> None:
    log = AccountingLog(runtime.db)
    try:
        n = next(_keys)
        lean, upsert = f"1:lean{n}", f"1:upsert{n}"
        assert log.commit([_record(lean, first), _record(upsert, first)])
        for burst in later:
            assert log.commit([_record(lean, f) for f in burst], {lean})
            assert log.commit([_record(upsert, f) for f in burst], ())
        assert _row(log, upsert) == _row(log, lean)
        assert 1 + sum(map(len, later)) == log.get(lean).updates  # type: ignore[union-attr]
    finally:
        log.close()


def test_a_session_taken_for_stored_without_a_row_is_written_by_upsert(
        runtime: Runtime) -> None:
    log = AccountingLog(runtime.db)
    try:
        assert log.commit([_record("1:there", {"status": "open", "at": "t0", "in_octets": 1})])
        burst = [_record("1:there", {"status": "open", "at": "t1", "in_octets": 5}),
                 _record("1:gone", {"status": "open", "at": "t1", "imsi": "001010000000001",
                                    "in_octets": 7})]
        assert log.commit(burst, {"1:there", "1:gone"})
        there, gone = log.get("1:there"), log.get("1:gone")
        assert there is not None
        assert gone is not None
        assert (5, 2) == (there.in_octets, there.updates)  # written once, not twice
        assert (7, 1, "001010000000001") == (gone.in_octets, gone.updates, gone.imsi)
    finally:
        log.close()
