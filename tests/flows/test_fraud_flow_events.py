"""Flows reach the fraud detectors: one flow-summary event per SIM and batch, naming the
destination prefixes the SIM's flows reached, from the collector's path and from the
JetStream path; the flows of a suspended SIM raise a usage-fraud alert through the
runtime's sinks."""

from __future__ import annotations

from pathlib import Path

from simtrust.alerts import MemorySink
from simtrust.detect import Alert, SimEvent
from simtrust.domain import FlowRecord, imsi_digits
from simtrust.flows import BatchApplier, FlowBatch
from simtrust.runtime import Runtime
from simtrust.subscriber import SimState
from tests.policy.test_integration import provision


def spy_fraud_events(rt: Runtime) -> list[SimEvent]:
    """The events the fraud detectors observe from now on, in order."""
    seen: list[SimEvent] = []
    observe = rt.detect.fraud.observe

    def spy(event: SimEvent) -> list[Alert]:
        seen.append(event)
        return observe(event)

    rt.detect.fraud.observe = spy  # type: ignore[method-assign]
    return seen


def test_flows_of_a_suspended_sim_raise_usage_fraud(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        address, iccid, imsi, _ = provision(rt)
        sink: MemorySink[Alert] = MemorySink()
        rt.detect.add_sink(sink)

        def flows(at: float) -> list[FlowRecord]:
            return [FlowRecord(at, at + 1.0, address, "198.51.100.4", 40000 + i, 443, 6, 3, 900)
                    for i in range(3)]

        before = rt.detect.fraud.events
        seen = spy_fraud_events(rt)
        rt.flows.ingest(flows(1_000.0))
        assert before + 1 == rt.detect.fraud.events  # three flows, one summary event
        assert [("flow", ("198.51.100.0/24",))] == [(e.kind, e.destinations) for e in seen]
        assert [] == [a for a in sink.alerts if a.kind == "usage-fraud"]
        rt.subscriber.inventory.transition(iccid, SimState.SUSPENDED, actor="test")
        rt.flows.ingest(flows(2_000.0))
        found = [a for a in sink.alerts if a.kind == "usage-fraud"]
        assert [(imsi.value, "used_while_suspended", "flow")] == [
            (a.imsi, a.evidence["feature"], a.evidence["event"]) for a in found]
    finally:
        rt.close()


def test_flows_applied_from_a_stream_partition_reach_the_fraud_detectors(
        tmp_path: Path) -> None:
    """The JetStream path (a batch applied exactly once by BatchApplier) hands the
    fraud detectors one flow event per SIM too: a suspended SIM's flows alert."""
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        address, iccid, imsi, _ = provision(rt)
        sink: MemorySink[Alert] = MemorySink()
        rt.detect.add_sink(sink)
        rt.subscriber.inventory.transition(iccid, SimState.SUSPENDED, actor="test")
        applier = BatchApplier(rt.db, rt.policy, clock=rt.clock, stream="flows-test",
                               partitions=[0], detection=rt.detect)
        flow = FlowRecord(1_000.0, 1_001.0, address, "198.51.100.4", 40000, 443, 6, 3, 900,
                          imsi=imsi_digits(imsi.value))
        result = applier.apply(0, 1, FlowBatch(1, 0, [(flow, True)]))
        assert result.applied
        assert [(imsi.value, "used_while_suspended")] == [
            (a.imsi, a.evidence["feature"]) for a in sink.alerts if a.kind == "usage-fraud"]
        assert 1 == len(rt.detect.fraud._usage)  # the destinations started its baseline
    finally:
        rt.close()
