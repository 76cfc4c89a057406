"""The streams service: stored channels, frames, provenance, meters and live annotations.

Channels are registered from their author's signed announce; frames are
published already signed (the platform holds no author key and never sees a
private channel's plaintext: it relays and checks signature and chain only).
An accepted frame is stored with its datum and annotations in one durable
transaction before :meth:`StreamService.publish` returns: acknowledged means
on disk. A restart rebuilds each channel's reader from its stored frames.

Annotations are signed by the service's own key (sealed at rest). At arrival a
data frame gets ``signature``, ``sim``, ``tls``, ``source`` and ``clean``;
anchoring adds ``anchored``. Events of the security services annotate the
recent data of the SIMs they concern (the latest annotation of a kind
decides, ``ConfidencePolicy.score``): attach decisions (``sim``: is the SIM
attached in the device its certificate names), tier-2 certificate issue and
revocation (``tls``), detection and SIM-swap alerts and the meters' own
cloned-meter and rollback alerts (``clean``). The composition root wires those
events in; nothing here imports a security service.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.errors import (
    Conflict,
    DecodeError,
    InvalidInput,
    InvalidSignature,
    NotFound,
    Rejected,
)
from simtrust.store import Database
from simtrust.streams._anchor import AnchorFn, BatchAnchorer
from simtrust.streams._devices import DeviceCredentials
from simtrust.streams._frame import FrameKind
from simtrust.streams._keys import SodiumSigner
from simtrust.streams._meter import MeterAlert, MeterWatch, decode_reading
from simtrust.streams._provenance import (
    ANNOTATION_KINDS,
    DEFAULT_WEIGHTS,
    Annotation,
    ConfidencePolicy,
    ProvenanceGraph,
    sign_annotation,
)
from simtrust.streams._reader import Delivery, Reader

__all__ = ["SimRef", "StreamService"]

#: How far back an event re-annotates a SIM's data, and at most how many data.
EVENT_WINDOW = timedelta(hours=1)
EVENT_LIMIT = 1000
#: How long a meter's device certificate verification holds before a reading re-checks it
#: (a revoked certificate stops the meter's readings within this time, or at once through
#: :meth:`StreamService.verify_meter`).
RECHECK = timedelta(minutes=5)
_MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class SimRef:
    """A SIM as the streams service needs it (from the inventory, by ICCID)."""

    imsi: str
    tenant_id: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _hex_id(value: str, what: str) -> bytes:
    if len(value) != 64:
        raise InvalidInput(f"{what} is 64 hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} is 64 hex digits") from exc


def _cid(channel_id: str) -> str:
    """A channel id as stored: 64 lower-case hex digits (InvalidInput otherwise)."""
    return _hex_id(channel_id, "a channel id").hex()


def _reject_error(delivery: Delivery) -> Exception:
    context = {"verdict": delivery.verdict}
    if delivery.verdict == "malformed":
        return DecodeError(f"malformed frame: {delivery.detail}", **context)
    if delivery.verdict == "forged":
        return InvalidSignature(f"forged frame: {delivery.detail or 'not the author'}", **context)
    if delivery.verdict == "unreadable":
        return Rejected("unreadable", "frame cannot be read", **context)
    message = delivery.message_id.hex() if delivery.message_id else "?"
    return Conflict(f"{delivery.verdict}: message {message} does not extend the channel",
                    **context)


class _Events:
    """The alert sink the composition root hands to detection and attach alerts."""

    name = "streams"

    def __init__(self, service: StreamService) -> None:
        self._service = service

    def __repr__(self) -> str:
        return "StreamAlertSink()"

    def send(self, alert: Any) -> None:
        self._service.on_alert(alert)

    def close(self) -> None:
        """Nothing to release."""


class StreamService:
    """Channels and their frames in the store; provenance, scores, meters, events."""

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        anchor: Callable[[], AnchorFn] | None = None,
        devices: Callable[[], DeviceCredentials] | None = None,
        sims: Callable[[str], SimRef | None] | None = None,
        bound_devices: Callable[[str], Sequence[str]] | None = None,
        tls_valid: Callable[[str], bool] | None = None,
        address_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self._anchor = anchor
        self._devices = devices
        self._sims = sims or (lambda _iccid: None)
        self._bound_devices = bound_devices or (lambda _iccid: ())
        self._tls_valid = tls_valid or (lambda _iccid: False)
        self._address_of = address_of or (lambda _imsi: None)
        self._lock = threading.RLock()
        self._readers: dict[str, Reader] = {}
        # One lock per channel: frames of a channel are checked in order, while
        # different channels publish side by side and share fsyncs (group commit).
        self._channel_locks: dict[str, threading.Lock] = {}
        self.annotator = self._load_annotator()
        self._bound = {str(r[0]) for r in db.query(
            "SELECT DISTINCT imsi FROM stream_channels WHERE imsi IS NOT NULL")}

    def __repr__(self) -> str:
        return f"StreamService(channels_cached={len(self._readers)})"

    def _now(self) -> str:
        return self._clock().isoformat()

    # -- the annotating key ------------------------------------------------------------

    def _load_annotator(self) -> SodiumSigner:
        aad = b"simtrust/streams/annotator"
        row = self._db.query_one("SELECT key_sealed FROM stream_keys WHERE id = 'annotator'")
        if row is None:
            raw = os.urandom(32)
            signer = SodiumSigner(raw)
            with self._db.transaction(durable=True):
                self._db.execute(
                    "INSERT INTO stream_keys (id, public, key_sealed, created_at)"
                    " VALUES ('annotator', ?, ?, ?)",
                    (signer.public_key, self._keyring.seal(raw, aad), self._now()))
            return signer
        return SodiumSigner(self._keyring.open(bytes(row[0]), aad))

    # -- channels ------------------------------------------------------------------------

    def open_channel(self, tenant_id: str | None, announce: bytes, *, label: str = "",
                     private: bool = False, actor: str) -> dict[str, Any]:
        """Register a channel from its author's signed announce."""
        try:
            reader = Reader(announce, relay=True)
        except InvalidSignature as exc:
            raise InvalidSignature("the announce is not signed by its author") from exc
        channel = reader.channel.hex()
        now = self._now()
        with self._lock, self._db.transaction(durable=True):
            if self._db.query_one("SELECT 1 FROM stream_channels WHERE id = ?", (channel,)):
                raise Conflict(f"channel {channel} exists already")
            self._db.execute(
                "INSERT INTO stream_channels (id, tenant_id, label, author, private, announce,"
                " next_pos, anchored_pos, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?)",
                (channel, tenant_id, label, reader.author, int(private), announce, now))
            self._db.execute(
                "INSERT INTO stream_frames (message_id, channel, pos, kind, branch, seq, verdict,"
                " frame, received_at) VALUES (?, ?, 0, 1, 0, 0, 'ok', ?, ?)",
                (reader.announce_id.hex(), channel, announce, now))
            self._audit.append(actor=actor, action="stream.channel.open",
                               subject=f"channel:{channel}", outcome="success",
                               tenant_id=tenant_id, details={"private": private})
            self._readers[channel] = reader
        return self.channel(channel)

    def channel(self, channel_id: str) -> dict[str, Any]:
        row = self._db.query_one(
            "SELECT id, tenant_id, label, author, private, next_pos, anchored_pos, iccid, imsi,"
            " imei, created_at FROM stream_channels WHERE id = ?", (_cid(channel_id),))
        if row is None:
            raise NotFound(f"no channel {channel_id}")
        return self._channel_json(row)

    def _channel_json(self, row: Sequence[Any]) -> dict[str, Any]:
        channel = str(row[0])
        rejects = {str(r[0]): int(r[1]) for r in self._db.query(
            "SELECT verdict, count FROM stream_rejects WHERE channel = ?", (channel,))}
        return {
            "id": channel, "tenant_id": row[1], "label": row[2],
            "author": bytes(row[3]).hex(), "private": bool(row[4]),
            "messages": int(row[5]), "anchored": int(row[6]),
            "iccid": row[7], "imsi": row[8], "imei": row[9], "created_at": row[10],
            "rejected": rejects,
        }

    def channels(self, tenant_id: str | None, limit: int = 100) -> list[dict[str, Any]]:
        sql = ("SELECT id, tenant_id, label, author, private, next_pos, anchored_pos, iccid,"
               " imsi, imei, created_at FROM stream_channels")
        params: list[Any] = []
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params.append(tenant_id)
        rows = self._db.query(sql + " ORDER BY created_at, id LIMIT ?",
                              (*params, min(limit, _MAX_LIST)))
        return [self._channel_json(r) for r in rows]

    def tenant_of(self, channel_id: str) -> str | None:
        row = self._db.query_one("SELECT tenant_id FROM stream_channels WHERE id = ?",
                                 (_cid(channel_id),))
        if row is None:
            raise NotFound(f"no channel {channel_id}")
        return None if row[0] is None else str(row[0])

    def _channel_lock(self, channel: str) -> threading.Lock:
        with self._lock:
            lock = self._channel_locks.get(channel)
            if lock is None:
                lock = self._channel_locks[channel] = threading.Lock()
            return lock

    def _reader(self, channel: str) -> Reader:
        reader = self._readers.get(channel)
        if reader is not None:
            return reader
        row = self._db.query_one("SELECT announce FROM stream_channels WHERE id = ?", (channel,))
        if row is None:
            raise NotFound(f"no channel {channel}")
        reader = Reader(bytes(row[0]), relay=True)
        for (frame,) in self._db.query(
                "SELECT frame FROM stream_frames WHERE channel = ? AND pos > 0 ORDER BY pos",
                (channel,)):
            reader.accept(bytes(frame))
        self._readers[channel] = reader
        return reader

    # -- publishing and reading --------------------------------------------------------------

    def publish(self, channel_id: str, frame: bytes, *, source: str | None = None,
                actor: str) -> dict[str, Any]:
        """Check one signed frame against the channel and store it durably.

        Returns the verdict, the message id and (for data) the datum's score and
        annotations. A frame that does not extend the channel is counted and
        audited, and raised: malformed (400), forged (400), replay or fork (409).
        """
        channel = _cid(channel_id)
        with self._channel_lock(channel):
            row = self._db.query_one(
                "SELECT tenant_id, iccid, imsi, imei FROM stream_channels WHERE id = ?",
                (channel,))
            if row is None:
                raise NotFound(f"no channel {channel_id}")
            tenant_id = None if row[0] is None else str(row[0])
            try:
                self._meter_gate(channel, actor=actor)
            except Rejected:
                self._count_reject(channel, tenant_id, Delivery("revoked"), actor)
                raise
            reader = self._reader(channel)
            delivery = reader.accept(frame)
            if not delivery.accepted:
                self._count_reject(channel, tenant_id, delivery, actor)
                raise _reject_error(delivery)
            assert delivery.frame is not None
            assert delivery.message_id is not None
            decoded, message_id = delivery.frame, delivery.message_id.hex()
            now = self._now()
            result: dict[str, Any] = {
                "channel": channel, "message_id": message_id, "verdict": delivery.verdict,
                "missing": list(delivery.missing), "kind": decoded.kind.name.lower(),
                "branch": decoded.branch, "seq": decoded.seq,
            }
            with self._db.transaction(durable=True):
                self._db.on_rollback(lambda: self._forget(channel))
                pos_row = self._db.query_one(
                    "SELECT next_pos FROM stream_channels WHERE id = ?", (channel,))
                assert pos_row is not None
                pos = int(pos_row[0])
                self._db.execute("UPDATE stream_channels SET next_pos = ? WHERE id = ?",
                                 (pos + 1, channel))
                self._db.execute(
                    "INSERT INTO stream_frames (message_id, channel, pos, kind, branch, seq,"
                    " verdict, frame, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (message_id, channel, pos, int(decoded.kind), decoded.branch, decoded.seq,
                     delivery.verdict, frame, now))
                result["position"] = pos
                if decoded.kind is FrameKind.DATA:
                    binding = None if row[2] is None else (str(row[1]), str(row[2]), str(row[3]))
                    result.update(self._ingest(channel, tenant_id, message_id, delivery,
                                               binding, source, now))
        return result

    def _forget(self, channel: str) -> None:
        """Drop a reader that ran ahead of the store (rebuilt from the store on next use)."""
        self._readers.pop(channel, None)

    def _count_reject(self, channel: str, tenant_id: str | None, delivery: Delivery,
                      actor: str) -> None:
        with self._db.transaction():
            if not self._db.execute(
                    "UPDATE stream_rejects SET count = count + 1 WHERE channel = ? AND verdict = ?",
                    (channel, delivery.verdict)):
                self._db.execute(
                    "INSERT INTO stream_rejects (channel, verdict, count) VALUES (?, ?, 1)",
                    (channel, delivery.verdict))
            self._audit.append(
                actor=actor, action="stream.reject", subject=f"channel:{channel}",
                outcome="failure", reason=delivery.verdict, tenant_id=tenant_id,
                details={"message_id": delivery.message_id.hex() if delivery.message_id else None,
                         "detail": delivery.detail[:200]})

    def _ingest(self, channel: str, tenant_id: str | None, message_id: str,
                delivery: Delivery, binding: tuple[str, str, str] | None,
                source: str | None, now: str) -> dict[str, Any]:
        """The datum of one accepted data frame: annotations at arrival, meter checks."""
        assert delivery.frame is not None
        self._db.execute(
            "INSERT INTO stream_data (datum_id, tenant_id, channel, label, inputs, created_at)"
            " VALUES (?, ?, ?, ?, '[]', ?)", (message_id, tenant_id, channel, "message", now))
        annotations = [("signature", True,
                        f"Ed25519 by {delivery.frame.author.hex()}; chain {delivery.verdict}")]
        alerts: list[dict[str, Any]] = []
        reading = None
        if binding is None:
            annotations += [(k, False, "the channel is bound to no SIM by a device certificate")
                            for k in ("sim", "tls", "source")]
            imsi = None
        else:
            iccid, imsi, imei = binding
            annotations += [self._sim_check(iccid, imsi, imei), self._tls_check(iccid),
                            self._source_check(imsi, source)]
            if delivery.payload is not None:
                reading, alerts = self._meter_reading(channel, tenant_id, imsi, imei,
                                                      delivery.payload, now)
        annotations.append(self._clean_check(channel, imsi))
        signed = [self._annotate(message_id, kind, ok, evidence, now)
                  for kind, ok, evidence in annotations]
        policy = self.policy(tenant_id)
        return {"score": str(policy.score(signed)),
                "annotations": [a.to_json() for a in signed],
                "reading": reading, "alerts": alerts}

    def _annotate(self, datum_id: str, kind: str, ok: bool, evidence: str,
                  now: str) -> Annotation:
        annotation = sign_annotation(self.annotator, datum_id, kind, ok, evidence)
        self._db.execute(
            "INSERT INTO stream_annotations (datum_id, kind, satisfied, annotator, evidence,"
            " signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (datum_id, kind, int(ok), annotation.annotator, evidence, annotation.signature, now))
        return annotation

    def _sim_check(self, iccid: str, imsi: str, imei: str) -> tuple[str, bool, str]:
        bound = list(self._bound_devices(iccid))
        if imei not in bound:
            return "sim", False, (f"SIM {iccid} is not bound to its certified device {imei}"
                                  f" (bound to {', '.join(bound) or 'none'})")
        row = self._db.query_one("SELECT imei, allowed, reason FROM stream_sims WHERE imsi = ?",
                                 (imsi,))
        if row is not None and not row[1]:
            return "sim", False, f"SIM {iccid}'s last attach was denied ({row[2]})"
        if row is not None and row[0] != imei:
            return "sim", False, f"SIM {iccid} attached in device {row[0]}, certified in {imei}"
        return "sim", True, f"SIM {iccid} is bound to and attached in its certified device {imei}"

    def _tls_check(self, iccid: str) -> tuple[str, bool, str]:
        ok = bool(self._tls_valid(iccid))
        return "tls", ok, (f"SIM {iccid} holds a valid tier-2 certificate" if ok
                           else f"SIM {iccid} holds no valid, unrevoked tier-2 certificate")

    def _source_check(self, imsi: str, source: str | None) -> tuple[str, bool, str]:
        expected = self._address_of(imsi)
        if source is None:
            return "source", False, "the source address is unknown"
        if expected is None:
            return "source", False, f"SIM {imsi} has no address assigned"
        ok = source == expected
        return "source", ok, f"arrived from {source}; SIM {imsi} holds {expected}"

    def _open_alerts(self, channel: str, imsi: str | None) -> list[str]:
        meters = [str(r[0]) for r in self._db.query(
            "SELECT meter FROM stream_meters WHERE channel = ?", (channel,))]
        found = []
        if imsi is not None:
            found += [f"{r[0]}:{r[1]}" for r in self._db.query(
                "SELECT source, kind FROM stream_alerts WHERE imsi = ? AND closed_at IS NULL",
                (imsi,))]
        for meter in meters:
            found += [f"{r[0]}:{r[1]}" for r in self._db.query(
                "SELECT source, kind FROM stream_alerts WHERE meter = ? AND closed_at IS NULL",
                (meter,))]
        return sorted(set(found))

    def _clean_check(self, channel: str, imsi: str | None) -> tuple[str, bool, str]:
        open_alerts = self._open_alerts(channel, imsi)
        if open_alerts:
            return "clean", False, "open alerts: " + ", ".join(open_alerts)
        return "clean", True, "no open alert for the device"

    # -- meters ----------------------------------------------------------------------------

    def register_meter(self, tenant_id: str | None, channel_id: str, credential: object, *,
                       actor: str) -> dict[str, Any]:
        """Bind a channel to a meter by its device certificate (``_devices``)."""
        if self._devices is None:
            raise Rejected("unknown-issuer", "no device credential verifier is configured")
        binding = self._devices().verify(credential)
        channel = _cid(channel_id)
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
        self._bound.add(sim.imsi)
        return self.meter(binding.meter)

    def verify_meter(self, meter: str, *, actor: str) -> dict[str, Any]:
        """Verify the meter's device certificate again now (revoked: the meter stops)."""
        row = self._db.query_one("SELECT channel FROM stream_meters WHERE meter = ?", (meter,))
        if row is None:
            raise NotFound(f"no meter {meter}")
        with contextlib.suppress(Rejected):  # a refusal is the new status, shown below
            self._meter_gate(str(row[0]), force=True, actor=actor)
        return self.meter(meter)

    def _meter_gate(self, channel: str, *, force: bool = False, actor: str) -> None:
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
                    self._store_alert(row[4], row[5], meter, "meter", "certificate-revoked",
                                      f"meter {meter}'s device certificate no longer verifies "
                                      f"({exc.reason})", {"reason": exc.reason}, stamp)
                    self._reannotate(meters=[meter], kind="clean", ok=False,
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
        return self._meter_json(row)

    def _meter_json(self, row: Sequence[Any]) -> dict[str, Any]:
        return {
            "meter": row[0], "tenant_id": row[1], "channel": row[2], "sim_did": row[3],
            "iccid": row[4], "imsi": row[5], "imei": row[6], "issuer": row[7],
            "status": row[8], "registered_at": row[9], "register_wh": row[10], "at": row[11],
            "verified_at": row[12],
            "alerts": self.alerts(meter=str(row[0]), open_only=True),
        }

    def meters(self, tenant_id: str | None, limit: int = 100) -> list[dict[str, Any]]:
        sql = ("SELECT meter, tenant_id, channel, sim_did, iccid, imsi, imei, issuer, status,"
               " registered_at, register_wh, at, verified_at FROM stream_meters")
        params: list[Any] = []
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params.append(tenant_id)
        rows = self._db.query(sql + " ORDER BY registered_at, meter LIMIT ?",
                              (*params, min(limit, _MAX_LIST)))
        return [self._meter_json(r) for r in rows]

    def alerts(self, *, meter: str | None = None, imsi: str | None = None,
               open_only: bool = False) -> list[dict[str, Any]]:
        sql = ("SELECT id, tenant_id, imsi, meter, source, kind, explanation, evidence,"
               " raised_at, closed_at FROM stream_alerts WHERE 1 = 1")
        params: list[Any] = []
        if meter is not None:
            sql += " AND meter = ?"
            params.append(meter)
        if imsi is not None:
            sql += " AND imsi = ?"
            params.append(imsi)
        if open_only:
            sql += " AND closed_at IS NULL"
        rows = self._db.query(sql + " ORDER BY id LIMIT 1000", params)
        return [{"id": int(r[0]), "tenant_id": r[1], "imsi": r[2], "meter": r[3],
                 "source": r[4], "kind": r[5], "explanation": r[6],
                 "evidence": json.loads(r[7]), "raised_at": r[8], "closed_at": r[9]}
                for r in rows]

    def close_alert(self, alert_id: int, *, actor: str) -> dict[str, Any]:
        """Close an alert (after investigation): the SIM's later data can be clean again."""
        row = self._db.query_one("SELECT tenant_id, closed_at FROM stream_alerts WHERE id = ?",
                                 (alert_id,))
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        if row[1] is None:
            with self._db.transaction(durable=True):
                self._db.execute("UPDATE stream_alerts SET closed_at = ? WHERE id = ?",
                                 (self._now(), alert_id))
                self._audit.append(actor=actor, action="stream.alert.close",
                                   subject=f"alert:{alert_id}", outcome="success",
                                   tenant_id=row[0])
        return {"id": alert_id, "closed": True}

    def alert_tenant(self, alert_id: int) -> str | None:
        row = self._db.query_one("SELECT tenant_id FROM stream_alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        return None if row[0] is None else str(row[0])

    def _meter_reading(self, channel: str, tenant_id: str | None, imsi: str, imei: str,
                       payload: bytes, now: str) -> tuple[dict[str, Any] | None,
                                                          list[dict[str, Any]]]:
        """Watch a meter's reading: clones (another SIM or device) and rollbacks alert."""
        mine = self._db.query_one("SELECT meter FROM stream_meters WHERE channel = ?",
                                  (channel,))
        if mine is None:
            return None, []
        try:
            reading = decode_reading(payload)
        except DecodeError:
            return None, []
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
            alerts.append(self._store_alert(tenant_id, imsi, alert.meter, "meter", alert.kind,
                                            alert.explanation, alert.evidence, now))
        if raised:
            self._reannotate(channel_imsis=[imsi], meters=[a.meter for a in raised],
                             kind="clean", ok=False,
                             evidence="; ".join(a.explanation for a in raised), now=now)
        return {"meter": reading.meter, "register_wh": reading.register_wh,
                "at": reading.at}, alerts

    def _store_alert(self, tenant_id: str | None, imsi: str | None, meter: str | None,
                     source: str, kind: str, explanation: str, evidence: dict[str, Any],
                     now: str) -> dict[str, Any]:
        alert_id = self._db.insert_returning_id(
            "INSERT INTO stream_alerts (tenant_id, imsi, meter, source, kind, explanation,"
            " evidence, raised_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tenant_id, imsi, meter, source, kind, explanation,
             json.dumps(evidence, sort_keys=True, default=str), now))
        self._audit.append(actor="streams", action="stream.alert", subject=f"alert:{alert_id}",
                           outcome="success", reason=kind, tenant_id=tenant_id,
                           details={"meter": meter, "imsi": imsi, "source": source})
        return {"id": alert_id, "kind": kind, "meter": meter, "imsi": imsi,
                "explanation": explanation}

    # -- live events from the security services --------------------------------------------

    def _reannotate(self, *, channel_imsis: Iterable[str] = (), meters: Iterable[str] = (),
                    kind: str, ok: bool, evidence: str, now: str) -> int:
        """Annotate the recent data of the channels of these SIMs and meters."""
        channels: set[str] = set()
        for imsi in channel_imsis:
            channels |= {str(r[0]) for r in self._db.query(
                "SELECT id FROM stream_channels WHERE imsi = ?", (imsi,))}
        for meter in meters:
            channels |= {str(r[0]) for r in self._db.query(
                "SELECT channel FROM stream_meters WHERE meter = ?", (meter,))}
        since = (datetime.fromisoformat(now) - EVENT_WINDOW).isoformat()
        count = 0
        with self._db.transaction():
            for channel in sorted(channels):
                for (datum,) in self._db.query(
                        "SELECT datum_id FROM stream_data WHERE channel = ? AND created_at >= ?"
                        " ORDER BY created_at DESC LIMIT ?", (channel, since, EVENT_LIMIT)):
                    self._annotate(str(datum), kind, ok, evidence, now)
                    count += 1
        return count

    def alert_sink(self) -> _Events:
        """An alert sink (``alerts.AlertSink``) for detection and attach alerts."""
        return _Events(self)

    def on_alert(self, alert: Any) -> None:
        """A detection or SIM-swap alert about a SIM: recorded, and its data lose ``clean``."""
        imsi = str(getattr(alert, "imsi", "") or "")
        if imsi not in self._bound:
            return
        now = self._now()
        summary = str(getattr(alert, "summary", "") or getattr(alert, "kind", "alert"))
        # The store's transaction serializes events; no service lock is taken, so an
        # event raised inside another service's transaction cannot deadlock with us.
        with self._db.transaction(durable=True):
            self._store_alert(getattr(alert, "tenant_id", None), imsi, None,
                              str(getattr(alert, "source", "detect")),
                              str(getattr(alert, "kind", "alert")), summary, {}, now)
            self._reannotate(channel_imsis=[imsi], kind="clean", ok=False,
                             evidence=f"{getattr(alert, 'source', 'detect')} alert "
                                      f"{getattr(alert, 'kind', '')}: {summary}", now=now)

    def on_attach(self, decision: Any) -> None:
        """An attach decision: where the SIM is now; a change re-annotates ``sim``."""
        imsi = str(decision.imsi)
        if imsi not in self._bound:
            return
        allowed, imei, reason = bool(decision.allowed), str(decision.imei), str(decision.reason)
        now = self._now()
        with self._db.transaction(durable=True):
            before = self._db.query_one(
                "SELECT imei, allowed FROM stream_sims WHERE imsi = ?", (imsi,))
            if before is not None and (before[0], bool(before[1])) == (imei, allowed):
                return
            if before is None:
                self._db.execute(
                    "INSERT INTO stream_sims (imsi, imei, allowed, reason, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)", (imsi, imei, int(allowed), reason, now))
            else:
                self._db.execute(
                    "UPDATE stream_sims SET imei = ?, allowed = ?, reason = ?,"
                    " updated_at = ? WHERE imsi = ?", (imei, int(allowed), reason, now, imsi))
            for channel_iccid, channel_imei in self._db.query(
                    "SELECT DISTINCT iccid, imei FROM stream_channels WHERE imsi = ?",
                    (imsi,)):
                _kind, ok, evidence = self._sim_check(str(channel_iccid), imsi,
                                                      str(channel_imei))
                self._reannotate(channel_imsis=[imsi], kind="sim", ok=ok,
                                 evidence=f"attach event: {evidence}", now=now)

    def on_certificate(self, event: str, iccid: str) -> None:
        """A tier-2 certificate of the SIM was issued or revoked: re-annotate ``tls``."""
        row = self._db.query_one("SELECT imsi FROM stream_channels WHERE iccid = ? LIMIT 1",
                                 (iccid,))
        if row is None:
            return
        _kind, ok, evidence = self._tls_check(iccid)
        with self._db.transaction(durable=True):
            self._reannotate(channel_imsis=[str(row[0])], kind="tls", ok=ok,
                             evidence=f"certificate {event}: {evidence}", now=self._now())

    # -- reading back ------------------------------------------------------------------------

    def messages(self, channel_id: str, *, after: int = -1,
                 limit: int = 100) -> list[dict[str, Any]]:
        """Stored frames in arrival order (position > ``after``), bytes as signed."""
        channel = _cid(channel_id)
        self.tenant_of(channel)
        rows = self._db.query(
            "SELECT pos, message_id, kind, branch, seq, verdict, frame, received_at"
            " FROM stream_frames WHERE channel = ? AND pos > ? ORDER BY pos LIMIT ?",
            (channel, after, min(limit, _MAX_LIST)))
        return [{"position": int(r[0]), "message_id": r[1],
                 "kind": FrameKind(int(r[2])).name.lower(), "branch": int(r[3]),
                 "seq": int(r[4]), "verdict": r[5], "frame": _b64(bytes(r[6])),
                 "received_at": r[7]} for r in rows]

    def heads(self, channel_id: str) -> dict[int, tuple[int, bytes]]:
        """Per branch, the (seq, id) of the highest stored message (an author resumes)."""
        channel = _cid(channel_id)
        self.tenant_of(channel)
        heads: dict[int, tuple[int, bytes]] = {}
        for branch, seq, message_id in self._db.query(
                "SELECT branch, seq, message_id FROM stream_frames WHERE channel = ? AND pos > 0"
                " ORDER BY pos", (channel,)):
            if int(seq) > heads.get(int(branch), (0, b""))[0]:
                heads[int(branch)] = (int(seq), bytes.fromhex(str(message_id)))
        return heads

    def announce(self, channel_id: str) -> bytes:
        row = self._db.query_one("SELECT announce FROM stream_channels WHERE id = ?",
                                 (_cid(channel_id),))
        if row is None:
            raise NotFound(f"no channel {channel_id}")
        return bytes(row[0])

    def message(self, message_id: str) -> dict[str, Any]:
        """One stored frame with its channel, position and (once anchored) proof."""
        _hex_id(message_id, "message id")
        row = self._db.query_one(
            "SELECT f.channel, f.pos, f.kind, f.frame, f.received_at, c.tenant_id, d.proof"
            " FROM stream_frames f JOIN stream_channels c ON c.id = f.channel"
            " LEFT JOIN stream_data d ON d.datum_id = f.message_id WHERE f.message_id = ?",
            (message_id.lower(),))
        if row is None:
            raise NotFound(f"no message {message_id}")
        return {"message_id": message_id.lower(), "channel": row[0], "position": int(row[1]),
                "kind": FrameKind(int(row[2])).name.lower(), "frame": _b64(bytes(row[3])),
                "received_at": row[4], "tenant_id": row[5],
                "proof": None if row[6] is None else json.loads(row[6])}

    # -- anchoring --------------------------------------------------------------------------

    def anchor(self, channel_id: str, *, actor: str, limit: int = 10_000) -> dict[str, Any]:
        """Anchor the channel's frames not anchored yet as one batch; annotate ``anchored``."""
        if self._anchor is None:
            raise Rejected("no-ledger", "no ledger to anchor on is configured")
        channel = _cid(channel_id)
        with self._channel_lock(channel):
            row = self._db.query_one(
                "SELECT anchored_pos, tenant_id FROM stream_channels WHERE id = ?", (channel,))
            if row is None:
                raise NotFound(f"no channel {channel_id}")
            start = int(row[0])
            frames = [bytes(r[0]) for r in self._db.query(
                "SELECT frame FROM stream_frames WHERE channel = ? AND pos >= ? ORDER BY pos"
                " LIMIT ?", (channel, start, limit))]
            if not frames:
                return {"channel": channel, "anchored": 0}
            batch = BatchAnchorer(bytes.fromhex(channel), self._anchor(), start).anchor(frames)
            now = self._now()
            with self._db.transaction(durable=True):
                self._db.execute(
                    "INSERT INTO stream_batches (anchor_id, channel, first_pos, root, ids,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (batch.anchor_id.hex(), channel, start, batch.root.hex(),
                     json.dumps([m.hex() for m in batch.message_ids]), now))
                self._db.execute("UPDATE stream_channels SET anchored_pos = ? WHERE id = ?",
                                 (start + len(frames), channel))
                data = {str(r[0]) for r in self._db.query(
                    "SELECT datum_id FROM stream_data WHERE channel = ?", (channel,))}
                for message in batch.message_ids:
                    key = message.hex()
                    if key in data:
                        proof = batch.proof(message)
                        self._db.execute("UPDATE stream_data SET proof = ? WHERE datum_id = ?",
                                         (json.dumps(proof, sort_keys=True), key))
                        self._annotate(key, "anchored", True,
                                       f"batch root {batch.root.hex()} in ledger message "
                                       f"{batch.anchor_id.hex()}", now)
                self._audit.append(actor=actor, action="stream.anchor",
                                   subject=f"channel:{channel}", outcome="success",
                                   tenant_id=row[1],
                                   details={"anchor": batch.anchor_id.hex(),
                                            "first": start, "size": len(frames)})
        return {"channel": channel, "anchored": len(frames), "first": start,
                "root": batch.root.hex(), "anchor": batch.anchor_id.hex()}

    # -- policy, derived data, provenance ---------------------------------------------------

    def policy(self, tenant_id: str | None) -> ConfidencePolicy:
        row = None if tenant_id is None else self._db.query_one(
            "SELECT weights FROM stream_policies WHERE tenant_id = ?", (tenant_id,))
        return ConfidencePolicy(json.loads(row[0]) if row else dict(DEFAULT_WEIGHTS))

    def set_policy(self, tenant_id: str, weights: dict[str, int], *, actor: str
                   ) -> ConfidencePolicy:
        policy = ConfidencePolicy(dict(weights))
        with self._db.transaction(durable=True):
            if not self._db.execute("UPDATE stream_policies SET weights = ? WHERE tenant_id = ?",
                                    (json.dumps(weights, sort_keys=True), tenant_id)):
                self._db.execute("INSERT INTO stream_policies (tenant_id, weights) VALUES (?, ?)",
                                 (tenant_id, json.dumps(weights, sort_keys=True)))
            self._audit.append(actor=actor, action="stream.policy", subject=f"tenant:{tenant_id}",
                               outcome="success", tenant_id=tenant_id, details=dict(weights))
        return policy

    def derive(self, tenant_id: str | None, inputs: Sequence[str], *, label: str,
               actor: str) -> dict[str, Any]:
        """A datum derived from stored ones (an aggregate): scored by the weakest input."""
        if not inputs:
            raise InvalidInput("a derived datum has at least one input")
        for datum in inputs:
            if self.datum_tenant(datum) != tenant_id:
                raise NotFound(f"no datum {datum}")
        datum_id = "derived-" + uuid.uuid4().hex
        now = self._now()
        with self._db.transaction(durable=True):
            self._db.execute(
                "INSERT INTO stream_data (datum_id, tenant_id, channel, label, inputs, created_at)"
                " VALUES (?, ?, NULL, ?, ?, ?)",
                (datum_id, tenant_id, label, json.dumps(list(inputs)), now))
            for kind in ANNOTATION_KINDS:
                self._annotate(datum_id, kind, True,
                               f"computed by the platform from {len(inputs)} inputs", now)
            self._audit.append(actor=actor, action="stream.derive", subject=f"datum:{datum_id}",
                               outcome="success", tenant_id=tenant_id,
                               details={"inputs": len(inputs), "label": label})
        return {"datum": datum_id, "score": str(self.score(datum_id))}

    def datum_tenant(self, datum_id: str) -> str | None:
        row = self._db.query_one("SELECT tenant_id FROM stream_data WHERE datum_id = ?",
                                 (datum_id.lower(),))
        if row is None:
            raise NotFound(f"no datum {datum_id}")
        return None if row[0] is None else str(row[0])

    def _graph(self, datum_id: str) -> tuple[ProvenanceGraph, dict[str, str | None]]:
        tenant = self.datum_tenant(datum_id)
        rows: dict[str, tuple[list[str], dict[str, Any] | None, str | None]] = {}
        stack = [datum_id.lower()]
        while stack:
            key = stack.pop()
            if key in rows:
                continue
            row = self._db.query_one(
                "SELECT inputs, proof, channel FROM stream_data WHERE datum_id = ?", (key,))
            if row is None:
                raise NotFound(f"no datum {key}")
            inputs = list(json.loads(row[0]))
            rows[key] = (inputs, None if row[1] is None else json.loads(row[1]), row[2])
            stack.extend(inputs)
        graph = ProvenanceGraph(self.policy(tenant))
        done: set[str] = set()

        def add(key: str) -> None:
            if key in done:
                return
            inputs, proof, _channel = rows[key]
            for source in inputs:
                add(source)
            graph.add(key, inputs, proof)
            for r in self._db.query(
                    "SELECT kind, satisfied, annotator, evidence, signature FROM"
                    " stream_annotations WHERE datum_id = ? ORDER BY id", (key,)):
                graph.annotate(Annotation(key, str(r[0]), bool(r[1]), bytes(r[2]), str(r[3]),
                                          bytes(r[4])))
            done.add(key)

        add(datum_id.lower())
        return graph, {k: v[2] for k, v in rows.items()}

    def score(self, datum_id: str) -> Fraction:
        graph, _channels = self._graph(datum_id)
        return graph.score(datum_id.lower())

    def provenance(self, datum_id: str) -> dict[str, Any]:
        """The datum's graph: every ancestor with its annotations, proof, score and frame."""
        graph, channels = self._graph(datum_id)
        document = graph.provenance(datum_id.lower())
        for key, node in document["nodes"].items():
            node["channel"] = channels.get(key)
            if channels.get(key) is not None:
                row = self._db.query_one("SELECT frame FROM stream_frames WHERE message_id = ?",
                                         (key,))
                node["frame"] = None if row is None else _b64(bytes(row[0]))
        document["score"] = document["nodes"][datum_id.lower()]["score"]
        document["annotator"] = self.annotator.public_key.hex()
        return document
