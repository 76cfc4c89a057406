"""The policy engine: address → SIM → device context → compiled policy → actions.

Two entry points share one :class:`~simtrust.policy._evaluate.PolicySet`:
:meth:`PolicyEngine.decide` answers an inline gateway before a flow starts
(counting flow starts against rate caps), and :meth:`PolicyEngine.ingest`
takes finished flow records from the collector or pcap metering (counting
bytes against volume caps). Violations go to the
:class:`~simtrust.policy._actions.ActionDispatcher`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, Protocol

from simtrust.domain import DeviceContext, FlowRecord, ImsiDigits
from simtrust.policy._actions import ActionDispatcher
from simtrust.policy._batch import AddressIndex, ColumnBatch, ingest_columns
from simtrust.policy._evaluate import Decision, PolicySet
from simtrust.policy._model import Policy

__all__ = ["AddressResolver", "DeviceDirectory", "FlowVerdict", "PolicyEngine", "StaticDirectory"]


class AddressResolver(Protocol):
    """``ip → IMSI`` of the SIM holding that address (AddressMap, the subscriber AddressBook)."""

    def lookup(self, address: str) -> ImsiDigits | None: ...


class DeviceDirectory(Protocol):
    """``IMSI → DeviceContext`` (tenant, APN, group, time zone, serving MCC)."""

    def context(self, imsi: ImsiDigits) -> DeviceContext | None: ...


class StaticDirectory:
    """An in-memory :class:`DeviceDirectory` (tests, offline analysis, benchmarks)."""

    def __init__(self, devices: Iterable[DeviceContext] = ()) -> None:
        self._devices = {d.imsi: d for d in devices}
        #: bumped by every change (the batch path keeps what it asked until it moves)
        self.version = 0

    def add(self, device: DeviceContext) -> None:
        self._devices[device.imsi] = device
        self.version += 1

    def context(self, imsi: ImsiDigits) -> DeviceContext | None:
        return self._devices.get(imsi)

    def imsis(self) -> list[ImsiDigits]:
        return sorted(self._devices)


class FlowVerdict(NamedTuple):
    """An ingested flow, the SIM it belongs to, its direction and the decision."""

    flow: FlowRecord
    imsi: ImsiDigits
    uplink: bool
    decision: Decision


_UNKNOWN = Decision(False, (), None, "unknown-device")


class PolicyEngine:
    """Decides and enforces; thread-safe for concurrent :meth:`decide` calls."""

    def __init__(self, policies: PolicySet, addresses: AddressResolver,
                 directory: DeviceDirectory, dispatcher: ActionDispatcher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.policies = policies
        self.addresses = addresses
        self.directory = directory
        self.dispatcher = dispatcher
        self.clock = clock
        self.removed: set[str] = set()
        self.unmapped = 0
        self._lock = threading.Lock()
        self._index = AddressIndex()
        self._caps = (-1, True)  # (policy generation, any volume cap installed)
        if dispatcher is not None:
            dispatcher.on_remove = self.removed.add

    def install(self, policy: Policy) -> None:
        """Take a new policy version into effect (hook for ``PolicyStore.on_change``)."""
        with self._lock:
            self.policies.put(policy)

    def decide(self, *, dst_addr: str, dst_port: int, protocol: int,
               src_addr: str | None = None, imsi: ImsiDigits | None = None, src_port: int = 0,
               at: float | None = None) -> Decision:
        """May this flow start? The device is named by ``imsi`` or by its address."""
        now = self.clock() if at is None else at
        if imsi is None:
            if src_addr is None:
                return _UNKNOWN
            imsi = self.addresses.lookup(src_addr)
            if imsi is None:
                return _UNKNOWN
        if imsi in self.removed:
            return Decision(False, (), imsi, "removed")
        device = self.directory.context(imsi)
        if device is None:
            return Decision(False, (), imsi, "unknown-device")
        if not device.active:
            return Decision(False, (), imsi, "sim-inactive")
        flow = FlowRecord(now, now, src_addr or "", dst_addr, src_port, dst_port, protocol, 0, 0)
        with self._lock:
            decision = self.policies.evaluate(flow, device, at=now, count_start=True)
        if decision.violations and self.dispatcher is not None:
            self.dispatcher.submit(decision, device.tenant_id, _flow_dict(flow), now)
        return decision

    def ingest(self, flows: Iterable[FlowRecord]) -> list[FlowVerdict]:
        """Map finished flows to SIMs, count them, act on violations.

        A flow whose source is a SIM's address is uplink (the device is the
        client); one whose destination is, downlink — its peer is then checked
        against the device's allowed destinations from the other side.
        """
        out: list[FlowVerdict] = []
        lookup = self.addresses.lookup
        context = self.directory.context
        evaluate = self.policies.evaluate
        dispatcher = self.dispatcher
        removed = self.removed
        verdict = tuple.__new__  # FlowVerdict without its keyword-handling __new__
        with self._lock:
            for flow in flows:
                imsi = lookup(flow.src_addr)
                uplink = imsi is not None
                if imsi is None:
                    imsi = lookup(flow.dst_addr)
                    if imsi is None:
                        self.unmapped += 1
                        continue
                device = context(imsi)
                if device is None:
                    self.unmapped += 1
                    continue
                view = flow if uplink else FlowRecord(
                    flow.start, flow.end, flow.dst_addr, flow.src_addr, flow.dst_port,
                    flow.src_port, flow.protocol, flow.packets, flow.octets, flow.tcp_flags,
                    flow.exporter)
                decision = evaluate(view, device, count_start=uplink, count_bytes=True)
                if imsi in removed:
                    decision = Decision(False, decision.violations, imsi, "removed")
                elif not device.active:
                    decision = Decision(False, decision.violations, imsi, "sim-inactive")
                if decision.violations and dispatcher is not None:
                    dispatcher.submit(decision, device.tenant_id, _flow_dict(flow), flow.start)
                out.append(verdict(FlowVerdict, (flow, imsi, uplink, decision)))
        return out

    def ingest_columns(self, columns: ColumnBatch) -> list[FlowVerdict]:
        """:meth:`ingest` for a batch in columns, without one object per record.

        Counters, violations and dispatcher submissions are those :meth:`ingest`
        gives for ``columns.records()``; the verdicts returned are only those that
        are not a plain allow (violations, a removed or inactive SIM), in flow order.
        """
        verdicts: list[FlowVerdict] = ingest_columns(self, columns, self._index, FlowVerdict)
        return verdicts

    def meter(self, imsi: ImsiDigits, octets: int, *, at: float | None = None) -> Decision:
        """Count ``octets`` a gateway reported for ``imsi`` (RADIUS accounting, RFC 2866)
        against its volume caps only, and act on a cap crossed.

        Destination, time and rate rules judge flows, not byte counts, so they are
        not evaluated here.
        """
        now = self.clock() if at is None else at
        device = self.directory.context(imsi)
        if device is None:
            return Decision(False, (), imsi, "unknown-device")
        flow = FlowRecord(now, now, "", "", 0, 0, 0, 0, max(0, int(octets)))
        with self._lock:
            decision = self.policies.meter(flow, device, at=now)
        if decision.violations and self.dispatcher is not None:
            self.dispatcher.submit(decision, device.tenant_id,
                                   {"source": "accounting", "octets": int(octets)}, now)
        return decision

    def meter_many(self, usage: Sequence[tuple[ImsiDigits, int]], *, at: float | None = None
                   ) -> None:
        """:meth:`meter` of each (IMSI, octets) in order, as one call (a burst of accounting
        records), acting on each cap crossed as :meth:`meter` does; the decisions are not
        returned. No installed policy with a volume cap: nothing to count, no lookups. Else
        each SIM's device context is looked up once, before anything is counted (a failed
        lookup counts nothing), and the counters move under one lock."""
        now = self.clock() if at is None else at
        with self._lock:
            if not self._volume_caps():
                return
        context = self.directory.context
        devices = {imsi: context(imsi) for imsi in dict.fromkeys(i for i, _o in usage)}
        crossed: list[tuple[Decision, str, int]] = []
        meter = self.policies.meter
        with self._lock:
            for imsi, octets in usage:
                device = devices[imsi]
                if device is not None:
                    flow = FlowRecord(now, now, "", "", 0, 0, 0, 0, max(0, int(octets)))
                    decision = meter(flow, device, at=now)
                    if decision.violations:
                        crossed.append((decision, device.tenant_id, int(octets)))
        if self.dispatcher is not None:
            for decision, tenant_id, octets in crossed:
                self.dispatcher.submit(decision, tenant_id,
                                       {"source": "accounting", "octets": octets}, now)

    def _volume_caps(self) -> bool:
        """Has any installed policy a volume cap? (kept per policy generation; under the
        lock)"""
        generation = self.policies.generation
        if self._caps[0] != generation:
            self._caps = (generation, any(p.rules_of("volume")
                                          for p in self.policies.policies()))
        return self._caps[1]

    def restore(self, imsi: ImsiDigits) -> None:
        """Lift a ``remove`` in the engine (after the SIM was reactivated)."""
        self.removed.discard(imsi)


def _flow_dict(flow: FlowRecord) -> dict[str, object]:
    return {
        "src": flow.src_addr, "dst": flow.dst_addr, "sport": flow.src_port,
        "dport": flow.dst_port, "proto": flow.protocol, "packets": flow.packets,
        "octets": flow.octets, "start": flow.start, "end": flow.end,
    }
