"""The hash-chained audit log: appends, queries, and verification that names each break."""

from __future__ import annotations

import dataclasses
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.audit import GENESIS_HASH, AuditEntry, AuditLog, chain_hash
from simtrust.audit._log import _canonical
from simtrust.errors import InvalidInput
from simtrust.runtime import Runtime


def _fill(log: AuditLog, n: int) -> list[str]:
    return [
        log.append(actor="test", action="thing.touch", subject=f"thing:{i}", outcome="success",
                   tenant_id="acme" if i % 2 else "globex", details={"i": i}).event_id
        for i in range(1, n + 1)
    ]


def test_chain_links_records(runtime: Runtime) -> None:
    _fill(runtime.audit, 3)
    events = list(runtime.audit.iter_all())
    assert [1, 2, 3] == [e.seq for e in events]
    assert GENESIS_HASH == events[0].prev_hash
    for before, after in itertools.pairwise(events):
        assert before.hash == after.prev_hash
    for e in events:
        assert e.hash == chain_hash(e.prev_hash, e.canonical())
    assert [] == runtime.audit.verify()


def test_altered_record_is_named(runtime: Runtime) -> None:
    ids = _fill(runtime.audit, 5)
    runtime.db.execute("UPDATE audit_events SET outcome = 'deny' WHERE seq = 3")
    breaks = runtime.audit.verify()
    assert [(3, ids[2], "altered")] == [(b.seq, b.event_id, b.problem) for b in breaks]


def test_removed_record_is_named(runtime: Runtime) -> None:
    _fill(runtime.audit, 5)
    runtime.db.execute("DELETE FROM audit_events WHERE seq = 2")
    breaks = runtime.audit.verify()
    assert [(2, "removed")] == [(b.seq, b.problem) for b in breaks]


def test_reordered_records_are_named(runtime: Runtime) -> None:
    _fill(runtime.audit, 5)
    # Swap the content of records 2 and 4 while keeping sequence numbers and each
    # record's own hash consistent with its content: only the chain order is wrong.
    rows = {r[0]: r for r in runtime.db.query(
        "SELECT seq, event_id, at, actor, action, subject, outcome, reason, tenant_id, details,"
        " prev_hash, hash FROM audit_events")}
    events = {e.seq: e for e in runtime.audit.iter_all()}
    with runtime.db.transaction():
        runtime.db.execute("DELETE FROM audit_events WHERE seq IN (2, 4)")
        for new_seq, old_seq in ((2, 4), (4, 2)):
            old = events[old_seq]
            moved = dataclasses.replace(old, seq=new_seq)
            digest = chain_hash(old.prev_hash, moved.canonical())
            r = rows[old_seq]
            runtime.db.execute(
                "INSERT INTO audit_events (seq, event_id, at, actor, action, subject, outcome,"
                " reason, tenant_id, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (new_seq, *r[1:10], old.prev_hash, digest),
            )
    problems = {(b.seq, b.problem) for b in runtime.audit.verify()}
    assert (2, "reordered") in problems
    assert (4, "reordered") in problems


def test_inserted_record_is_named(runtime: Runtime) -> None:
    _fill(runtime.audit, 2)
    forged_prev = b"\x01" * 32
    fake = runtime.audit.query(limit=1)[0]
    moved = dataclasses.replace(fake, seq=3, event_id="forged", prev_hash=forged_prev)
    runtime.db.execute(
        "INSERT INTO audit_events (seq, event_id, at, actor, action, subject, outcome, reason,"
        " tenant_id, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (3, "forged", moved.at.isoformat(), moved.actor, moved.action, moved.subject,
         moved.outcome, moved.reason, moved.tenant_id, "{\"i\":1}", forged_prev,
         chain_hash(forged_prev, dataclasses.replace(moved).canonical())),
    )
    problems = [(b.seq, b.problem) for b in runtime.audit.verify()]
    assert (3, "inserted") in problems or (3, "altered") in problems


def test_query_filters(runtime: Runtime) -> None:
    _fill(runtime.audit, 6)
    assert 3 == len(runtime.audit.query(tenant_id="acme"))
    assert ["thing:4"] == [e.subject for e in runtime.audit.query(subject="thing:4")]
    assert [5, 6] == [e.seq for e in runtime.audit.query(after_seq=4)]
    future = datetime.now(UTC) + timedelta(days=1)
    assert [] == runtime.audit.query(since=future)
    assert 6 == len(runtime.audit.query(until=future))
    with pytest.raises(InvalidInput):
        runtime.audit.query(limit=0)


def test_append_many_is_one_chain(runtime: Runtime) -> None:
    entries = [AuditEntry("svc", "attach.decide", f"imsi:{i}", "allow") for i in range(50)]
    events = runtime.audit.append_many(entries)
    assert list(range(1, 51)) == [e.seq for e in events]
    assert [] == runtime.audit.verify()


def test_second_writer_is_detected_and_retried(runtime: Runtime) -> None:
    other = AuditLog(runtime.db, runtime.clock)
    runtime.audit.append(actor="a", action="x.y", subject="s", outcome="info")
    other.append(actor="b", action="x.y", subject="s", outcome="info")
    runtime.audit.append(actor="a", action="x.y", subject="s", outcome="info")
    assert [1, 2, 3] == [e.seq for e in runtime.audit.iter_all()]
    assert [] == runtime.audit.verify()


@pytest.mark.parametrize(("field", "value"), [("actor", ""), ("outcome", "maybe")])
def test_bad_entries_are_refused(runtime: Runtime, field: str, value: str) -> None:
    args = {"actor": "a", "action": "x.y", "subject": "s", "outcome": "info", field: value}
    with pytest.raises(InvalidInput):
        runtime.audit.append(**args)
    assert 0 == runtime.audit.count()


def test_rolled_back_outer_transaction_leaves_no_gap(runtime: Runtime) -> None:
    runtime.audit.append(actor="a", action="x.y", subject="s", outcome="info")
    with pytest.raises(RuntimeError), runtime.db.transaction():
        runtime.audit.append(actor="a", action="x.y", subject="rolled-back", outcome="info")
        raise RuntimeError("the caller's change failed")
    runtime.audit.append(actor="a", action="x.y", subject="after", outcome="info")
    assert [(1, "s"), (2, "after")] == [(e.seq, e.subject) for e in runtime.audit.iter_all()]
    assert [] == runtime.audit.verify()


@given(
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8),
                                                   st.none(), st.booleans()), max_size=4),
    st.text(min_size=1, max_size=12),
    st.one_of(st.none(), st.text(max_size=6)),
)
def test_canonical_equals_sorted_compact_json(details: dict, actor: str, tenant: str | None) -> None:

    doc = {"seq": 7, "event_id": "e", "at": "2026-01-01T00:00:00.000000Z", "actor": actor,
           "action": "a.b", "subject": "s\u00e9\"", "outcome": "info", "reason": "r\n",
           "tenant_id": tenant, "details": details}
    expected = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert expected == _canonical(7, "e", doc["at"], actor, "a.b", doc["subject"], "info",
                                  "r\n", tenant, details)


def test_append_many_without_returning_chains_the_same_records(runtime: Runtime) -> None:
    entries = [AuditEntry("test", "thing.touch", f"thing:{i}", "success", details={"i": i})
               for i in range(5)]
    assert [] == runtime.audit.append_many(entries, returning=False)
    events = list(runtime.audit.iter_all())
    assert [{"i": i} for i in range(5)] == [e.details for e in events]
    # records without a time of their own share the call's one clock reading
    assert 1 == len({e.at for e in events})
    ids = [e.event_id for e in events]
    assert len(set(ids)) == 5
    for event, event_id in zip(events, ids, strict=True):
        parsed = uuid.UUID(event_id)
        assert (7, uuid.RFC_4122, event_id) == (parsed.version, parsed.variant, str(parsed))
        # RFC 9562 §5.7: the first 48 bits are the record's time in Unix milliseconds
        assert int(event.at.timestamp() * 1000) == parsed.int >> 80
    assert [] == runtime.audit.verify()


def test_event_ids_follow_the_append_time(runtime: Runtime) -> None:
    """Version 7 ids (RFC 9562 §5.7) ascend with the sequence number, within an append
    and across appends, so the UNIQUE index on event_id grows at its end."""
    times = iter([datetime(2026, 3, 1, 12, 0, 0, 0, UTC) + timedelta(milliseconds=k)
                  for k in (0, 1, 1_000, 86_400_000)])
    log = AuditLog(runtime.db, lambda: next(times))
    batches = [[e.event_id for e in log.append_many(
        [AuditEntry("t", "x.y", f"s:{i}", "info") for i in range(20)])] for _ in range(4)]
    for batch in batches:
        assert sorted(batch) == batch  # in sequence order within one append
    for earlier, later in itertools.pairwise(batches):
        assert earlier[-1] < later[0]
    assert 80 == len({i for batch in batches for i in batch})
    assert [] == log.verify()
