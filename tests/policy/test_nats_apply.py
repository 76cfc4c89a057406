"""``BatchApplier`` on SQLite and PostgreSQL: each (partition, stream sequence) applied once."""

from __future__ import annotations

from typing import Any

import pytest

from simtrust.domain import DeviceContext, FlowRecord
from simtrust.errors import StoreError
from simtrust.flows import BatchApplier, FlowBatch, MappedFlow
from simtrust.policy import build_policy_service, policy_from_dict
from simtrust.runtime import Runtime

IMSI = "001010000000042"


def _service(rt: Runtime) -> Any:
    service = build_policy_service(rt.db, rt.audit, rt.clock)
    rt.policy = service
    service.register(DeviceContext(IMSI, "acme", apn="iot", group="meters"))
    service.store.put(policy_from_dict({"tenant_id": "acme", "scope": "tenant", "rules": [
        {"kind": "volume", "period": "day", "max_bytes": 2500, "actions": ["log"]}]}),
        actor="test")
    return service


def _batch(octets: int, t: float = 1_700_000_000.0) -> FlowBatch:
    up = FlowRecord(t, t + 1, "10.64.0.9", "192.0.2.1", 40000, 443, 6, 2, octets, 0, "gw", IMSI)
    down = FlowRecord(t, t + 1, "192.0.2.1", "10.64.0.9", 443, 40000, 6, 2, 10, 0, "gw", IMSI)
    return FlowBatch(1, 0, [MappedFlow(up, True), MappedFlow(down, False)])


def _stored(rt: Runtime) -> int:
    row = rt.db.query_one("SELECT octets FROM policy_nats_usage WHERE imsi = ? AND period = ?",
                          (IMSI, "day"))
    return int(row[0]) if row else 0


def test_a_sequence_is_applied_once_and_counters_survive_a_restart(runtime: Runtime) -> None:
    service = _service(runtime)
    applier = BatchApplier(runtime.db, runtime.policy, clock=runtime.clock, stream="S", partitions=[0])
    first = applier.apply(0, 5, _batch(1000))
    assert (True, 2) == (first.applied, first.records)
    assert {IMSI} == {v.imsi for v in first.verdicts}
    assert not applier.apply(0, 5, _batch(1000)).applied  # redelivery
    assert applier.apply(0, 3, _batch(1000)).applied  # an earlier sequence arriving late
    assert 2020 == _stored(runtime)
    # a new process: in-memory counters gone, restored from the store
    service.policies.usage.reset()
    again = BatchApplier(runtime.db, runtime.policy, clock=runtime.clock, stream="S", partitions=[0])
    assert not again.apply(0, 3, _batch(1000)).applied
    over = again.apply(0, 9, _batch(1000))
    assert over.applied
    assert ["volume"] == [v.kind for v in over.verdicts[0].decision.violations]
    assert 3030 == _stored(runtime)
    totals = again.totals()[0]
    assert (9, 3, 6, 3030) == (totals["last_seq"], totals["batches"], totals["records"],
                               totals["octets"])
    runtime.policy.dispatcher.flush()


def test_forgetting_below_the_ack_floor_keeps_skipping_old_sequences(runtime: Runtime) -> None:
    _service(runtime)
    applier = BatchApplier(runtime.db, runtime.policy, clock=runtime.clock, stream="S", partitions=[0, 1])
    for seq in (1, 2, 4):
        applier.apply(0, seq, _batch(100))
    assert 2 == applier.forget_below(0, 2)
    assert [(4,)] == [tuple(r) for r in runtime.db.query(
        "SELECT seq FROM policy_nats_applied WHERE stream = 'S' AND part = 0")]
    fresh = BatchApplier(runtime.db, runtime.policy, clock=runtime.clock, stream="S", partitions=[0, 1])
    assert [True, True, False] == [fresh.is_applied(0, s) for s in (1, 4, 3)]
    assert not fresh.apply(0, 2, _batch(100)).applied
    assert fresh.apply(0, 3, _batch(100)).applied


def test_a_failed_commit_leaves_counters_and_sequence_untouched(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    _service(runtime)
    applier = BatchApplier(runtime.db, runtime.policy, clock=runtime.clock, stream="S", partitions=[0])
    applier.apply(0, 1, _batch(500))

    class Broken:
        def observe(self, flow: FlowRecord) -> list[Any]:
            raise StoreError("disk full")

        def assign(self, address: str, ref: Any) -> None:
            return None

    applier.detection = Broken()
    with pytest.raises(StoreError):
        applier.apply(0, 2, _batch(700))
    usage = applier.engine.policies.usage
    day = next(b for (i, p), (b, _) in usage._volume.items() if i == IMSI and p == "day")
    assert 510 == usage.bytes_in(IMSI, "day", day)
    assert 510 == _stored(runtime)
    assert not applier.is_applied(0, 2)
    applier.detection = None
    assert applier.apply(0, 2, _batch(700)).applied
    assert 1220 == _stored(runtime)
