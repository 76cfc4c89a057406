"""Evidence about stored data: signed annotations, the checks behind them, alerts and events.

At arrival a data frame gets ``signature``, ``sim``, ``tls``, ``source`` and
``clean`` annotations, each signed by the service's own key (sealed at rest);
anchoring adds ``anchored``. ``tls`` is about the connection that delivered
the datum: the receiving listener hands over the client certificate it
verified in the TLS handshake (RFC 8446 §4.4.2, RFC 5246 §7.4.6), the
annotation names its SHA-256 fingerprint beside the datum id (the frame's
hash) and the certificate is kept with the datum (``stream_tls``), so anyone
holding the annotator's key can check later which tier-2 certificate the
datum came in under (docs/decisions/streams-live-annotations.md).

Events of the security services annotate the recent data of the SIMs they
concern (the latest annotation of a kind decides, ``ConfidencePolicy.score``):
attach decisions (``sim``), revocation of the certificate data arrived under
(``tls``), detection and SIM-swap alerts
and the meters' own cloned-meter and rollback alerts (``clean``). The
composition root wires those events in; nothing here imports a security
service. The annotation format is in ``docs/streams.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.errors import Conflict, NotFound
from simtrust.store import Database
from simtrust.streams._keys import SodiumSigner
from simtrust.streams._ocsp_check import ocsp_status
from simtrust.streams._provenance import Annotation, sign_annotation

__all__ = ["EVENT_LIMIT", "EVENT_WINDOW", "ClientCertificate", "Evidence", "EvidenceEvents",
           "TlsDelivery"]

#: How far back an event re-annotates a SIM's data, and at most how many data.
EVENT_WINDOW = timedelta(hours=1)
EVENT_LIMIT = 1000

Check = tuple[str, bool, str]


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """What the certificate authorities know of a presented tier-2 certificate."""

    serial: str
    tenant_id: str
    iccid: str
    status: str
    not_before: str
    not_after: str
    #: The issuing CA's certificate and its OCSP responder's signed word on this
    #: certificate (DER each; empty when its CA signs no OCSP here).
    issuer: bytes = field(default=b"", repr=False)
    ocsp: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class TlsDelivery:
    """The mutually-authenticated connection a frame arrived on: the client certificate
    (DER) the listener verified in the handshake and which listener that was."""

    certificate: bytes
    listener: str = "https"

    def __repr__(self) -> str:
        return f"TlsDelivery(sha256={self.fingerprint}, listener={self.listener!r})"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.certificate).hexdigest()


class EvidenceEvents:
    """The alert sink the composition root hands to detection and attach alerts."""

    name = "streams"

    def __init__(self, evidence: Evidence) -> None:
        self._evidence = evidence

    def __repr__(self) -> str:
        return "StreamAlertSink()"

    def send(self, alert: Any) -> None:
        self._evidence.on_alert(alert)

    def close(self) -> None:
        """Nothing to release."""


class Evidence:
    """Annotations of stored data, the checks that decide them, and the alerts they cite.

    ``bound_devices(iccid)`` and ``address_of(imsi)`` are what the composition
    root knows of a SIM, ``tls_certificate(der)`` what the certificate
    authorities know of a presented client certificate (None: not issued here);
    ``bound`` holds the IMSIs that have a channel (events about other SIMs are
    dropped at once).
    """

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        bound_devices: Callable[[str], Sequence[str]] | None = None,
        tls_certificate: Callable[[bytes], ClientCertificate | None] | None = None,
        address_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self._bound_devices = bound_devices or (lambda _iccid: ())
        self._tls_certificate = tls_certificate or (lambda _der: None)
        self._address_of = address_of or (lambda _imsi: None)
        self.annotator = self._load_annotator()
        self.bound = {str(r[0]) for r in db.query(
            "SELECT DISTINCT imsi FROM stream_channels WHERE imsi IS NOT NULL")}

    def __repr__(self) -> str:
        return f"Evidence(bound_sims={len(self.bound)})"

    def _now(self) -> str:
        return self._clock().isoformat()

    def _load_annotator(self) -> SodiumSigner:
        """The service's annotating key: made on first start, sealed at rest by the keyring.

        Processes that start together on a new store (``serve``'s workers) may both find
        no key; the first insert wins and every other process uses the stored key."""
        aad = b"simtrust/streams/annotator"
        select = "SELECT key_sealed FROM stream_keys WHERE id = 'annotator'"
        row = self._db.query_one(select)
        if row is None:
            raw = os.urandom(32)
            with self._db.transaction(durable=True):
                made = self._db.execute(
                    "INSERT INTO stream_keys (id, public, key_sealed, created_at)"
                    " VALUES ('annotator', ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (SodiumSigner(raw).public_key, self._keyring.seal(raw, aad), self._now()))
            if made == 1:
                return SodiumSigner(raw)
            row = self._db.query_one(select)  # another process stored it first
            if row is None:
                raise Conflict("the streams annotator key was neither stored nor found")
        return SodiumSigner(self._keyring.open(bytes(row[0]), aad))

    def annotate(self, datum_id: str, kind: str, ok: bool, evidence: str,
                  now: str) -> Annotation:
        annotation = sign_annotation(self.annotator, datum_id, kind, ok, evidence)
        self._db.execute(
            "INSERT INTO stream_annotations (datum_id, kind, satisfied, annotator, evidence,"
            " signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (datum_id, kind, int(ok), annotation.annotator, evidence, annotation.signature, now))
        return annotation

    def sim_check(self, iccid: str, imsi: str, imei: str) -> tuple[str, bool, str]:
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

    def tls_check(self, iccid: str, tls: TlsDelivery | None, *,
                  datum_id: str | None = None) -> tuple[str, bool, str]:
        """Did the datum arrive over mTLS under a valid, unrevoked tier-2 certificate of
        the channel's SIM? Decided from the connection that delivered it and the CA's
        revocation state: its records and its OCSP responder's signed answer, which is
        kept with the datum (``datum_id``) as the proof of the status claim."""
        if tls is None:
            return "tls", False, ("not received over mutually-authenticated TLS: no client"
                                  " certificate on the connection that delivered it")
        seen = f"client certificate sha256:{tls.fingerprint} on the {tls.listener} listener"
        found = self._tls_certificate(tls.certificate)
        if found is None:
            return "tls", False, f"{seen} is no tier-2 certificate issued here"
        named = f"{seen} (serial {found.serial}, SIM {found.iccid})"
        now = self._clock()
        status = "not checked by OCSP (its CA signs no OCSP here)"
        if found.ocsp:
            if datum_id is not None:
                self._db.execute("UPDATE stream_tls SET ocsp = ?, issuer = ? WHERE datum_id = ?",
                                 (found.ocsp, found.issuer, datum_id))
            verdict, status = ocsp_status(tls.certificate, found.issuer, found.ocsp, now)
            # The annotation (and so the anchored TLS receipt) commits to the response.
            status += f" (OCSP response sha256:{hashlib.sha256(found.ocsp).hexdigest()})"
            if verdict != "good":
                return "tls", False, f"{named} is {verdict}: {status}"
        if found.iccid != iccid:
            return "tls", False, f"{named} is not a certificate of the channel's SIM {iccid}"
        if found.status != "good":
            return "tls", False, f"{named} is {found.status}"
        if not (datetime.fromisoformat(found.not_before) <= now
                <= datetime.fromisoformat(found.not_after)):
            return "tls", False, (f"{named} is outside its validity"
                                  f" {found.not_before} .. {found.not_after}")
        return "tls", True, (f"received over mutually-authenticated TLS; {named},"
                             f" good until {found.not_after}; {status}")

    def keep_tls(self, datum_id: str, iccid: str | None, tls: TlsDelivery, now: str) -> None:
        """Keep the client certificate a datum arrived under (the ``tls`` annotation's proof)."""
        self._db.execute(
            "INSERT INTO stream_tls (datum_id, fingerprint, iccid, listener, certificate,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?)",
            (datum_id, tls.fingerprint, iccid, tls.listener, tls.certificate, now))

    def record_tls_annotation(self, datum_id: str, annotation: Annotation) -> None:
        """The arrival ``tls`` annotation of a datum received over mTLS (anchored later)."""
        self._db.execute("UPDATE stream_tls SET annotation = ? WHERE datum_id = ?",
                         (json.dumps(annotation.to_json(), sort_keys=True), datum_id))

    def tls_receipt(self, datum_id: str) -> tuple[bytes, dict[str, Any] | None,
                                                  dict[str, Any] | None] | None:
        """``(certificate, arrival annotation, inclusion proof)`` of a datum, if over mTLS."""
        row = self._db.query_one(
            "SELECT certificate, annotation, proof FROM stream_tls WHERE datum_id = ?",
            (datum_id,))
        if row is None:
            return None
        return (bytes(row[0]), None if row[1] is None else json.loads(row[1]),
                None if row[2] is None else json.loads(row[2]))

    def tls_certificate_of(self, datum_id: str) -> bytes | None:
        row = self._db.query_one("SELECT certificate FROM stream_tls WHERE datum_id = ?",
                                 (datum_id,))
        return None if row is None else bytes(row[0])

    def tls_status_of(self, datum_id: str) -> tuple[bytes, bytes] | None:
        """``(OCSP response, issuing CA certificate)`` checked when the datum arrived."""
        row = self._db.query_one("SELECT ocsp, issuer FROM stream_tls WHERE datum_id = ?"
                                 " AND ocsp IS NOT NULL", (datum_id,))
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def source_check(self, imsi: str, source: str | None) -> tuple[str, bool, str]:
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

    def clean_check(self, channel: str, imsi: str | None) -> tuple[str, bool, str]:
        open_alerts = self._open_alerts(channel, imsi)
        if open_alerts:
            return "clean", False, "open alerts: " + ", ".join(open_alerts)
        return "clean", True, "no open alert for the device"

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

    def store_alert(self, tenant_id: str | None, imsi: str | None, meter: str | None,
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

    def reannotate(self, *, channel_imsis: Iterable[str] = (), meters: Iterable[str] = (),
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
                    self.annotate(str(datum), kind, ok, evidence, now)
                    count += 1
        return count

    def alert_sink(self) -> EvidenceEvents:
        """An alert sink (``alerts.AlertSink``) for detection and attach alerts."""
        return EvidenceEvents(self)

    def on_alert(self, alert: Any) -> None:
        """A detection or SIM-swap alert about a SIM: recorded, and its data lose ``clean``."""
        imsi = str(getattr(alert, "imsi", "") or "")
        if imsi not in self.bound:
            return
        now = self._now()
        summary = str(getattr(alert, "summary", "") or getattr(alert, "kind", "alert"))
        # The store's transaction serializes events; no service lock is taken, so an
        # event raised inside another service's transaction cannot deadlock with us.
        with self._db.transaction(durable=True):
            self.store_alert(getattr(alert, "tenant_id", None), imsi, None,
                              str(getattr(alert, "source", "detect")),
                              str(getattr(alert, "kind", "alert")), summary, {}, now)
            self.reannotate(channel_imsis=[imsi], kind="clean", ok=False,
                             evidence=f"{getattr(alert, 'source', 'detect')} alert "
                                      f"{getattr(alert, 'kind', '')}: {summary}", now=now)

    def on_attach(self, decision: Any) -> None:
        """An attach decision: where the SIM is now; a change re-annotates ``sim``."""
        imsi = str(decision.imsi)
        if imsi not in self.bound:
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
                _kind, ok, evidence = self.sim_check(str(channel_iccid), imsi,
                                                      str(channel_imei))
                self.reannotate(channel_imsis=[imsi], kind="sim", ok=ok,
                                 evidence=f"attach event: {evidence}", now=now)

    def on_certificate(self, event: str, iccid: str) -> None:
        """A tier-2 certificate of the SIM was revoked: the recent data that arrived under a
        certificate no longer good lose ``tls``. An issued certificate changes nothing: it
        says nothing of how earlier data arrived."""
        if event != "revoked":
            return
        now = self._now()
        since = (datetime.fromisoformat(now) - EVENT_WINDOW).isoformat()
        rows = self._db.query(
            "SELECT datum_id, certificate FROM stream_tls WHERE iccid = ? AND received_at >= ?"
            " ORDER BY received_at DESC LIMIT ?", (iccid, since, EVENT_LIMIT))
        if not rows:
            return
        verdicts: dict[bytes, tuple[bool, str]] = {}
        with self._db.transaction(durable=True):
            for datum, der in rows:
                certificate = bytes(der)
                if certificate not in verdicts:
                    _kind, ok, evidence = self.tls_check(iccid, TlsDelivery(certificate))
                    verdicts[certificate] = ok, evidence
                ok, evidence = verdicts[certificate]
                if not ok:
                    self.annotate(str(datum), "tls", False,
                                  f"certificate {event}: {evidence}", now)
