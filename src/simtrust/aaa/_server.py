"""The AAA server logic: Access-Request → attach decision → Accept/Reject, and accounting.

Transport-free (the UDP listener hands datagrams in, sends what comes out), so
every rule is testable without sockets. Access (RFC 2865 §4.1–§4.3, TS 29.061
§16.4): the SIM from 3GPP-IMSI (or a digit User-Name), the equipment from
3GPP-IMEISV, the serving network from 3GPP-SGSN-MCC-MNC, the APN from
Called-Station-Id, the MSISDN from Calling-Station-Id; the enterprise APN's
second-level credentials (PAP RFC 2865 §5.2, CHAP §5.3); then the subscriber
package's attach decision (SIM state, blocklist, roaming, binding, tenant
policy), which also leases the address. Accounting (RFC 2866 §4.1/§4.2) is
answered after the group commit of :mod:`._sessions`. Datagrams that fail a
check — unknown source, bad length, bad authenticator or
Message-Authenticator (RFC 3579 §3.2), EAP without Message-Authenticator
(§3.3), over the per-client rate — are counted and dropped silently, as
RFC 2865 §3 asks. Retransmissions (same client, identifier and authenticator)
get the cached answer (RFC 5080 §2.2.2); the per-client rate limit and that
cache are :mod:`._admission`. With a storm guard
(:class:`~simtrust.detect.StormGuard`, GSMA TS.34 §4), an Access-Request over
its subscriber's tenant or TAC limit is silently discarded too (RFC 2865 §2:
the NAS retransmits and backs off) and counted as ``storm_dropped``. What the
server answered is handed to the fraud detectors as events (:mod:`._events`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from simtrust.aaa._accounting import AccountingPath
from simtrust.aaa._admission import AnswerCache, ClientRateLimit, answer_key
from simtrust.aaa._apn import DEFAULT_SESSION_TIMEOUT, ApnAccessStore
from simtrust.aaa._clients import GatewayClient, GatewayClients
from simtrust.aaa._commit import AuditCommitter, AuditJob, DecidedBurst
from simtrust.aaa._events import auth_event, request_cell, text_value
from simtrust.aaa._ports import EapHandler, EapOutcomeLike, UsageSink
from simtrust.aaa._radius import (
    Attr,
    Code,
    MalformedPacket,
    Packet,
    Vendor,
    chap_response,
    decode,
    mppe_encrypt,
    unhide_password,
    verify_message_authenticator,
)
from simtrust.aaa._sessions import AccountingLog
from simtrust.audit import AuditEntry
from simtrust.crypto import pooled_random
from simtrust.detect import SessionRow, SimEvent, StormGuard
from simtrust.domain import Imei, ImeiSv, parse_equipment
from simtrust.errors import SimtrustError
from simtrust.subscriber import AttachEngine, Imsi, Plmn, SimState

__all__ = ["COUNTERS", "EapHandler", "RadiusServer", "UsageSink"]

_log = logging.getLogger("simtrust.aaa.radius")
_ZERO16 = bytes(16)

COUNTERS = (
    "access_requests", "accepts", "rejects", "challenges", "accounting_requests",
    "accounting_responses", "malformed", "unknown_client", "bad_authenticator",
    "missing_message_authenticator", "duplicates", "rate_limited", "unexpected_code",
    "invalid_request", "in_flight_dropped", "overload_dropped", "tls_refused", "storm_dropped",
    "internal_errors",
)

_PARSED_MAX = 200_000  # parsed identifiers kept (the cache is dropped when full)

class _Staged:
    """An admitted Access-Request that passed the checks before its decision."""

    __slots__ = ("client", "has_ma", "is_eap", "key", "request")

    def __init__(self, client: GatewayClient, request: Packet, key: bytes,
                 has_ma: bool, is_eap: bool) -> None:
        self.client = client
        self.request = request
        self.key = key
        self.has_ma = has_ma
        self.is_eap = is_eap


class RadiusServer(AccountingPath):
    """Answers Access-Requests and records Accounting-Requests for configured gateways."""

    def __init__(
        self,
        clients: GatewayClients,
        attach: AttachEngine,
        apns: ApnAccessStore,
        accounting: AccountingLog,
        audit: Any,
        clock: Callable[[], datetime],
        *,
        usage: UsageSink | None = None,
        eap: EapHandler | None = None,
        dup_ttl: float = 30.0,
        dup_max: int = 200_000,
        client_rate: float = 50_000.0,
        client_burst: float = 10_000.0,
        max_in_flight: int = 20_000,
        storm: StormGuard | None = None,
        observer: Callable[[SimEvent], object] | None = None,
        observe_sessions: Callable[[float, list[SessionRow]], object] | None = None,
    ) -> None:
        self.clients = clients
        self.observer = observer
        self.observe_sessions = observe_sessions  # a burst's session events in one call
        self.storm = storm
        self._storm_lock = threading.Lock()
        self.attach = attach
        self.apns = apns
        self.accounting = accounting
        self.audit = audit
        self.clock = clock
        self.usage = usage
        self.eap = eap
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._answers = AnswerCache(ttl=dup_ttl, capacity=dup_max)
        self._rates = ClientRateLimit(rate=client_rate, burst=client_burst)
        self._max_in_flight = max_in_flight
        self._in_flight: dict[int, int] = {}
        self._flight_lock = threading.Lock()
        self._local = threading.local()
        self.committer = AuditCommitter(audit)
        self._totals: dict[str, int] = {}
        self._new_sessions: set[str] = set()
        self._meter_lock = threading.Lock()
        self._packed: dict[str, bytes] = {}
        self._plmns: dict[str, Plmn] = {}
        # Identifiers parsed once (validated values, immutable): the hot path of
        # every Access-Request would otherwise re-check digits and Luhn each time.
        self._imsis: dict[str, Imsi] = {}
        self._imeis: dict[str, Imei] = {}
        accounting.on_committed = self._metered

    def __repr__(self) -> str:
        return f"RadiusServer({self.counters['access_requests']} access, " \
               f"{self.counters['accounting_requests']} accounting)"

    def as_worker(self, index: int, count: int) -> None:
        """Serve as RADIUS worker ``index`` of ``count`` processes sharing one port, each
        fed an even share of every gateway's datagrams by the kernel (:mod:`._steer`):
        each keeps 1/``count`` of a gateway's rate, burst and in-flight bounds, so the
        gateway's bounds over all workers are the configured ones; the EAP server marks
        its States with ``index`` and takes re-authentication identities from the store."""
        if count < 1 or not 0 <= index < count:
            raise ValueError("worker index must be below the worker count")
        self._rates = self._rates.shared(count)
        self._max_in_flight = max(1, self._max_in_flight // count)
        as_worker = getattr(self.eap, "as_worker", None)
        if as_worker is not None:
            as_worker(index)

    # -- common checks -----------------------------------------------------------

    def _admit(self, data: bytes, addr: tuple[str, int], codes: tuple[int, ...],
               secret: bytes | None = None
               ) -> tuple[GatewayClient, Packet, bytes, bytes] | None:
        client = self.clients.match(addr[0])
        if client is None:
            self.counters["unknown_client"] += 1
            return None
        if secret is not None:
            client = replace(client, secret=secret)
        if not self._rates.take(client.id):
            self.counters["rate_limited"] += 1
            return None
        try:
            packet = decode(data)
        except MalformedPacket:
            self.counters["malformed"] += 1
            return None
        if packet.code not in codes:
            self.counters["unexpected_code"] += 1
            return None
        wire = data[: int.from_bytes(data[2:4], "big")]
        key = answer_key(client.id, addr, packet.identifier, packet.authenticator)
        return client, packet, wire, key

    # -- Access-Request ------------------------------------------------------------

    def handle_auth(self, data: bytes, addr: tuple[str, int],
                    send: Callable[[bytes], None] | None = None, *,
                    secret: bytes | None = None) -> bytes | None:
        """The answer to one datagram on the authentication port, or None.

        An answer whose audit record this server writes itself goes out after that
        record is committed: with ``send``, through ``send`` once the group commit is
        done (and None is returned); without, after a synchronous append. ``secret``
        replaces the client's shared secret (RadSec's fixed ``radsec``, RFC 6614 §2.3).
        """
        self._local.pending = []
        staged = self._stage(data, addr, secret)
        if not isinstance(staged, _Staged):
            return staged
        try:
            return self._answer_auth(staged, send)
        except BaseException:
            self._answers.forget(staged.key)
            raise

    def handle_auth_burst(self, burst: list[tuple[bytes, tuple[str, int]]],
                          send: Callable[[bytes, tuple[str, int]], None]
                          ) -> list[tuple[bytes, tuple[str, int]]]:
        """The answers to datagrams that arrived together on the authentication port.

        The attach decisions of the burst are audited in one group-commit submission
        (:meth:`AttachEngine.deferred_audit`): the answers are returned, and
        remembered for retransmissions, only once every record is on disk. Answers
        whose audit this server writes itself go out through ``send(answer, addr)``
        after their own commit, as in :meth:`handle_auth`. If the burst's commit
        fails nothing is answered and retransmissions are worked on afresh.
        The burst's EAP responses are answered together by the EAP server
        (:meth:`EapHandler.respond_many`), so the AuC vectors they need share one
        durable SQN commit; each answer is then built as in :meth:`handle_auth`.
        :meth:`decide_auth_burst` and :meth:`commit_auth_bursts` are its two halves.
        """
        decided = self.decide_auth_burst(burst, send)
        self.commit_auth_bursts([decided])
        return decided.answers

    def decide_auth_burst(self, burst: list[tuple[bytes, tuple[str, int]]],
                          send: Callable[[bytes, tuple[str, int]], None]) -> DecidedBurst:
        """Decide a burst as :meth:`handle_auth_burst` does, but do not store its attach
        decisions: :meth:`commit_auth_bursts` does (on any thread), and only then may
        the answers in :attr:`DecidedBurst.answers` be sent."""
        done = DecidedBurst()
        eap: list[tuple[_Staged, tuple[str, int]]] = []
        self._local.deferred = done.decided
        audited: list[AuditJob] = []
        self._local.audited = audited
        try:
            with self.attach.deferred_audit(done.held):
                for data, addr in burst:
                    self._collect(done.answers, addr, partial(
                        self._stage_or_answer, data, addr, send, eap))
                if eap:
                    self._answer_eap(eap, send, done.answers)
        except BaseException:
            for key, _answer in done.decided:
                self._answers.forget(key)
            for staged, _addr in eap:
                self._answers.forget(staged.key)
            for _entries, _done, failed in audited:
                failed()
            raise
        finally:
            self._local.deferred = self._local.audited = None
        self.committer.submit_many(audited)  # one hand-off per burst (aaa-eap-cpu.md)
        return done

    def commit_auth_bursts(self, bursts: list[DecidedBurst]) -> None:
        """Store the attach decisions of decided bursts in one durable group-commit
        submission, then remember their answers for retransmissions; if the commit
        raises, the bursts' requests are forgotten (their retransmissions are decided
        afresh) and none of their answers may be sent."""
        try:
            self.attach.commit_deferred([held for burst in bursts for held in burst.held])
        except BaseException:
            for burst in bursts:
                for key, _answer in burst.decided:
                    self._answers.forget(key)
            raise
        self._answers.remember_many(item for burst in bursts for item in burst.decided)

    def _answer_eap(self, eap: list[tuple[_Staged, tuple[str, int]]],
                    send: Callable[[bytes, tuple[str, int]], None],
                    answers: list[tuple[bytes, tuple[str, int]]]) -> None:
        assert self.eap is not None
        outcomes = self.eap.respond_many([
            (b"".join(staged.request.get_all(Attr.EAP_MESSAGE)),
             staged.request.get(Attr.STATE), f"radius:{staged.client.name}")
            for staged, _addr in eap])
        for (staged, addr), outcome in zip(eap, outcomes, strict=True):
            self._collect(answers, addr, partial(self._answer_staged, staged, _to(send, addr),
                                                 outcome))

    def _collect(self, answers: list[tuple[bytes, tuple[str, int]]], addr: tuple[str, int],
                 work: Callable[[], bytes | None]) -> None:
        """Run one datagram's ``work`` of a burst; its answer joins ``answers`` (a bad
        datagram is counted and dropped, the burst goes on)."""
        self._local.pending = []
        try:
            answer = work()
        except (ValueError, SimtrustError) as exc:
            self.counters["malformed"] += 1
            _log.warning("RADIUS auth datagram from %s dropped: %s", addr[0], exc)
            return
        if answer is not None:
            answers.append((answer, addr))

    def _stage_or_answer(self, data: bytes, addr: tuple[str, int],
                         send: Callable[[bytes, tuple[str, int]], None],
                         eap: list[tuple[_Staged, tuple[str, int]]]) -> bytes | None:
        """A burst's datagram: answered now, or (an EAP response) kept in ``eap`` to be
        answered with the burst's other EAP responses."""
        staged = self._stage(data, addr, None)
        if not isinstance(staged, _Staged):
            return staged
        if staged.is_eap and self.eap is not None:
            eap.append((staged, addr))
            return None
        return self._answer_staged(staged, _to(send, addr))

    def _stage(self, data: bytes, addr: tuple[str, int], secret: bytes | None
               ) -> _Staged | bytes | None:
        """Admit an Access-Request and run the checks before its decision: the request
        to decide, or what to answer now (a retransmission's cached answer, or None)."""
        admitted = self._admit(data, addr, (Code.ACCESS_REQUEST,), secret)
        if admitted is None:
            return None
        client, request, wire, key = admitted
        seen, answer = self._answers.lookup(key)
        if seen:
            self.counters["duplicates"] += 1
            return answer
        self._answers.remember(key, None)  # in progress: a retransmission meanwhile is dropped
        first = request.first()
        has_ma = Attr.MESSAGE_AUTHENTICATOR in first
        if has_ma and not verify_message_authenticator(wire, client.secret,
                                                        request.authenticator):
            self.counters["bad_authenticator"] += 1
            self._answers.forget(key)
            return None
        is_eap = Attr.EAP_MESSAGE in first
        if is_eap and not has_ma:
            self.counters["missing_message_authenticator"] += 1
            self._answers.forget(key)
            return None
        if self.storm is not None and not is_eap and not self._storm_admits(request):
            self.counters["storm_dropped"] += 1
            self._answers.forget(key)
            return None
        self.counters["access_requests"] += 1
        return _Staged(client, request, key, has_ma, is_eap)

    def _answer_staged(self, staged: _Staged, send: Callable[[bytes], None] | None,
                       outcome: EapOutcomeLike | None = None) -> bytes | None:
        try:
            return self._answer_auth(staged, send, outcome)
        except BaseException:
            self._answers.forget(staged.key)
            raise

    def _answer_auth(self, staged: _Staged, send: Callable[[bytes], None] | None,
                     outcome: EapOutcomeLike | None = None) -> bytes | None:
        client, request, key = staged.client, staged.request, staged.key
        reply = Packet(Code.ACCESS_REJECT, request.identifier)
        try:
            if staged.is_eap and self.eap is not None:
                self._eap(request, client, reply, outcome)
            elif staged.is_eap:
                self.counters["invalid_request"] += 1
                reply.add(Attr.REPLY_MESSAGE, b"EAP is not enabled")
            else:
                self._authorize(request, client, reply)
        except SimtrustError as exc:
            self.counters["invalid_request"] += 1
            reply = Packet(Code.ACCESS_REJECT, request.identifier)
            reply.add(Attr.REPLY_MESSAGE, exc.detail.encode("utf-8")[:253])
        if staged.has_ma or staged.is_eap:
            reply.add(Attr.MESSAGE_AUTHENTICATOR, _ZERO16)
        counter = {Code.ACCESS_ACCEPT: "accepts", Code.ACCESS_REJECT: "rejects",
                   Code.ACCESS_CHALLENGE: "challenges"}[reply.code]
        self.counters[counter] += 1
        out = reply.sign_response(request.authenticator, client.secret)
        pending: list[AuditEntry] = self._local.pending
        if not pending:
            deferred: list[tuple[bytes, bytes]] | None = getattr(
                self._local, "deferred", None)
            if deferred is not None:
                # In a burst: the answer is kept for retransmissions once the burst's
                # commit has made its decision durable (handle_auth_burst).
                deferred.append((key, out))
            else:
                self._answers.remember(key, out)
            return out
        self._local.pending = []
        if send is None:
            self.audit.append_many(pending, durable=True, returning=False)
            self._answers.remember(key, out)
            return out
        self._answers.remember(key, None)

        def done() -> None:
            self._answers.remember(key, out)
            send(out)

        job = (pending, done, partial(self._answers.forget, key))
        audited: list[AuditJob] | None = getattr(self._local, "audited", None)
        if audited is not None:
            audited.append(job)  # submitted with the burst's others (decide_auth_burst)
        else:
            self.committer.submit_many([job])
        return None

    def _record_audit(self, **fields: Any) -> None:
        """Queue an audit record for the answer being built (committed before it is sent)."""
        self._local.pending.append(AuditEntry(at=self.clock(), **fields))

    def _eap(self, request: Packet, client: GatewayClient, reply: Packet,
             outcome: EapOutcomeLike | None = None) -> None:
        """EAP over RADIUS (RFC 3579 §3.1): the EAP-Message fragments joined, the State
        echoed on a challenge; on EAP success the SIM's access is decided as for any
        Access-Request and the MSK goes out in MS-MPPE-Recv/Send-Key (RFC 2548 §2.4,
        RFC 3579 §3.3: first and second halves of the first 64 octets)."""
        assert self.eap is not None
        actor = f"radius:{client.name}"
        if outcome is None:
            outcome = self.eap.respond(b"".join(request.get_all(Attr.EAP_MESSAGE)),
                                       request.get(Attr.STATE), actor)
        if outcome.success:
            if self.observer is not None and outcome.imsi is not None:
                sim = self.attach.sim_view(outcome.imsi)
                event = auth_event(request, outcome.imsi,
                                   sim.tenant_id if sim is not None else "")
                if event is not None:
                    self.observer(event)
            self._authorize(request, client, reply, eap_imsi=outcome.imsi)
            if reply.code == Code.ACCESS_ACCEPT and outcome.msk is not None:
                _add_eap(reply, outcome.eap)
                salt = pooled_random(2)
                for vendor_type, key, high in ((Vendor.MS_MPPE_RECV_KEY, outcome.msk[:32], 0x80),
                                               (Vendor.MS_MPPE_SEND_KEY, outcome.msk[32:64], 0x81)):
                    value = mppe_encrypt(key, client.secret, request.authenticator,
                                         bytes((high | (salt[0] & 0x7E), salt[1])))
                    reply.add_vendor(Vendor.MICROSOFT, vendor_type, value)
                if outcome.imsi is not None:
                    reply.add(Attr.USER_NAME, outcome.imsi.encode())
                return
            reply.code = Code.ACCESS_REJECT
            _add_eap(reply, bytes((4, outcome.eap[1], 0, 4)))
            return
        if outcome.failure:
            reply.code = Code.ACCESS_REJECT
            _add_eap(reply, outcome.eap)
            return
        reply.code = Code.ACCESS_CHALLENGE
        _add_eap(reply, outcome.eap)
        if outcome.state is not None:
            reply.add(Attr.STATE, outcome.state)

    def _storm_admits(self, request: Packet) -> bool:
        """The storm guard's word on a (non-EAP) Access-Request: tenant of the SIM, TAC."""
        assert self.storm is not None
        imsi = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_IMSI))
        if imsi is None:
            name = request.text(Attr.USER_NAME)
            imsi = name if name is not None and name.isascii() and name.isdigit() else ""
        try:
            sim = self.attach.sim_view(Imsi(imsi).value) if imsi else None
        except SimtrustError:
            sim = None
        equipment = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_IMEISV)) or ""
        tac = equipment[:8] if len(equipment) >= 14 and equipment.isascii() else ""
        with self._storm_lock:
            admission = self.storm.admit(time.monotonic(), tenant=sim.tenant_id if sim else "",
                                         tac=tac, cell=request_cell(request), subject=imsi)
        return admission.admitted

    def _authorize(self, request: Packet, client: GatewayClient, reply: Packet, *,
                   eap_imsi: str | None = None) -> None:
        """Decide a (SIM-identified) access; fill ``reply`` as Accept or Reject.

        After EAP-AKA/AKA' the IMSI is the one the SIM proved; a 3GPP-IMSI that
        disagrees with it is refused.
        """
        eap = eap_imsi is not None
        imsi_text = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_IMSI))
        if eap:
            if imsi_text is not None and imsi_text != eap_imsi:
                self._reject(reply, "imsi-mismatch", "3GPP-IMSI differs from the EAP identity",
                             f"radius:{client.name}", None, imsi_text)
                return
            imsi_text = eap_imsi
        if imsi_text is None:
            name = request.text(Attr.USER_NAME)
            if name is not None and (name.isascii() and name.isdigit()) and 14 <= len(name) <= 15:
                imsi_text = name
        actor = f"radius:{client.name}"
        if imsi_text is None:
            self._reject(reply, "imsi-missing", "no 3GPP-IMSI in the request", actor, None)
            return
        imsi = self._imsis.get(imsi_text)
        if imsi is None:
            imsi = Imsi(imsi_text)
            if len(self._imsis) >= _PARSED_MAX:
                self._imsis.clear()
            self._imsis[imsi_text] = imsi
        sim = self.attach.sim_view(imsi.value)
        apn = (request.text(Attr.CALLED_STATION_ID) or "").strip().lower() or None
        if sim is not None and apn is not None and sim.apn is not None and apn != sim.apn:
            self._reject(reply, "apn-not-subscribed", f"SIM is not subscribed to APN {apn!r}",
                         actor, sim, imsi.value)
            return
        serving_text = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_SGSN_MCC_MNC))
        if serving_text:
            serving = self._plmns.get(serving_text)
            if serving is None:
                serving = Plmn.parse(serving_text)
                if len(self._plmns) < 10_000:
                    self._plmns[serving_text] = serving
        else:
            serving = Plmn(imsi.value[:3], imsi.value[3 : 3 + imsi.mnc_length])
        equipment = text_value(request.vendor(Vendor.TGPP, Vendor.TGPP_IMEISV))
        if equipment is None and eap:
            self._eap_without_equipment(reply, sim, imsi.value, serving, actor)
            return
        if equipment is None:
            self._reject(reply, "equipment-missing", "no 3GPP-IMEISV in the request", actor,
                         sim, imsi.value)
            return
        access = None
        if sim is not None:
            access = self.apns.access(sim.tenant_id, apn or sim.apn or "")
            if access.auth != "none" and not eap and not self._second_level(
                request, client, sim.tenant_id, access.apn, access.auth
            ):
                self._reject(reply, "apn-credentials", "second-level authentication failed",
                             actor, sim, imsi.value)
                return
        imei = self._imeis.get(equipment)
        if imei is None:
            parsed = parse_equipment(equipment)
            imei = parsed.imei if isinstance(parsed, ImeiSv) else parsed
            if len(self._imeis) >= _PARSED_MAX:
                self._imeis.clear()
            self._imeis[equipment] = imei
        decision = self.attach.decide(imsi, imei, serving, actor=actor)
        if not decision.allowed:
            reply.code = Code.ACCESS_REJECT
            reply.add(Attr.REPLY_MESSAGE, f"{decision.reason}: {decision.detail}"
                      .encode()[:253])
            return
        timeout = access.session_timeout if access is not None else DEFAULT_SESSION_TIMEOUT
        self._accept(reply, decision.address, decision.tenant_id, decision.iccid, timeout)

    def _eap_without_equipment(self, reply: Packet, sim: Any, imsi: str, serving: Plmn,
                               actor: str) -> None:
        """EAP access without 3GPP-IMEISV (Wi-Fi offload): the SIM proved itself; its
        state decides, the binding cannot be checked and the record says so."""
        if sim is None or sim.state not in (SimState.ACTIVE, SimState.TEST):
            state = "unknown" if sim is None else str(sim.state)
            self._reject(reply, f"sim-{state}", f"SIM is {state}", actor, sim, imsi)
            return
        address = self.attach.addresses.assign(sim.imsi, sim.tenant_id, sim.apn, sim.static_ip)
        self._record_audit(
            actor=actor, action="radius.access", subject=f"sim:{sim.iccid}", outcome="success",
            reason="eap-no-equipment", tenant_id=sim.tenant_id,
            details={"imsi": imsi, "serving_plmn": str(serving), "address": address},
        )
        self._accept(reply, address, sim.tenant_id, sim.iccid,
                     self.apns.access(sim.tenant_id, sim.apn or "").session_timeout)

    def _accept(self, reply: Packet, address: str | None, tenant_id: str | None,
                iccid: str | None, timeout: int) -> None:
        reply.code = Code.ACCESS_ACCEPT
        reply.add_int(Attr.SERVICE_TYPE, 2)  # Framed
        reply.add_int(Attr.FRAMED_PROTOCOL, 7)  # GPRS PDP Context (TS 29.061 §16.4.7)
        if address is not None:
            packed = self._packed.get(address)
            if packed is None:
                if len(self._packed) > 1_000_000:
                    self._packed.clear()
                packed = self._packed[address] = ipaddress.ip_address(address).packed
            if len(packed) == 4:
                reply.add(Attr.FRAMED_IP_ADDRESS, packed)
            else:
                reply.add(168, packed)  # Framed-IPv6-Address (RFC 6911 §3.1)
        reply.add(Attr.CLASS, f"simtrust:{tenant_id}:{iccid}".encode()[:253])
        reply.add_int(Attr.SESSION_TIMEOUT, timeout)

    def _second_level(self, request: Packet, client: GatewayClient, tenant_id: str, apn: str,
                      method: str) -> bool:
        user = request.text(Attr.USER_NAME)
        if user is None:
            return False
        hidden = request.get(Attr.USER_PASSWORD)
        chap = request.get(Attr.CHAP_PASSWORD)
        if hidden is not None and method in ("pap", "any"):
            password = unhide_password(hidden, client.secret, request.authenticator)
            return self.apns.check_pap(tenant_id, apn, user, password)
        if chap is not None and len(chap) == 17 and method in ("chap", "any"):
            stored = self.apns.password(tenant_id, apn, user)
            if stored is None:
                return False
            challenge = request.get(Attr.CHAP_CHALLENGE) or request.authenticator
            return hmac.compare_digest(chap[1:], chap_response(chap[0], stored, challenge))
        return False

    def _reject(self, reply: Packet, reason: str, detail: str, actor: str, sim: Any,
                imsi: str | None = None) -> None:
        reply.code = Code.ACCESS_REJECT
        reply.add(Attr.REPLY_MESSAGE, f"{reason}: {detail}".encode()[:253])
        self._record_audit(
            actor=actor, action="radius.access", subject=f"sim:{sim.iccid}" if sim else
            f"imsi:{imsi or '-'}", outcome="failure", reason=reason,
            tenant_id=sim.tenant_id if sim else None, details={"detail": detail, "imsi": imsi},
        )

def _to(send: Callable[[bytes, tuple[str, int]], None], addr: tuple[str, int]
        ) -> Callable[[bytes], None]:
    return lambda data: send(data, addr)


def _add_eap(reply: Packet, eap: bytes) -> None:
    """EAP-Message attributes of at most 253 octets each (RFC 3579 §3.1)."""
    for offset in range(0, len(eap), 253):
        reply.add(Attr.EAP_MESSAGE, eap[offset : offset + 253])
