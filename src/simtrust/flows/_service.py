"""The flow pipeline of one process: flows in, policy verdicts and detection alerts out.

:class:`FlowService` is built by the composition root with the policy
service, the detection service and the store it persists partition state in.
It drives both consumers through their public surfaces only: the policy
engine's ``ingest`` (address → SIM mapping, evaluation, audited actions) and
detection's ``observe``/``assign``, and one ``flow`` :class:`SimEvent` per SIM
and batch for the fraud detectors (``observe_sim``), naming the distinct
destination prefixes the SIM's flows reached (at most ``MAX_DESTINATIONS``;
the usage-fraud destination baseline) and how many of them looked like voice
(SIP, bidirectional RTP-like media: :class:`~simtrust.detect.VoiceTally`, the
phone-like-use detector). The UDP collector
(:class:`~simtrust.flows.FlowCollector`) or the JetStream consumer
(:class:`~simtrust.flows.FlowConsumer`) feeds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from simtrust.detect import (
    MAX_DESTINATIONS,
    Alert,
    DetectionService,
    DeviceRef,
    SimEvent,
    VoiceTally,
    prefix_of,
)
from simtrust.domain import FlowRecord, imsi_digits
from simtrust.flows._nats import FlowPublisher, FlowStreamSettings
from simtrust.flows._nats_apply import BatchApplier
from simtrust.policy import FlowVerdict, PolicyService
from simtrust.store import Database

__all__ = ["FlowResult", "FlowService"]


@dataclass(slots=True)
class FlowResult:
    """What one batch of flows caused: policy verdicts (mapped flows) and detection alerts."""

    verdicts: list[FlowVerdict]
    alerts: list[Alert]


class FlowService:
    """Policy evaluation and detection over the flows of one process."""

    def __init__(self, db: Database, policy: PolicyService, detection: DetectionService, *,
                 nats_url: str, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.policy = policy
        self.detection = detection
        self.nats_url = nats_url
        self.clock = clock
        self._assigned: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"FlowService(policy={self.policy.engine!r}, detection={self.detection!r})"

    def ingest(self, flows: Sequence[FlowRecord], *, detect: bool = True) -> FlowResult:
        """Evaluate ``flows`` against the stored policies, then run detection on them.

        Detection learns which SIM holds an address from the policy engine's
        mapping, so both see the same device behind a flow.
        """
        verdicts = self.policy.engine.ingest(flows)
        alerts: list[Alert] = []
        if detect:
            seen: dict[str, float] = {}
            reached: dict[str, set[str]] = {}
            voice = VoiceTally()
            for verdict in verdicts:
                self._assign(verdict)
                flow = verdict.flow
                end = flow.end
                if seen.get(verdict.imsi, -1.0) < end:
                    seen[verdict.imsi] = end
                prefixes = reached.setdefault(verdict.imsi, set())
                if len(prefixes) < MAX_DESTINATIONS:
                    prefixes.add(prefix_of(flow.dst_addr if verdict.uplink else flow.src_addr))
                voice.add(verdict.imsi, flow, verdict.uplink)
            alerts = self.detection.observe_many(flows)
            # one flow-summary event per SIM and batch for the fraud detectors
            for imsi, at in seen.items():
                alerts += self.detection.observe_sim(SimEvent(
                    at, imsi_digits(imsi), "flow", destinations=tuple(sorted(reached[imsi])),
                    voice_flows=voice.count(imsi)))
        return FlowResult(verdicts, alerts)

    def _assign(self, verdict: FlowVerdict) -> None:
        flow = verdict.flow
        address = flow.src_addr if verdict.uplink else flow.dst_addr
        if self._assigned.get(address) == verdict.imsi:
            return
        ctx = self.policy.engine.directory.context(verdict.imsi)
        ref = DeviceRef(verdict.imsi, ctx.group if ctx else "", ctx.tenant_id if ctx else "")
        self.detection.assign(address, ref)
        if len(self._assigned) > 1_000_000:
            self._assigned.clear()
        self._assigned[address] = verdict.imsi

    def applier(self, *, stream: str, partitions: Iterable[int],
                detect: bool = True) -> BatchApplier:
        """An exactly-once applier of some partitions of a JetStream flow stream."""
        return BatchApplier(self.db, self.policy, stream=stream, partitions=partitions,
                            detection=self.detection if detect else None, clock=self.clock)

    def publisher(self, *, partitions: int, settings: FlowStreamSettings | None = None,
                  batch_records: int = 512) -> FlowPublisher:
        """A publisher of SIM-mapped flow batches (addresses resolved by the policy engine)."""
        return FlowPublisher(self.nats_url, partitions=partitions, settings=settings,
                             resolver=self.policy.engine.addresses, batch_records=batch_records)

    def flush(self) -> None:
        """Wait until the policy actions queued so far are carried out."""
        self.policy.dispatcher.flush()
