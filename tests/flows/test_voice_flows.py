"""Voice-like flows reach the fraud detectors: both flow paths count a SIM's SIP flows and
its bidirectional RTP-like flows in the batch's flow summary; telemetry and one-way
streams count nothing."""

from __future__ import annotations

from pathlib import Path

from simtrust.domain import FlowRecord, imsi_digits
from simtrust.flows import BatchApplier, FlowBatch
from simtrust.runtime import Runtime
from tests.flows.test_fraud_flow_events import spy_fraud_events
from tests.policy.test_integration import provision

PEER = "198.51.100.4"


def _call(address: str, at: float) -> list[tuple[FlowRecord, bool]]:
    """A SIP exchange and 60 s of G.711 both ways, plus ordinary telemetry."""
    return [
        (FlowRecord(at, at + 2.0, address, PEER, 5060, 5060, 17, 6, 3600), True),
        (FlowRecord(at, at + 60.0, address, PEER, 16384, 30000, 17, 3000, 600_000), True),
        (FlowRecord(at, at + 60.0, PEER, address, 30000, 16384, 17, 3000, 600_000), False),
        (FlowRecord(at, at + 60.0, address, PEER, 40001, 443, 6, 20, 9000), True),
    ]


def test_the_collector_path_counts_voice_like_flows(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        address, _, imsi, _ = provision(rt)
        seen = spy_fraud_events(rt)
        rt.flows.ingest([f for f, _ in _call(address, 1_000.0)])
        assert [("flow", 2)] == [(e.kind, e.voice_flows) for e in seen]
        # a one-way stream (a camera's audio upload) is not a conversation
        one_way = [f for f, up in _call(address, 2_000.0) if up][1:]
        rt.flows.ingest(one_way)
        assert (imsi.value, 0) == (seen[-1].imsi, seen[-1].voice_flows)
    finally:
        rt.close()


def test_the_stream_path_counts_voice_like_flows(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        address, _, imsi, _ = provision(rt)
        seen = spy_fraud_events(rt)
        applier = BatchApplier(rt.db, rt.policy, clock=rt.clock, stream="flows-voice",
                               partitions=[0], detection=rt.detect)
        sim = imsi_digits(imsi.value)
        batch = [(f._replace(imsi=sim), up) for f, up in _call(address, 1_000.0)]
        assert applier.apply(0, 1, FlowBatch(1, 0, batch)).applied
        assert [("flow", 2)] == [(e.kind, e.voice_flows) for e in seen]
    finally:
        rt.close()
