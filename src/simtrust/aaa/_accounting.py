"""The accounting side of the RADIUS server (RFC 2866): records, answers, volume caps.

RFC 2866 §4.1/§4.2: an Accounting-Request is answered only once it is
recorded. Two paths, the same rules:

- :meth:`AccountingPath.handle_acct` — one datagram (RadSec streams, tests):
  the record goes to the accounting writer's group commit
  (:class:`~simtrust.aaa._sessions.AccountingLog`), whose thread sends the
  answer after the commit.
- :meth:`AccountingPath.handle_acct_burst` — the datagrams a UDP listener read
  together: each is checked and reduced to its record on the receiving thread
  (:func:`~simtrust.aaa._acct_record.scan`, no packet object), the burst's
  records are written in one transaction there, and only after that commit
  returns are the answers sent and remembered for retransmissions. A failed
  commit answers none of them and forgets them (the gateway retransmits). No
  hand-off between threads: the burst's size bounds the work in flight, so the
  per-client in-flight limit of the queued path does not apply.

Datagrams that fail a check (RFC 2865 §3: unknown client, malformed, bad
Request Authenticator, RFC 2866 §3; bad Message-Authenticator, RFC 3579 §3.2;
over the client's rate) are counted and dropped. A retransmission (same
client, source, identifier and authenticator; RFC 5080 §2.2.2) gets the answer
already sent; a copy within the same burst gets it after the burst's commit.
Accounting-On/Off (RFC 2866 §5.1) closes the client's sessions after the
records read before it are committed. After each commit the bytes accounted
since a session's previous record feed the volume caps (:meth:`_metered`),
in arrival order, under one lock, so a cap is crossed exactly once whichever
path wrote the record; a burst's records go to the fraud detectors and to the
volume caps in one call each (``observe_sessions``, ``meter_many``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from hashlib import md5
from hmac import compare_digest

from simtrust.aaa._acct_record import acct_record, record_of, scan
from simtrust.aaa._admission import AnswerCache, ClientRateLimit, answer_key
from simtrust.aaa._clients import GatewayClient, GatewayClients
from simtrust.aaa._events import session_rows
from simtrust.aaa._ports import UsageSink
from simtrust.aaa._radius import (
    Attr,
    Code,
    MalformedPacket,
    Packet,
    empty_reply,
    verify_message_authenticator,
    verify_request_authenticator,
)
from simtrust.aaa._sessions import AccountingLog, AcctRecord
from simtrust.detect import SessionRow, SimEvent, session_event
from simtrust.domain import ImsiDigits, imsi_digits
from simtrust.errors import SimtrustError
from simtrust.subscriber import AttachEngine

__all__ = ["AccountingPath"]

_log = logging.getLogger("simtrust.aaa.accounting")
_ZERO16 = bytes(16)
_STATUS = {1: "start", 2: "stop", 3: "interim", 7: "accounting-on", 8: "accounting-off"}
_SESSION_STATUS = frozenset(("start", "stop", "interim"))
_ACCOUNTING_REQUEST = Code.ACCOUNTING_REQUEST
_ACCOUNTING_RESPONSE = Code.ACCOUNTING_RESPONSE

Datagram = tuple[bytes, tuple[str, int]]


class AccountingPath:
    """Accounting-Request handling of :class:`~simtrust.aaa._server.RadiusServer`."""

    clients: GatewayClients
    attach: AttachEngine
    accounting: AccountingLog
    clock: Callable[[], datetime]
    usage: UsageSink | None
    observer: Callable[[SimEvent], object] | None
    observe_sessions: Callable[[float, list[SessionRow]], object] | None
    counters: dict[str, int]
    _answers: AnswerCache
    _rates: ClientRateLimit
    _max_in_flight: int
    _in_flight: dict[int, int]
    _flight_lock: threading.Lock
    _meter_lock: threading.Lock
    _totals: dict[str, int]
    _new_sessions: set[str]

    def _admit(self, data: bytes, addr: tuple[str, int], codes: tuple[int, ...],
               secret: bytes | None = None
               ) -> tuple[GatewayClient, Packet, bytes, bytes] | None:
        raise NotImplementedError

    def handle_acct(self, data: bytes, addr: tuple[str, int],
                    send: Callable[[bytes], None], *, secret: bytes | None = None) -> None:
        """Record one Accounting-Request; ``send`` gets the answer after the commit."""
        admitted = self._admit(data, addr, (Code.ACCOUNTING_REQUEST,), secret)
        if admitted is None:
            return
        client, request, wire, key = admitted
        if not verify_request_authenticator(wire, client.secret):
            self.counters["bad_authenticator"] += 1
            return
        a = request.first()
        if Attr.MESSAGE_AUTHENTICATOR in a and \
                not verify_message_authenticator(wire, client.secret, _ZERO16):
            self.counters["bad_authenticator"] += 1
            return
        seen, answer = self._answers.lookup(key)
        if seen:
            self.counters["duplicates"] += 1
            if answer is not None:
                send(answer)
            return
        status = _STATUS.get(_int(a, Attr.ACCT_STATUS_TYPE))
        raw_id = a.get(Attr.ACCT_SESSION_ID)
        session_id = raw_id.decode("utf-8", "replace") if raw_id is not None else None
        if status is None or (session_id is None and status in ("start", "stop", "interim")):
            self.counters["invalid_request"] += 1
            return
        if self._in_flight.get(client.id, 0) >= self._max_in_flight:
            self.counters["in_flight_dropped"] += 1
            return
        self.counters["accounting_requests"] += 1
        out = empty_reply(Code.ACCOUNTING_RESPONSE, request.identifier, request.authenticator,
                          client.secret)
        if status in ("accounting-on", "accounting-off"):
            self._close_all(client)
            self.counters["accounting_responses"] += 1
            self._answers.remember(key, out)
            send(out)
            return
        assert session_id is not None
        record = acct_record(request, a, client.id, session_id, status, self.attach,
                             self.clock().isoformat())
        self._baseline(record)
        self._answers.remember(key, None)
        with self._flight_lock:
            self._in_flight[client.id] = self._in_flight.get(client.id, 0) + 1

        def done() -> None:
            with self._flight_lock:
                self._in_flight[client.id] -= 1
            self._answers.remember(key, out)
            self.counters["accounting_responses"] += 1
            send(out)

        def failed() -> None:
            # Not written: forget the request so that its retransmission is processed.
            with self._flight_lock:
                self._in_flight[client.id] -= 1
            self._answers.forget(key)

        self.accounting.submit(record, done, failed)

    def handle_acct_burst(self, burst: list[Datagram],
                          send: Callable[[bytes, tuple[str, int]], None]) -> None:
        """Record the Accounting-Requests that arrived together; answer them after their
        one commit (nothing is answered if it fails)."""
        counters = self.counters
        answers = self._answers
        match = self.clients.match
        take = self._rates.take
        attach = self.attach
        at = self.clock().isoformat()
        records: list[AcctRecord] = []
        pending: list[tuple[bytes, bytes, tuple[str, int]]] = []
        copies: list[tuple[bytes, tuple[str, int]]] = []
        in_burst: set[bytes] = set()
        last_host = ""
        client: GatewayClient | None = None
        for data, addr in burst:
            if addr[0] != last_host:
                last_host = addr[0]
                client = match(last_host)
            if client is None:
                counters["unknown_client"] += 1
                continue
            if not take(client.id):
                counters["rate_limited"] += 1
                continue
            try:
                length, a, tgpp = scan(data)
            except MalformedPacket:
                counters["malformed"] += 1
                continue
            if data[0] != _ACCOUNTING_REQUEST:
                counters["unexpected_code"] += 1
                continue
            wire = data[:length] if length != len(data) else data
            secret = client.secret
            # verify_request_authenticator(wire, secret), inline (RFC 2866 §3)
            if not compare_digest(data[4:20], md5(  # noqa: S324 - RFC 2866 §3: MD5
                    data[:4] + _ZERO16 + wire[20:] + secret).digest()) or (
                    Attr.MESSAGE_AUTHENTICATOR in a
                    and not verify_message_authenticator(wire, secret, _ZERO16)):
                counters["bad_authenticator"] += 1
                continue
            authenticator = data[4:20]
            key = answer_key(client.id, addr, data[1], authenticator)
            if key in in_burst:
                counters["duplicates"] += 1
                copies.append((key, addr))
                continue
            seen, answer = answers.lookup(key)
            if seen:
                counters["duplicates"] += 1
                if answer is not None:
                    send(answer, addr)
                continue
            status = _STATUS.get(_int(a, Attr.ACCT_STATUS_TYPE))
            raw_id = a.get(Attr.ACCT_SESSION_ID)
            session = status is not None and status in _SESSION_STATUS
            if status is None or (raw_id is None and session):
                counters["invalid_request"] += 1
                continue
            counters["accounting_requests"] += 1
            out = empty_reply(_ACCOUNTING_RESPONSE, data[1], authenticator, secret)
            in_burst.add(key)
            if raw_id is None or not session:  # Accounting-On/Off: earlier records first
                if not self._commit_burst(records, pending, copies, send):
                    return
                records, pending, copies = [], [], []
                self._close_all(client)
                counters["accounting_responses"] += 1
                answers.remember(key, out)
                send(out, addr)
                continue
            record = record_of(a, tgpp, client.id, raw_id.decode("utf-8", "replace"), status,
                               attach, at)
            self._baseline(record)
            records.append(record)
            pending.append((key, out, addr))
        self._commit_burst(records, pending, copies, send)

    def _commit_burst(self, records: list[AcctRecord],
                      pending: list[tuple[bytes, bytes, tuple[str, int]]],
                      copies: list[tuple[bytes, tuple[str, int]]],
                      send: Callable[[bytes, tuple[str, int]], None]) -> bool:
        """Write ``records`` in one transaction, then answer; False if the commit failed."""
        if not records:
            return True
        new = self._new_sessions  # sessions first seen in this burst have no row yet
        if not self.accounting.commit(records, {r.session_key for r in records
                                                if r.session_key not in new}):
            return False  # nothing answered or remembered: the retransmissions come again
        outs = {key: out for key, out, _addr in pending}
        self._answers.remember_many(outs.items())
        for _key, out, addr in pending:
            send(out, addr)
        for key, addr in copies:
            copy = outs.get(key)
            if copy is not None:
                send(copy, addr)
        self.counters["accounting_responses"] += len(pending)
        self._metered(records)
        return True

    def _baseline(self, record: AcctRecord) -> None:
        """The session's bytes before this record (from the store the first time)."""
        if record.session_key not in self._totals:
            stored = self.accounting.get(record.session_key)
            self._totals[record.session_key] = (
                0 if stored is None else stored.in_octets + stored.out_octets)
            if stored is None:
                self._new_sessions.add(record.session_key)

    def _close_all(self, client: GatewayClient) -> None:
        """Accounting-On/Off (RFC 2866 §5.1): the gateway restarted; its sessions are over."""
        now = self.clock().isoformat()
        self.accounting.close_client(client.id, now)

    def _metered(self, records: list[AcctRecord]) -> None:
        """After a commit: the burst's session events to the fraud detectors and the bytes
        accounted since each session's last record to the volume caps, each in one call."""
        with self._meter_lock:
            if self.observer is not None or self.observe_sessions is not None:
                # a session first seen with this record is a start (its total is already kept)
                new = self._new_sessions
                known = {r.session_key for r in records if r.session_key not in new}
                rows = session_rows(records, known)
                at = time.time()
                if self.observe_sessions is not None:
                    self.observe_sessions(at, rows)
                elif self.observer is not None:
                    for row in rows:
                        self.observer(session_event(at, row))
            for record in records:
                self._new_sessions.discard(record.session_key)
            totals = self._totals
            if self.usage is None:
                for record in records:
                    totals[record.session_key] = record.in_octets + record.out_octets
                return
            usage: list[tuple[ImsiDigits, int]] = []
            keys: list[str] = []
            for record in records:
                total = record.in_octets + record.out_octets
                before = totals.get(record.session_key, 0)
                if total > before:
                    totals[record.session_key] = total
                    if record.imsi is not None:
                        try:
                            usage.append((imsi_digits(record.imsi), total - before))
                            keys.append(record.session_key)
                        except SimtrustError as exc:  # one bad record does not stop the rest
                            _log.error("volume metering of %s failed: %s", record.session_key,
                                       exc.detail)
                if record.status == "closed":
                    totals.pop(record.session_key, None)
            if usage:
                self._meter(usage, keys)

    def _meter(self, usage: list[tuple[ImsiDigits, int]], keys: list[str]) -> None:
        """Count the burst's bytes against the volume caps: one ``meter_many`` call when the
        sink has it (a failure there counted nothing: then record by record)."""
        assert self.usage is not None
        at = time.time()
        meter_many = getattr(self.usage, "meter_many", None)
        if meter_many is not None:
            try:
                meter_many(usage, at=at)
                return
            except SimtrustError as exc:
                _log.warning("volume metering of a burst failed (%s); record by record",
                             exc.detail)
        for (imsi, octets), key in zip(usage, keys, strict=True):
            try:
                self.usage.meter(imsi, octets, at=at)
            except SimtrustError as exc:  # one bad record does not stop the rest
                _log.error("volume metering of %s failed: %s", key, exc.detail)


def _int(attributes: dict[int, bytes], kind: int) -> int:
    value = attributes.get(kind)
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else 0
