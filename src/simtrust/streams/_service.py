"""The streams service: stored channels, frames, provenance, meters and live annotations.

Channels are registered from their author's signed announce; frames are
published already signed (the platform holds no author key and never sees a
private channel's plaintext: it relays and checks signature and chain only).
An accepted frame is stored with its datum and annotations in one durable
transaction before :meth:`StreamService.publish` returns: acknowledged means
on disk. A restart rebuilds each channel's reader from its stored frames.

Annotations are signed by the service's own key and decided by the checks in
:class:`~simtrust.streams._evidence.Evidence`, which also turns the security
services' events into annotations; meters bound to channels are
:class:`~simtrust.streams._meters.MeterRegistry`; scores, derived data and
provenance are :class:`~simtrust.streams._datums.DataCatalog`. The service
answers their methods as well, which is what the API and CLI call. The
composition root wires the events in; nothing here imports a security service.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.errors import Conflict, DecodeError, InvalidSignature, NotFound, Rejected
from simtrust.store import Database
from simtrust.streams._anchor import AnchorFn, BatchAnchorer
from simtrust.streams._common import MAX_LIST, b64, cid, hex_id
from simtrust.streams._datums import DataCatalog
from simtrust.streams._devices import DeviceCredentials
from simtrust.streams._evidence import ClientCertificate, Evidence, TlsDelivery
from simtrust.streams._frame import FrameKind
from simtrust.streams._ledger_proof import AnchorLookup, prove_reading_on_ledger
from simtrust.streams._meters import MeterRegistry, SimRef
from simtrust.streams._reader import Delivery, Reader
from simtrust.streams._tls_receipts import (
    anchor_receipts,
    annotation_from_json,
    verify_tls_receipt,
)

__all__ = ["SimRef", "StreamService"]


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
        anchor_state: Callable[[bytes], str] | None = None,
        devices: Callable[[], DeviceCredentials] | None = None,
        sims: Callable[[str], SimRef | None] | None = None,
        bound_devices: Callable[[str], Sequence[str]] | None = None,
        tls_certificate: Callable[[bytes], ClientCertificate | None] | None = None,
        address_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._anchor = anchor
        # The ledger's state of a message; without one an issued anchor counts as final.
        self._anchor_state = anchor_state or (lambda _message: "finalized")
        self._lock = threading.RLock()
        self._readers: dict[str, Reader] = {}
        # One lock per channel: frames of a channel are checked in order, while
        # different channels publish side by side and share fsyncs (group commit).
        self._channel_locks: dict[str, threading.Lock] = {}
        self.evidence = Evidence(db, keyring, audit, clock, bound_devices=bound_devices,
                                 tls_certificate=tls_certificate, address_of=address_of)
        self.meter_registry = MeterRegistry(db, audit, clock, self.evidence, devices=devices,
                                            sims=sims)
        self.catalog = DataCatalog(db, audit, clock, self.evidence)
        self.annotator = self.evidence.annotator
        # The parts' methods, answered by the service itself.
        self.alerts = self.evidence.alerts
        self.close_alert = self.evidence.close_alert
        self.alert_tenant = self.evidence.alert_tenant
        self.alert_sink = self.evidence.alert_sink
        self.on_alert = self.evidence.on_alert
        self.on_attach = self.evidence.on_attach
        self.on_certificate = self.evidence.on_certificate
        self.register_meter = self.meter_registry.register_meter
        self.verify_meter = self.meter_registry.verify_meter
        self.meter = self.meter_registry.meter
        self.meters = self.meter_registry.meters
        self.policy = self.catalog.policy
        self.set_policy = self.catalog.set_policy
        self.derive = self.catalog.derive
        self.datum_tenant = self.catalog.datum_tenant
        self.score = self.catalog.score
        self.provenance = self.catalog.provenance

    def __repr__(self) -> str:
        return f"StreamService(channels_cached={len(self._readers)})"

    def _now(self) -> str:
        return self._clock().isoformat()

    # -- the annotating key ------------------------------------------------------------

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
            " imei, created_at FROM stream_channels WHERE id = ?", (cid(channel_id),))
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
                              (*params, min(limit, MAX_LIST)))
        return [self._channel_json(r) for r in rows]

    def tenant_of(self, channel_id: str) -> str | None:
        row = self._db.query_one("SELECT tenant_id FROM stream_channels WHERE id = ?",
                                 (cid(channel_id),))
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
                tls: TlsDelivery | None = None, actor: str) -> dict[str, Any]:
        """Check one signed frame against the channel and store it durably.

        ``tls`` is the client certificate of the mutually-authenticated connection that
        delivered the frame, as the receiving listener verified it (None: not mTLS).

        Returns the verdict, the message id and (for data) the datum's score and
        annotations. A frame that does not extend the channel is counted and
        audited, and raised: malformed (400), forged (400), replay or fork (409).
        """
        channel = cid(channel_id)
        with self._channel_lock(channel):
            row = self._db.query_one(
                "SELECT tenant_id, iccid, imsi, imei FROM stream_channels WHERE id = ?",
                (channel,))
            if row is None:
                raise NotFound(f"no channel {channel_id}")
            tenant_id = None if row[0] is None else str(row[0])
            try:
                self.meter_registry.gate(channel, actor=actor)
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
                                               binding, source, tls, now))
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
                source: str | None, tls: TlsDelivery | None, now: str) -> dict[str, Any]:
        """The datum of one accepted data frame: annotations at arrival, meter checks."""
        assert delivery.frame is not None
        self._db.execute(
            "INSERT INTO stream_data (datum_id, tenant_id, channel, label, inputs, created_at)"
            " VALUES (?, ?, ?, ?, '[]', ?)", (message_id, tenant_id, channel, "message", now))
        annotations = [("signature", True,
                        f"Ed25519 by {delivery.frame.author.hex()}; chain {delivery.verdict}")]
        alerts: list[dict[str, Any]] = []
        reading = None
        if tls is not None:
            self.evidence.keep_tls(message_id, None if binding is None else binding[0], tls, now)
        if binding is None:
            annotations += [(k, False, "the channel is bound to no SIM by a device certificate")
                            for k in ("sim", "tls", "source")]
            imsi = None
        else:
            iccid, imsi, imei = binding
            annotations += [self.evidence.sim_check(iccid, imsi, imei),
                            self.evidence.tls_check(iccid, tls, datum_id=message_id),
                            self.evidence.source_check(imsi, source)]
            if delivery.payload is not None:
                reading, alerts = self.meter_registry.reading(channel, tenant_id, imsi, imei,
                                                      delivery.payload, now,
                                                      datum_id=message_id)
        annotations.append(self.evidence.clean_check(channel, imsi))
        signed = [self.evidence.annotate(message_id, kind, ok, evidence, now)
                  for kind, ok, evidence in annotations]
        if tls is not None:
            self.evidence.record_tls_annotation(
                message_id, next(a for a in signed if a.kind == "tls"))
        policy = self.policy(tenant_id)
        return {"score": str(policy.score(signed)),
                "annotations": [a.to_json() for a in signed],
                "reading": reading, "alerts": alerts}

    # -- reading back ------------------------------------------------------------------------

    def messages(self, channel_id: str, *, after: int = -1,
                 limit: int = 100) -> list[dict[str, Any]]:
        """Stored frames in arrival order (position > ``after``), bytes as signed."""
        channel = cid(channel_id)
        self.tenant_of(channel)
        rows = self._db.query(
            "SELECT pos, message_id, kind, branch, seq, verdict, frame, received_at"
            " FROM stream_frames WHERE channel = ? AND pos > ? ORDER BY pos LIMIT ?",
            (channel, after, min(limit, MAX_LIST)))
        return [{"position": int(r[0]), "message_id": r[1],
                 "kind": FrameKind(int(r[2])).name.lower(), "branch": int(r[3]),
                 "seq": int(r[4]), "verdict": r[5], "frame": b64(bytes(r[6])),
                 "received_at": r[7]} for r in rows]

    def heads(self, channel_id: str) -> dict[int, tuple[int, bytes]]:
        """Per branch, the (seq, id) of the highest stored message (an author resumes)."""
        channel = cid(channel_id)
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
                                 (cid(channel_id),))
        if row is None:
            raise NotFound(f"no channel {channel_id}")
        return bytes(row[0])

    def message(self, message_id: str) -> dict[str, Any]:
        """One stored frame with its channel, position and (once anchored) proof."""
        hex_id(message_id, "message id")
        row = self._db.query_one(
            "SELECT f.channel, f.pos, f.kind, f.frame, f.received_at, c.tenant_id, d.proof"
            " FROM stream_frames f JOIN stream_channels c ON c.id = f.channel"
            " LEFT JOIN stream_data d ON d.datum_id = f.message_id WHERE f.message_id = ?",
            (message_id.lower(),))
        if row is None:
            raise NotFound(f"no message {message_id}")
        return {"message_id": message_id.lower(), "channel": row[0], "position": int(row[1]),
                "kind": FrameKind(int(row[2])).name.lower(), "frame": b64(bytes(row[3])),
                "received_at": row[4], "tenant_id": row[5],
                "proof": None if row[6] is None else json.loads(row[6])}

    def prove_on_ledger(self, message_id: str, *, anchor_at: AnchorLookup,
                        sim_keys: Callable[[str], Sequence[bytes]]) -> dict[str, Any]:
        """A meter reading checked against the ledger alone (``_ledger_proof``): signature,
        anchored batch root, and the author key named by the SIM's DID document."""
        found = self.message(message_id)
        row = self._db.query_one("SELECT sim_did, meter FROM stream_meters WHERE channel = ?",
                                 (found["channel"],))
        if row is None:
            raise NotFound(f"message {message_id} is not on a meter's channel: no SIM DID")
        result = prove_reading_on_ledger(base64.b64decode(found["frame"]), found["proof"],
                                         str(row[0]), anchor_at=anchor_at, sim_keys=sim_keys)
        receipt = self.evidence.tls_receipt(message_id.lower())
        tls: dict[str, Any] | None = None
        if receipt is not None and receipt[1] is not None and receipt[2] is not None:
            tls = {**verify_tls_receipt(receipt[1], receipt[0], receipt[2], anchor_at=anchor_at,
                                        ocsp=self.evidence.tls_status_of(message_id.lower())),
                   "client_certificate": b64(receipt[0])}
        return {**result, "meter": row[1], "channel": found["channel"], "tls": tls}

    # -- anchoring --------------------------------------------------------------------------

    def anchor(self, channel_id: str, *, actor: str, limit: int = 10_000) -> dict[str, Any]:
        """Anchor the channel's frames not anchored yet as one batch; annotate ``anchored``."""
        if self._anchor is None:
            raise Rejected("no-ledger", "no ledger to anchor on is configured")
        channel = cid(channel_id)
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
            state = self._anchor_state(batch.anchor_id)
            final = state == "finalized"
            now = self._now()
            with self._db.transaction(durable=True):
                self._db.execute(
                    "INSERT INTO stream_batches (anchor_id, channel, first_pos, root, ids,"
                    " created_at, final_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (batch.anchor_id.hex(), channel, start, batch.root.hex(),
                     json.dumps([m.hex() for m in batch.message_ids]), now,
                     now if final else None))
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
                        self.evidence.annotate(key, "anchored", final,
                                       f"batch root {batch.root.hex()} in ledger message "
                                       f"{batch.anchor_id.hex()}, {state}", now)
                self._audit.append(actor=actor, action="stream.anchor",
                                   subject=f"channel:{channel}", outcome="success",
                                   tenant_id=row[1],
                                   details={"anchor": batch.anchor_id.hex(),
                                            "first": start, "size": len(frames)})
            receipts = self._anchor_tls_receipts(channel)
        return {"channel": channel, "anchored": len(frames), "first": start,
                "root": batch.root.hex(), "anchor": batch.anchor_id.hex(),
                "tls_receipts": receipts}

    def confirm_anchors(self, *, limit: int = 1_000) -> int:
        """Annotate ``anchored`` for the data of batches whose anchor the ledger finalized
        since they were anchored (an anchor not final yet leaves ``anchored`` false);
        run by the anchoring scheduler of ``simtrust serve``. How many batches became final."""
        rows = self._db.query(
            "SELECT anchor_id, channel, root, ids FROM stream_batches WHERE final_at IS NULL"
            " ORDER BY created_at LIMIT ?", (max(1, min(limit, 10_000)),))
        done = 0
        for anchor_id, channel, root, ids in rows:
            if self._anchor_state(bytes.fromhex(str(anchor_id))) != "finalized":
                continue
            now = self._now()
            with self._db.transaction(durable=True):
                if not self._db.execute(
                        "UPDATE stream_batches SET final_at = ? WHERE anchor_id = ?"
                        " AND final_at IS NULL", (now, anchor_id)):
                    continue
                data = {str(r[0]) for r in self._db.query(
                    "SELECT datum_id FROM stream_data WHERE channel = ?", (channel,))}
                for key in json.loads(ids):
                    if key in data:
                        self.evidence.annotate(key, "anchored", True,
                                               f"batch root {root} in ledger message"
                                               f" {anchor_id}, finalized", now)
            done += 1
        return done

    def _anchor_tls_receipts(self, channel: str) -> int:
        """Anchor the tls receipts of the channel's anchored data not anchored yet."""
        rows = self._db.query(
            "SELECT t.datum_id, t.annotation FROM stream_tls t JOIN stream_data d"
            " ON d.datum_id = t.datum_id WHERE d.channel = ? AND d.proof IS NOT NULL"
            " AND t.annotation IS NOT NULL AND t.proof IS NULL ORDER BY t.received_at,"
            " t.datum_id LIMIT 10000", (channel,))
        if not rows or self._anchor is None:
            return 0
        done = self._db.query_one(
            "SELECT COUNT(*) FROM stream_tls t JOIN stream_data d ON d.datum_id = t.datum_id"
            " WHERE d.channel = ? AND t.proof IS NOT NULL", (channel,))
        first = int(done[0]) if done else 0
        proofs = anchor_receipts(bytes.fromhex(channel),
                                 [annotation_from_json(json.loads(r[1])) for r in rows],
                                 first, self._anchor())
        with self._db.transaction(durable=True):
            for (datum, _), proof in zip(rows, proofs, strict=True):
                self._db.execute("UPDATE stream_tls SET proof = ? WHERE datum_id = ?",
                                 (json.dumps(proof, sort_keys=True), datum))
        return len(rows)

    # -- policy, derived data, provenance ---------------------------------------------------
