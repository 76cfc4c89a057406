"""The live detection service: a :class:`Detector` wired to alert sinks.

The flow pipeline (:mod:`simtrust.flows`) hands it flow records and attach
events, the protocol listeners per-SIM events (:class:`SimEvent`: S6a AIR,
AUTS re-syncs, ULR) for the fraud detectors (:class:`FraudDetector`);
every alert goes to the sinks the composition root passes (the audit
log and the MQTT broker, :mod:`simtrust.alerts`). A sink that fails (broker
down) is counted and logged, never raised into the data path, so detection
keeps running while delivery is degraded.

Across processes (``simtrust serve``'s API workers): a worker's service
*forwards* its per-SIM events to the store's shared event stream
(:meth:`DetectionService.forward_to`) and the serving process *follows* it
(:meth:`DetectionService.follow`), so one set of fraud detectors sees the
events of every process (:mod:`._eventlog`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence

from simtrust.alerts import AlertSink
from simtrust.detect._baseline import Baseline
from simtrust.detect._engine import Detector, Thresholds
from simtrust.detect._eventlog import EventFollower, SimEventLog
from simtrust.detect._events import LOCATION, SessionRow, session_event
from simtrust.detect._fraud import FraudDetector, SimEvent
from simtrust.detect._model import Alert, AttachEvent, DeviceRef
from simtrust.domain import FlowRecord, ImsiDigits
from simtrust.errors import SimtrustError

__all__ = ["DetectionService"]

_log = logging.getLogger("simtrust.detect")


class DetectionService:
    """Detector + sinks. ``observe`` is the per-record entry point of the live path."""

    def __init__(
        self,
        sinks: Sequence[AlertSink[Alert]],
        subscribers: Mapping[str, DeviceRef] | None = None,
        baselines: Iterable[Baseline] = (),
        thresholds: Thresholds | None = None,
    ) -> None:
        self.detector = Detector(subscribers, baselines, thresholds)
        self.fraud = FraudDetector()
        # listeners call from their own threads; the fraud state is one per SIM
        self._fraud_lock = threading.Lock()
        self.sinks = list(sinks)
        self.delivered = 0
        self.failed = 0
        self._forward: SimEventLog | None = None
        self.forwarded = 0
        self.forward_failed = 0

    def __repr__(self) -> str:
        return f"DetectionService(sinks={len(self.sinks)}, delivered={self.delivered})"

    def add_sink(self, sink: AlertSink[Alert]) -> None:
        """Deliver later alerts to ``sink`` too (a service built after this one)."""
        self.sinks.append(sink)

    def deliver(self, alerts: list[Alert]) -> list[Alert]:
        """Send alerts raised elsewhere (shared fraud intelligence) through the same sinks."""
        return self._emit(alerts)

    def _emit(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            for sink in self.sinks:
                try:
                    sink.send(alert)
                    self.delivered += 1
                except SimtrustError as exc:
                    self.failed += 1
                    _log.warning("alert delivery to %r failed: %s", sink, exc.detail)
        return alerts

    def observe(self, flow: FlowRecord) -> list[Alert]:
        alerts = self.detector.observe(flow)
        return self._emit(alerts) if alerts else alerts

    def observe_many(self, flows: Iterable[FlowRecord]) -> list[Alert]:
        out: list[Alert] = []
        observe = self.detector.observe
        for f in flows:
            alerts = observe(f)
            if alerts:
                out += self._emit(alerts)
        return out

    def observe_attach(self, event: AttachEvent) -> list[Alert]:
        return self._emit(self.detector.observe_attach(event))

    def forward_to(self, log: SimEventLog) -> None:
        """Hand per-SIM events to the process following ``log`` instead of detecting here.

        An API worker calls this: its own fraud detectors would see only its share
        of the traffic. A store failure is counted and logged, never raised into
        the interface that reported the event.
        """
        self._forward = log

    def follow(self, log: SimEventLog, interval: float = 0.2) -> EventFollower:
        """Put the events other processes forward through this process's detectors."""
        return EventFollower(log, self._observe_here, interval).start()

    def observe_sim(self, event: SimEvent) -> list[Alert]:
        """One per-SIM event from any interface through the fraud detectors.

        Forwarding (:meth:`forward_to`), the event is stored for the serving
        process and no alert is raised here.
        """
        forward = self._forward
        if forward is None:
            return self._observe_here(event)
        try:
            forward.append(event)
            self.forwarded += 1
        except SimtrustError as exc:
            self.forward_failed += 1
            _log.warning("SIM event not forwarded: %s", exc.detail)
        return []

    def observe_sim_burst(self, events: Sequence[SimEvent]) -> list[Alert]:
        """Events an interface reported together (a burst of accounting records), each
        as :meth:`observe_sim` would take it, in order, in one call: the detectors'
        lock is taken once (forwarding, each goes to the log as there)."""
        forward = self._forward
        if forward is None:
            out: list[Alert] = []
            with self._fraud_lock:
                observe = self.fraud.observe
                for event in events:
                    found = observe(event)
                    if found:
                        out += found
            return self._emit(out) if out else out
        for event in events:  # the log's own path: queued, or joining a transaction
            self.observe_sim(event)
        return []

    def observe_sessions(self, at: float, rows: Sequence[SessionRow]) -> list[Alert]:
        """A burst of session events seen at ``at`` (:meth:`FraudDetector.observe_sessions`:
        the alerts and state of :meth:`observe_sim_burst` over ``session_event(at, row)``
        of each row, without an event object per steady session); forwarding, each row
        is made its event and goes to the log as :meth:`observe_sim` sends it."""
        if self._forward is None:
            with self._fraud_lock:
                out = self.fraud.observe_sessions(at, rows)
            return self._emit(out) if out else out
        for row in rows:
            self.observe_sim(session_event(at, row))
        return []

    def observe_location(self, at: float, imsi: ImsiDigits, plmn: str, imei: str,
                         tenant: str) -> list[Alert]:
        """:meth:`observe_sim` of the ``location`` event of an attach decision
        (:meth:`FraudDetector.observe_location`: the same alerts and state, without an
        event object for a SIM seen again where it was); forwarding, the event is made
        and goes to the log as there."""
        if self._forward is None:
            with self._fraud_lock:
                out = self.fraud.observe_location(at, imsi, plmn, imei, tenant)
            return self._emit(out) if out else out
        return self.observe_sim(SimEvent(at, imsi, LOCATION, plmn=plmn, imei=imei,
                                         tenant=tenant))

    def observe_sims(self, events: Sequence[SimEvent]) -> list[Alert]:
        """Many per-SIM events (an import of usage records), in one store write when forwarding.

        Unlike :meth:`observe_sim` a store failure is raised: the caller (an
        import) answers it instead of losing records silently.
        """
        forward = self._forward
        if forward is None:
            out: list[Alert] = []
            for event in events:
                out += self._observe_here(event)
            return out
        forward.append_many(events)
        self.forwarded += len(events)
        return []

    def _observe_here(self, event: SimEvent) -> list[Alert]:
        with self._fraud_lock:
            alerts = self.fraud.observe(event)
        return self._emit(alerts) if alerts else alerts

    def assign(self, address: str, ref: DeviceRef) -> None:
        self.detector.assign(address, ref)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

