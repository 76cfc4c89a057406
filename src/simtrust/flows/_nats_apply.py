"""Applying a flow batch from one JetStream partition exactly once: policy, detection, store.

A batch is identified by (stream, partition, stream sequence). Its sequence is
recorded in ``policy_nats_applied`` in the same store transaction as the batch's
effects that are kept in the store — the per-device byte counters behind volume
caps (``policy_nats_usage``), the per-partition totals and the detection alerts'
audit records — so a batch redelivered after a crash (JetStream at-least-once
delivery, nats-server docs "Consumers": AckExplicit, AckWait) is recognised and
skipped instead of counted twice, in whatever order redeliveries arrive.
Sequences at or below the consumer's ack floor can never come again and are
forgotten. See ``docs/decisions/policy-nats-exactly-once.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from simtrust.detect import MAX_DESTINATIONS, DeviceRef, SimEvent, VoiceTally, prefix_of
from simtrust.domain import FlowRecord, ImsiDigits, imsi_digits
from simtrust.errors import InvalidInput
from simtrust.flows._nats_codec import FlowBatch
from simtrust.policy import AddressResolver, FlowVerdict, PolicyEngine, PolicyService
from simtrust.store import Database

__all__ = ["ApplyResult", "BatchApplier", "Detection"]

_PERIODS = ("hour", "day", "month")


class Detection(Protocol):
    """What the applier needs of :class:`simtrust.detect.DetectionService`."""

    def observe(self, flow: FlowRecord) -> list[Any]: ...

    def assign(self, address: str, ref: DeviceRef) -> None: ...


class _BatchAddresses:
    """Resolver that knows the producer's SIM mapping of the current batch first."""

    __slots__ = ("current", "fallback")

    def __init__(self, fallback: AddressResolver | None) -> None:
        self.current: dict[str, ImsiDigits] = {}
        self.fallback = fallback

    def lookup(self, address: str) -> ImsiDigits | None:
        found = self.current.get(address)
        if found is None and self.fallback is not None:
            return self.fallback.lookup(address)
        return found


class _AlreadyApplied(Exception):
    """The sequence is recorded already (another process applied it)."""


@dataclass(slots=True)
class ApplyResult:
    """What one batch did: ``applied`` is False for a duplicate that was skipped."""

    applied: bool
    records: int = 0
    verdicts: list[FlowVerdict] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)


class BatchApplier:
    """Applies batches of partitions of one stream to a policy service and detection.

    The policy engine shares the service's compiled policies, device directory,
    action dispatcher and removed-SIM set; its address resolver answers from the
    SIM mapping the producer shipped with each batch, then from the service's own.
    ``db`` holds the applied sequences and counters (the store the policy
    schema's ``policy_nats_*`` tables live in). Not thread-safe: one consumer
    loop drives it.
    """

    def __init__(self, db: Database, policy: PolicyService, *, stream: str,
                 partitions: Iterable[int], detection: Detection | None = None,
                 clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock
        self.stream = stream
        self.partitions = sorted(set(partitions))
        self.service = policy
        base = self.service.engine
        self.addresses = _BatchAddresses(base.addresses)
        self.engine = PolicyEngine(base.policies, self.addresses, base.directory,
                                   self.service.dispatcher, clock=base.clock)
        # one removed set and one on_remove callback for the runtime, not one per engine
        self.engine.removed = base.removed
        self.service.dispatcher.on_remove = base.removed.add
        self.detection = detection
        self._assigned: dict[str, str] = {}
        self.duplicates = 0
        self.batches = 0
        self.records = 0
        self._floor: dict[int, int] = {}
        self._applied = self._load()

    def __repr__(self) -> str:
        return f"BatchApplier(stream={self.stream!r}, partitions={self.partitions})"

    # -- state ------------------------------------------------------------------------

    def _load(self) -> dict[int, set[int]]:
        db = self.db
        now = self.clock().isoformat()
        last: dict[int, int] = {}
        applied: dict[int, set[int]] = {p: set() for p in self.partitions}
        with db.transaction():
            for part in self.partitions:
                row = db.query_one("SELECT floor_seq FROM policy_nats_offsets"
                                   " WHERE stream = ? AND part = ?", (self.stream, part))
                if row is None:
                    db.execute("INSERT INTO policy_nats_offsets (stream, part, last_seq,"
                               " floor_seq, batches, records, octets, updated_at)"
                               " VALUES (?, ?, 0, 0, 0, 0, 0, ?)",
                               (self.stream, part, now))
                    last[part] = 0
                else:
                    last[part] = int(row[0])
            marks = ",".join("?" for _ in self.partitions)
            for part, seq in db.query("SELECT part, seq FROM policy_nats_applied"
                                      f" WHERE stream = ? AND part IN ({marks})",
                                      (self.stream, *self.partitions)):
                applied[int(part)].add(int(seq))
            rows = db.query("SELECT imsi, period, bucket, octets FROM policy_nats_usage"
                            f" WHERE stream = ? AND part IN ({marks})",
                            (self.stream, *self.partitions)) if self.partitions else []
        volume = self._volume()
        for imsi, period, bucket, octets in rows:
            volume[(imsi_digits(str(imsi)), str(period))] = (int(bucket), int(octets))
        self._floor = last
        return applied

    def _volume(self) -> dict[tuple[ImsiDigits, str], tuple[int, int]]:
        return self.engine.policies.usage.volume

    def _reload_usage(self, imsis: Iterable[ImsiDigits]) -> None:
        """Put the in-memory counters of ``imsis`` back to what the store holds."""
        volume = self._volume()
        for imsi in imsis:
            for period in _PERIODS:
                volume.pop((imsi, period), None)
            for period, bucket, octets in self.db.query(
                    "SELECT period, bucket, octets FROM policy_nats_usage WHERE imsi = ?",
                    (imsi,)):
                volume[(imsi, str(period))] = (int(bucket), int(octets))

    def is_applied(self, partition: int, seq: int) -> bool:
        """Whether the batch at stream sequence ``seq`` of ``partition`` was applied."""
        return seq <= self._floor.get(partition, 0) or seq in self._applied.get(partition, ())

    def forget_below(self, partition: int, ack_floor: int) -> int:
        """Drop remembered sequences ≤ ``ack_floor`` (acknowledged: never redelivered)."""
        if ack_floor <= self._floor.get(partition, 0):
            return 0
        with self.db.transaction():
            self.db.execute("UPDATE policy_nats_offsets SET floor_seq = ? WHERE stream = ?"
                               " AND part = ? AND floor_seq < ?",
                               (ack_floor, self.stream, partition, ack_floor))
            n = self.db.execute("DELETE FROM policy_nats_applied WHERE stream = ? AND part = ?"
                                   " AND seq <= ?", (self.stream, partition, ack_floor))
        self._floor[partition] = ack_floor
        self._applied[partition] = {s for s in self._applied[partition] if s > ack_floor}
        return n

    def totals(self) -> dict[int, dict[str, int]]:
        """Per partition: last sequence, batches, records and octets applied (from the store)."""
        out: dict[int, dict[str, int]] = {}
        for part, seq, batches, records, octets in self.db.query(
                "SELECT part, last_seq, batches, records, octets FROM policy_nats_offsets"
                " WHERE stream = ? ORDER BY part", (self.stream,)):
            out[int(part)] = {"last_seq": int(seq), "batches": int(batches),
                              "records": int(records), "octets": int(octets)}
        return out

    # -- applying ---------------------------------------------------------------------

    def apply(self, partition: int, seq: int, batch: FlowBatch) -> ApplyResult:
        """Apply ``batch`` (stream sequence ``seq``) once; a sequence already applied is skipped.

        Policy runs first and its audit records are flushed; then detection, the
        byte counters and the batch's sequence commit in one transaction. A failure
        leaves the sequence unrecorded and the counters as stored, so the
        redelivered batch is applied as if for the first time.
        """
        if partition not in self._applied:
            raise InvalidInput(f"partition {partition} is not one of {self.partitions}",
                               field="partition")
        if self.is_applied(partition, seq):
            self.duplicates += 1
            return ApplyResult(False)
        current: dict[str, ImsiDigits] = {}
        reached: dict[str, set[str]] = {}
        voice = VoiceTally()
        records = []
        octets = 0
        for record, uplink in batch.flows:
            records.append(record)
            octets += record.octets
            if record.imsi is not None:
                current[record.src_addr if uplink else record.dst_addr] = record.imsi
                prefixes = reached.setdefault(record.imsi, set())
                if len(prefixes) < MAX_DESTINATIONS:
                    prefixes.add(prefix_of(record.dst_addr if uplink else record.src_addr))
                voice.add(record.imsi, record, uplink)
        self.addresses.current = current
        touched = set(current.values())  # what ingest may count, should it fail half-way
        try:
            verdicts = self.engine.ingest(records)
            touched.update(v.imsi for v in verdicts)
            self.service.dispatcher.flush()
            alerts = self._commit(partition, seq, len(records), octets, records, touched,
                                  reached, voice)
        except _AlreadyApplied:
            self._reload_usage(touched)
            self._applied[partition].add(seq)
            self.duplicates += 1
            return ApplyResult(False)
        except BaseException:
            self._reload_usage(touched)
            raise
        finally:
            self.addresses.current = {}
        self._applied[partition].add(seq)
        self.batches += 1
        self.records += len(records)
        return ApplyResult(True, len(records), verdicts, alerts)

    def _commit(self, partition: int, seq: int, count: int, octets: int,
                records: list[Any], touched: set[ImsiDigits],
                reached: dict[str, set[str]], voice: VoiceTally) -> list[Any]:
        db = self.db
        alerts: list[Any] = []
        with db.transaction():
            if db.query_one("SELECT 1 FROM policy_nats_applied WHERE stream = ? AND part = ?"
                            " AND seq = ?", (self.stream, partition, seq)) is not None:
                raise _AlreadyApplied(seq)  # another process of this partition applied it
            db.execute("INSERT INTO policy_nats_applied (stream, part, seq) VALUES (?, ?, ?)",
                       (self.stream, partition, seq))
            db.execute(
                "UPDATE policy_nats_offsets SET last_seq = CASE WHEN last_seq < ? THEN ?"
                " ELSE last_seq END, batches = batches + 1, records = records + ?,"
                " octets = octets + ?, updated_at = ? WHERE stream = ? AND part = ?",
                (seq, seq, count, octets, self.clock().isoformat(), self.stream, partition))
            if self.detection is not None:
                self._assign(self.detection)
                observe = self.detection.observe
                latest: dict[str, float] = {}
                for record in records:
                    found = observe(record)
                    if found:
                        alerts.extend(found)
                    if record.imsi is not None and latest.get(record.imsi, -1.0) < record.end:
                        latest[record.imsi] = record.end
                # one flow-summary event per SIM and batch for the fraud detectors
                observe_sim = getattr(self.detection, "observe_sim", None)
                if observe_sim is not None:
                    for imsi, at in latest.items():
                        alerts.extend(observe_sim(SimEvent(
                            at, imsi_digits(imsi), "flow",
                            destinations=tuple(sorted(reached.get(imsi, ()))),
                            voice_flows=voice.count(imsi))))
            volume = self._volume()
            rows = []
            for imsi in touched:
                for period in _PERIODS:
                    cur = volume.get((imsi, period))
                    if cur is not None:
                        rows.append((imsi, period, cur[0], cur[1], self.stream, partition))
            if rows:
                db.executemany(
                    "INSERT INTO policy_nats_usage (imsi, period, bucket, octets, stream, part)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (imsi, period) DO UPDATE SET"
                    " bucket = excluded.bucket, octets = excluded.octets,"
                    " stream = excluded.stream, part = excluded.part", rows)
        return alerts

    def _assign(self, detection: Detection) -> None:
        """Tell detection which SIM holds each address of the batch (its own map is empty)."""
        current = self.addresses.current
        for address, imsi in current.items():
            if self._assigned.get(address) == imsi:
                continue
            ctx = self.engine.directory.context(imsi)
            ref = DeviceRef(imsi, ctx.group if ctx else "", ctx.tenant_id if ctx else "")
            detection.assign(address, ref)
            self._assigned[address] = imsi
