"""Meters on channels: registration by device certificate, the revocation gate, reading checks.

A channel is bound to a meter by the meter's device certificate
(``_devices.DeviceCredentials``, a W3C VC naming the SIM, the device and the
channel's author key); the certificate is verified again every
:data:`RECHECK` or on demand, and a revoked one stops the meter's frames.
Readings (``_meter.decode_reading``) are watched for a clone (another SIM or
device reporting the meter) and for a register that runs backwards; each
raises an alert that takes ``clean`` from the meter's recent data. A reading
of the channel's own meter is indexed by time (``stream_readings``), which is
what the energy market's settlement reads; readings stored before the index
existed are indexed once (:meth:`MeterRegistry.index_stored_readings`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import Conflict, DecodeError, NotFound, Rejected
from simtrust.store import Database
from simtrust.streams._common import MAX_LIST, cid
from simtrust.streams._devices import DeviceCredentials
from simtrust.streams._evidence import Evidence
from simtrust.streams._frame import FrameKind, decode_frame
from simtrust.streams._meter import MeterAlert, MeterWatch, decode_reading

__all__ = ["RECHECK", "MeterRegistry", "SimRef"]

#: How long a meter's device certificate verification holds before a reading re-checks it
#: (a revoked certificate stops the meter's readings within this time, or at once through
#: :meth:`MeterRegistry.verify_meter`).
RECHECK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SimRef:
    """A SIM as the streams service needs it (from the inventory, by ICCID)."""

    imsi: str
    tenant_id: str


class MeterRegistry:
    """The meters bound to channels (``StreamService.register_meter`` and friends)."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        clock: Callable[[], datetime],
        evidence: Evidence,
        *,
        devices: Callable[[], DeviceCredentials] | None = None,
        sims: Callable[[str], SimRef | None] | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._evidence = evidence
        self._devices = devices
        self._sims = sims or (lambda _iccid: None)

    def __repr__(self) -> str:
        return "MeterRegistry()"

    def _now(self) -> str:
        return self._clock().isoformat()

    def register_meter(self, tenant_id: str | None, channel_id: str, credential: object, *,
                       actor: str) -> dict[str, Any]:
        """Bind a channel to a meter by its device certificate (``_devices``)."""
        if self._devices is None:
            raise Rejected("unknown-issuer", "no device credential verifier is configured")
        binding = self._devices().verify(credential)
        channel = cid(channel_id)
        row = self._db.query_one("SELECT tenant_id, author FROM stream_channels WHERE id = ?",
                                 (channel,))
        if row is None or row[0] != tenant_id:
            raise NotFound(f"no channel {channel_id}")
        if bytes(row[1]) not in binding.keys:
            raise Rejected("key-not-in-sim", "the channel's author key is not a key of the SIM "
                           f"DID {binding.sim_did}")
        sim = self._sims(binding.iccid)
        if sim is None or sim.tenant_id != tenant_id:
            raise Rejected("unknown-sim", f"SIM {binding.iccid} is not in this tenant's inventory")
        now = self._now()
        with self._db.transaction(durable=True):
            if self._db.query_one("SELECT 1 FROM stream_meters WHERE meter = ?",
                                  (binding.meter,)):
                raise Conflict(f"meter {binding.meter} is registered already")
            self._db.execute(
                "UPDATE stream_channels SET iccid = ?, imsi = ?, imei = ? WHERE id = ?",
                (binding.iccid, sim.imsi, binding.imei, channel))
            self._db.execute(
                "INSERT INTO stream_meters (meter, tenant_id, channel, sim_did, iccid, imsi, imei,"
                " credential, issuer, status, registered_at, sims, devices, verified_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                (binding.meter, tenant_id, channel, binding.sim_did, binding.iccid, sim.imsi,
                 binding.imei, json.dumps(binding.credential, sort_keys=True), binding.issuer,
                 now, json.dumps([sim.imsi]), json.dumps([binding.imei]), now))
            self._audit.append(actor=actor, action="stream.meter.register",
                               subject=f"meter:{binding.meter}", outcome="success",
                               tenant_id=tenant_id,
                               details={"channel": channel, "iccid": binding.iccid,
                                        "issuer": binding.issuer})
        self._evidence.bound.add(sim.imsi)
        return self.meter(binding.meter)

    def verify_meter(self, meter: str, *, actor: str) -> dict[str, Any]:
        """Verify the meter's device certificate again now (revoked: the meter stops)."""
        row = self._db.query_one("SELECT channel FROM stream_meters WHERE meter = ?", (meter,))
        if row is None:
            raise NotFound(f"no meter {meter}")
        with contextlib.suppress(Rejected):  # a refusal is the new status, shown below
            self.gate(str(row[0]), force=True, actor=actor)
        return self.meter(meter)

    def gate(self, channel: str, *, force: bool = False, actor: str) -> None:
        """Refuse frames of a meter whose certificate is revoked (re-checked every RECHECK)."""
        row = self._db.query_one(
            "SELECT meter, credential, status, verified_at, tenant_id, imsi FROM stream_meters"
            " WHERE channel = ?", (channel,))
        if row is None:
            return
        meter, status = str(row[0]), str(row[2])
        now = self._clock()
        if status == "active" and not force and row[3] is not None and (
                now - datetime.fromisoformat(str(row[3])) < RECHECK):
            return
        if status == "active" and self._devices is not None:
            try:
                self._devices().verify(json.loads(row[1]))
            except Rejected as exc:
                stamp = now.isoformat()
                with self._db.transaction(durable=True):
                    self._db.execute(
                        "UPDATE stream_meters SET status = 'revoked', verified_at = ?"
                        " WHERE meter = ?", (stamp, meter))
                    self._evidence.store_alert(
                        row[4], row[5], meter, "meter", "certificate-revoked",
                        f"meter {meter}'s device certificate no longer verifies ({exc.reason})",
                        {"reason": exc.reason}, stamp)
                    self._evidence.reannotate(meters=[meter], kind="clean", ok=False,
                                     evidence=f"device certificate refused: {exc.reason}",
                                     now=stamp)
                status = "revoked"
            else:
                self._db.execute("UPDATE stream_meters SET verified_at = ? WHERE meter = ?",
                                 (now.isoformat(), meter))
        if status != "active":
            raise Rejected("revoked", f"meter {meter}'s device certificate is revoked",
                           verdict="revoked")

    def meter(self, meter: str) -> dict[str, Any]:
        row = self._db.query_one(
            "SELECT meter, tenant_id, channel, sim_did, iccid, imsi, imei, issuer, status,"
            " registered_at, register_wh, at, verified_at FROM stream_meters WHERE meter = ?",
            (meter,))
        if row is None:
            raise NotFound(f"no meter {meter}")
        return self._json(row)

    def _json(self, row: Sequence[Any]) -> dict[str, Any]:
        return {
            "meter": row[0], "tenant_id": row[1], "channel": row[2], "sim_did": row[3],
            "iccid": row[4], "imsi": row[5], "imei": row[6], "issuer": row[7],
            "status": row[8], "registered_at": row[9], "register_wh": row[10], "at": row[11],
            "verified_at": row[12],
            "alerts": self._evidence.alerts(meter=str(row[0]), open_only=True),
        }

    def meters(self, tenant_id: str | None, limit: int = 100) -> list[dict[str, Any]]:
        sql = ("SELECT meter, tenant_id, channel, sim_did, iccid, imsi, imei, issuer, status,"
               " registered_at, register_wh, at, verified_at FROM stream_meters")
        params: list[Any] = []
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params.append(tenant_id)
        rows = self._db.query(sql + " ORDER BY registered_at, meter LIMIT ?",
                              (*params, min(limit, MAX_LIST)))
        return [self._json(r) for r in rows]

    def reading(self, channel: str, tenant_id: str | None, imsi: str, imei: str,
                       payload: bytes, now: str, *, datum_id: str | None = None,
                       ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Watch a meter's reading: clones (another SIM or device) and rollbacks alert."""
        mine = self._db.query_one("SELECT meter FROM stream_meters WHERE channel = ?",
                                  (channel,))
        if mine is None:
            return None, []
        try:
            reading = decode_reading(payload)
        except DecodeError:
            return None, []
        if datum_id is not None and reading.meter == mine[0]:
            self._index(datum_id, reading.meter, reading.at, reading.register_wh)
        row = self._db.query_one(
            "SELECT register_wh, at, sims, devices, status FROM stream_meters WHERE meter = ?",
            (reading.meter,))
        raised: list[MeterAlert] = []
        if row is None:
            raised.append(MeterAlert(
                str(mine[0]), "unregistered-meter",
                f"channel of meter {mine[0]} sent a reading of unregistered meter "
                f"{reading.meter}", {"reported": reading.meter}))
        else:
            # The device is where the SIM is attached now (attach events), if known.
            seen = self._db.query_one("SELECT imei FROM stream_sims WHERE imsi = ?", (imsi,))
            device = str(seen[0]) if seen is not None and seen[0] is not None else imei
            watch = MeterWatch()
            watch.load(reading.meter, int(row[0] or 0), int(row[1] or 0),
                       json.loads(row[2]), json.loads(row[3]))
            raised = watch.observe(reading, imsi, device)
            snapshot = watch.snapshot(reading.meter)
            assert snapshot is not None
            self._db.execute(
                "UPDATE stream_meters SET register_wh = ?, at = ?, sims = ?, devices = ?"
                " WHERE meter = ?",
                (snapshot[0], snapshot[1], json.dumps(snapshot[2]), json.dumps(snapshot[3]),
                 reading.meter))
        alerts = []
        for alert in raised:
            alerts.append(self._evidence.store_alert(tenant_id, imsi, alert.meter, "meter",
                                                     alert.kind, alert.explanation,
                                                     alert.evidence, now))
        if raised:
            self._evidence.reannotate(channel_imsis=[imsi], meters=[a.meter for a in raised],
                             kind="clean", ok=False,
                             evidence="; ".join(a.explanation for a in raised), now=now)
        return {"meter": reading.meter, "register_wh": reading.register_wh,
                "at": reading.at}, alerts

    def _index(self, datum_id: str, meter: str, at: int, register_wh: int) -> None:
        self._db.execute(
            "INSERT INTO stream_readings (datum_id, meter, at, register_wh) VALUES (?, ?, ?, ?)",
            (datum_id, meter, at, register_wh))

    def index_stored_readings(self) -> int:
        """Index, once, the readings stored before the index existed; returns how many."""
        if self._db.query_one("SELECT 1 FROM stream_backfills WHERE name = 'readings'"):
            return 0
        count = 0
        with self._db.transaction(durable=True):
            if self._db.query_one("SELECT 1 FROM stream_backfills WHERE name = 'readings'"):
                return 0
            indexed = {str(r[0]) for r in self._db.query("SELECT datum_id FROM stream_readings")}
            for meter, channel in self._db.query("SELECT meter, channel FROM stream_meters"):
                for message_id, raw in self._db.query(
                        "SELECT f.message_id, f.frame FROM stream_frames f JOIN stream_data d"
                        " ON d.datum_id = f.message_id WHERE f.channel = ? AND f.kind = ?"
                        " ORDER BY f.pos", (channel, int(FrameKind.DATA))):
                    if str(message_id) in indexed:
                        continue
                    try:
                        frame = decode_frame(bytes(raw))
                        if frame.encrypted or frame.key_epoch:
                            continue  # a private channel's reading: not readable here
                        reading = decode_reading(frame.payload)
                    except DecodeError:
                        continue
                    if reading.meter == meter:
                        self._index(str(message_id), reading.meter, reading.at,
                                    reading.register_wh)
                        count += 1
            self._db.execute("INSERT INTO stream_backfills (name, done_at) VALUES ('readings', ?)",
                             (self._clock().isoformat(),))
        return count
