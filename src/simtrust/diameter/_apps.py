"""S6a (HSS) and S13 (EIR) over the Diameter node (TS 29.272 §5, §6, §7).

With a :class:`~simtrust.detect.StormGuard`, AIR and ULR are admitted per
tenant and per TAC (the IMEI of ULR's Terminal-Information) first; a refused
request is answered 3004 DIAMETER_TOO_BUSY (RFC 6733 §7.1.3) before any
vector is generated or decision taken (GSMA TS.34 §4 back-off). With an
``observer``, every answered AIR (``auth``, or ``auth-sync-failure`` when it
carries AUTS) and ULR (``location`` with the serving PLMN and IMEI) becomes a
:class:`~simtrust.detect.SimEvent` for the fraud detectors.

Handlers turn requests into calls on the subscriber package's
:class:`~simtrust.subscriber.HssService` and
:class:`~simtrust.subscriber.EirService` and their outcomes into answers:
AIA with E-UTRAN-Vectors (§7.2.6), ULA with ULA-Flags and Subscription-Data
(§7.2.4, §7.3.2), PUA (§7.2.16), ECA with Equipment-Status (§7.2.20).
Refusals are Experimental-Result codes of §7.4 (vendor 10415): 5001 user
unknown, 5004 roaming not allowed, 5420 unknown EPS subscription, 4181
authentication data unavailable; malformed requests get the RFC 6733 codes
(5005 missing AVP, 5004 invalid value) with Failed-AVP. The HSS's cancel and
insert events become CLR (§7.2.7, Cancellation-Type per cause) and IDR
(§7.2.9) requests to the MME holding the registration.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from simtrust.detect import SimEvent, StormGuard, backoff_answer
from simtrust.diameter import _dictionary as d
from simtrust.diameter._codec import (
    FLAG_PROXIABLE,
    FLAG_REQUEST,
    HEADER_LEN,
    Avp,
    DiameterError,
    Message,
    encode_avp,
)
from simtrust.diameter._node import BatchHandler, DiameterNode, Handler, PeerInfo, answer_to
from simtrust.domain import cell_key, imsi_digits
from simtrust.errors import InvalidIdentifier, SimtrustError
from simtrust.subscriber import (
    AuthInfo,
    AuthQuery,
    EirService,
    EquipmentStatus,
    HssEvent,
    HssOutcome,
    HssService,
    Imei,
    ImeiSv,
    Plmn,
    ServingNode,
    SubscriptionProfile,
    equipment_from_terminal,
)

__all__ = ["CoreNetworkApps", "decode_plmn", "encode_plmn"]

_log = logging.getLogger("simtrust.diameter.s6a")

_V = d.VENDOR_3GPP
#: Placeholder of an AIA not built yet in :meth:`CoreNetworkApps.air_many`.
_PENDING = DiameterError(d.UNABLE_TO_COMPLY, "not answered")

_EXPERIMENTAL = {
    HssOutcome.USER_UNKNOWN: d.ERROR_USER_UNKNOWN,
    HssOutcome.UNKNOWN_EPS_SUBSCRIPTION: d.ERROR_UNKNOWN_EPS_SUBSCRIPTION,
    HssOutcome.EQUIPMENT_REJECTED: d.ERROR_UNKNOWN_EPS_SUBSCRIPTION,
    HssOutcome.ROAMING_NOT_ALLOWED: d.ERROR_ROAMING_NOT_ALLOWED,
    HssOutcome.AUTH_DATA_UNAVAILABLE: d.AUTHENTICATION_DATA_UNAVAILABLE,
}

_EQUIPMENT = {
    EquipmentStatus.WHITELISTED: d.EQUIPMENT_WHITELISTED,
    EquipmentStatus.BLACKLISTED: d.EQUIPMENT_BLACKLISTED,
    EquipmentStatus.GREYLISTED: d.EQUIPMENT_GREYLISTED,
}


#: Visited-PLMN-Ids decoded so far (a handful in practice; cleared when it grows past 1,024).
_PLMNS: dict[bytes, Plmn] = {}


def decode_plmn(octets: bytes) -> Plmn:
    """A Visited-PLMN-Id (TS 29.272 §7.3.9: TS 24.008 §10.5.1.13 BCD) as a :class:`Plmn`."""
    plmn = _PLMNS.get(octets)
    if plmn is None:
        plmn = _decode_plmn(octets)
        if len(_PLMNS) >= 1_024:
            _PLMNS.clear()
        _PLMNS[bytes(octets)] = plmn
    return plmn


def _decode_plmn(octets: bytes) -> Plmn:
    if len(octets) != 3:
        raise DiameterError(d.INVALID_AVP_LENGTH, "Visited-PLMN-Id must be 3 octets")
    nibbles = [octets[0] & 0xF, octets[0] >> 4, octets[1] & 0xF, octets[1] >> 4,
               octets[2] & 0xF, octets[2] >> 4]
    mcc_digits = nibbles[0:3]
    mnc_digits = [nibbles[4], nibbles[5]] + ([] if nibbles[3] == 0xF else [nibbles[3]])
    if any(n > 9 for n in mcc_digits + mnc_digits):
        raise DiameterError(d.INVALID_AVP_VALUE, "Visited-PLMN-Id is not BCD")
    try:
        return Plmn("".join(map(str, mcc_digits)), "".join(map(str, mnc_digits)))
    except InvalidIdentifier as exc:
        raise DiameterError(d.INVALID_AVP_VALUE, exc.detail) from exc


def encode_plmn(plmn: Plmn) -> bytes:
    mcc = [int(c) for c in plmn.mcc]
    mnc = [int(c) for c in plmn.mnc]
    third = mnc[2] if len(mnc) == 3 else 0xF
    return bytes([mcc[1] << 4 | mcc[0], third << 4 | mcc[2], mnc[1] << 4 | mnc[0]])


_SUCCESS_AVP = Avp.u32(d.RESULT_CODE, d.SUCCESS)
#: Version and length, flags and command code, application, hop-by-hop, end-to-end (§3).
_ANSWER_HEADER = struct.Struct(">I I I I I")
#: Code, flags and length, vendor of an AVP with the V-bit (RFC 6733 §4.1).
_VENDOR_HEADER = struct.Struct(">I I I")
#: Vendor-Specific-Application-Id of S6a and S13 answers (3GPP, Auth-Application-Id).
_APP_AVPS = {app: Avp.grouped(d.VENDOR_SPECIFIC_APPLICATION_ID, [
    Avp.u32(d.VENDOR_ID, _V), Avp.u32(d.AUTH_APPLICATION_ID, app)])
    for app in (d.APP_S6A, d.APP_S13)}


def _app_avp(app: int) -> Avp:
    avp = _APP_AVPS.get(app)
    if avp is None:
        avp = Avp.grouped(d.VENDOR_SPECIFIC_APPLICATION_ID, [
            Avp.u32(d.VENDOR_ID, _V), Avp.u32(d.AUTH_APPLICATION_ID, app)])
    return avp


def _vheader(code: int, size: int) -> bytes:
    """The header of a vendor-specific (3GPP), mandatory AVP of ``size`` value octets."""
    return _VENDOR_HEADER.pack(code, 0xC0000000 | (12 + size), _V)


#: Item-Number 1..5 (an AIR asks for at most five vectors) and the headers of the
#: fixed-size E-UTRAN-Vector fields (TS 29.272 §7.3.18: RAND and AUTN 16 octets, KASME 32).
_ITEMS = {i: encode_avp(d.ITEM_NUMBER, i.to_bytes(4, "big"), _V) for i in range(1, 6)}
_RAND_HEAD, _AUTN_HEAD, _KASME_HEAD = (_vheader(d.RAND, 16), _vheader(d.AUTN, 16),
                                       _vheader(d.KASME, 32))


def _vector_avp(item: int, vector: tuple[bytes, bytes, bytes, bytes]) -> bytes:
    """One E-UTRAN-Vector AVP (§7.3.18), the bytes of encoding each field as an AVP."""
    rand, xres, autn, kasme = vector
    head = _ITEMS.get(item)
    if head is None or len(rand) != 16 or len(autn) != 16 or len(kasme) != 32:
        head = head or encode_avp(d.ITEM_NUMBER, item.to_bytes(4, "big"), _V)
        return encode_avp(d.E_UTRAN_VECTOR, b"".join((
            head, encode_avp(d.RAND, rand, _V), encode_avp(d.XRES, xres, _V),
            encode_avp(d.AUTN, autn, _V), encode_avp(d.KASME, kasme, _V))), _V)
    size = len(xres)
    pad = -size & 3
    inner = 16 + 28 + 12 + size + pad + 28 + 44
    return b"".join((_vheader(d.E_UTRAN_VECTOR, inner), head, _RAND_HEAD, rand,
                     _vheader(d.XRES, size), xres, b"\x00" * pad, _AUTN_HEAD, autn,
                     _KASME_HEAD, kasme))


def _required(message: Message, code: int, vendor: int = 0) -> Avp:
    avp = message.find(code, vendor)
    if avp is None:
        # RFC 6733 §7.5: Failed-AVP holds an example of the missing AVP.
        raise DiameterError(d.MISSING_AVP, f"{d.AVPS[(code, vendor)][0]} is required",
                            failed_avp=Avp(code, b"\x00" * 4, vendor).encode())
    return avp


def _cell(request: Message) -> str:
    """The cell (E-UTRAN-Cell-Global-Identity, TS 29.272 §7.3.117) or else the tracking area
    (Tracking-Area-Identity, §7.3.118) a request names where the MME sends one; ``""``
    when absent or malformed (a location hint never fails the request)."""
    for code, kind in ((d.E_UTRAN_CELL_GLOBAL_IDENTITY, "ecgi"),
                       (d.TRACKING_AREA_IDENTITY, "tai")):
        avp = request.find(code, _V)
        key = cell_key(kind, avp.data) if avp is not None else ""
        if key:
            return key
    return ""


def _equipment(request: Message) -> Imei | ImeiSv:
    """The IMEI(SV) of the request's Terminal-Information (5005 when absent, 5004 when bad)."""
    terminal = request.find(d.TERMINAL_INFORMATION, _V)
    if terminal is None:
        raise DiameterError(d.MISSING_AVP, "Terminal-Information (IMEI) is required",
                            failed_avp=Avp(d.TERMINAL_INFORMATION, b"", _V).encode())
    imei_avp = None
    sv = None
    for child in terminal.children():
        if child.code == d.IMEI and child.vendor == _V:
            imei_avp = child
        elif child.code == d.SOFTWARE_VERSION and child.vendor == _V:
            sv = child.as_text()
    if imei_avp is None:
        raise DiameterError(d.MISSING_AVP, "Terminal-Information has no IMEI",
                            failed_avp=Avp(d.IMEI, b"", _V).encode())
    try:
        return equipment_from_terminal(imei_avp.as_text(), sv)
    except InvalidIdentifier as exc:
        raise DiameterError(d.INVALID_AVP_VALUE, exc.detail,
                            failed_avp=imei_avp.encode()) from exc


class CoreNetworkApps:
    """The S6a and S13 handlers over the HSS and EIR, plus CLR/IDR origination."""

    def __init__(self, hss: HssService, eir: EirService, origin_host: str,
                 origin_realm: str, *, storm: StormGuard | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 observer: Callable[[SimEvent], object] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self._hss = hss
        self._observer = observer
        self._wall = wall
        self.storm = storm
        self._clock = clock
        # handlers run on executor threads; the guard's buckets are not thread-safe
        self._storm_lock = threading.Lock()
        self._eir = eir
        self._host = origin_host
        self._realm = origin_realm
        self._node: DiameterNode | None = None
        self._session = itertools.count(1)
        self._session_high = int.from_bytes(os.urandom(4), "big")
        # The AVPs that end every S6a/S13 answer (built once).
        self._tail = (Avp.u32(d.AUTH_SESSION_STATE, d.NO_STATE_MAINTAINED),
                      Avp.text(d.ORIGIN_HOST, origin_host),
                      Avp.text(d.ORIGIN_REALM, origin_realm))
        self._tail_raw = b"".join(a.encode() for a in self._tail)
        # What follows Session-Id in every successful AIA, up to Authentication-Info.
        self._aia_head = _app_avp(d.APP_S6A).encode() + _SUCCESS_AVP.encode()

    def __repr__(self) -> str:
        return f"CoreNetworkApps({self._host!r})"

    def batch_handlers(self) -> Mapping[tuple[int, int], BatchHandler]:
        """Handlers served a burst of requests at once (AIR: one group commit)."""
        return {(d.APP_S6A, d.CMD_AIR): self.air_many}

    def handlers(self) -> Mapping[tuple[int, int], Handler]:
        return {
            (d.APP_S6A, d.CMD_AIR): self.air,
            (d.APP_S6A, d.CMD_ULR): self.ulr,
            (d.APP_S6A, d.CMD_PUR): self.pur,
            (d.APP_S13, d.CMD_ECR): self.ecr,
        }

    def attach(self, node: DiameterNode) -> None:
        """Send the HSS's cancel/insert events through ``node`` from now on."""
        self._node = node
        self._hss.subscribe(self._on_event)

    def detach(self) -> None:
        self._hss.unsubscribe(self._on_event)
        self._node = None

    # -- answers -------------------------------------------------------------

    def _answer(self, request: Message, avps: list[Avp], app: int) -> Message:
        return answer_to(request, [
            _required(request, d.SESSION_ID), _app_avp(app), *avps, *self._tail])

    def _refusal(self, request: Message, outcome: HssOutcome, app: int) -> Message:
        code = _EXPERIMENTAL.get(outcome)
        if code is None:
            return self._answer(request, [Avp.u32(d.RESULT_CODE, d.UNABLE_TO_COMPLY)], app)
        return self._answer(request, [Avp.grouped(d.EXPERIMENTAL_RESULT, [
            Avp.u32(d.VENDOR_ID, _V), Avp.u32(d.EXPERIMENTAL_RESULT_CODE, code)])], app)

    def _admit(self, imsi: str, tac: str = "", cell: str = "") -> None:
        """Raise 3004 when the storm guard refuses this subscriber's tenant, TAC or cell now."""
        if self.storm is None:
            return
        tenant = self._hss.tenant_of(imsi) or ""
        with self._storm_lock:
            admission = self.storm.admit(self._clock(), tenant=tenant, tac=tac, cell=cell,
                                         subject=imsi)
        if not admission.admitted:
            answer = backoff_answer("diameter", admission)
            raise DiameterError(answer.code, f"too busy ({admission.scope} limit); "
                                f"retry after {admission.retry_after_s} s")

    def storm_stats(self) -> dict[str, object] | None:
        """The storm guard's counters (None without a guard)."""
        if self.storm is None:
            return None
        with self._storm_lock:
            return self.storm.stats()

    def _observe(self, imsi: str, kind: str, visited: Plmn, imei: str = "",
                 cell: str = "") -> None:
        if self._observer is None:
            return
        try:
            event = SimEvent(self._wall(), imsi_digits(imsi), kind,
                             plmn=visited.mcc + visited.mnc, cell=cell,
                             imei=imei, tenant=self._hss.tenant_of(imsi) or "")
        except SimtrustError:
            return  # not a digit IMSI: nothing a per-SIM detector can key on
        self._observer(event)

    @staticmethod
    def _actor(peer: PeerInfo) -> str:
        return f"diameter:{peer.host}"

    # -- S6a -----------------------------------------------------------------

    def air(self, request: Message, peer: PeerInfo) -> Message | bytes:
        """Authentication-Information-Request (TS 29.272 §5.2.3.1)."""
        query = self._air_query(request, peer)
        self._admit(query.imsi)
        return self._aia(request, query, self._hss.authentication_info(
            query.imsi, query.visited, query.count, query.resync, actor=query.actor))

    def air_many(
        self, requests: Sequence[tuple[Message, PeerInfo]]
    ) -> list[Message | bytes | Exception]:
        """AIRs that arrived together: each checked and admitted alone, their vectors
        issued in one group commit of the AuC (one durable transaction and audit
        append for all); an entry is the AIA or the DiameterError of that request."""
        out: list[Message | bytes | Exception] = []
        served: list[tuple[int, Message, AuthQuery]] = []
        for request, peer in requests:
            try:
                query = self._air_query(request, peer)
                self._admit(query.imsi)
            except DiameterError as exc:
                out.append(exc)
                continue
            served.append((len(out), request, query))
            out.append(_PENDING)
        results = self._hss.authentication_info_many([q for _, _, q in served])
        for (index, request, query), result in zip(served, results, strict=True):
            try:
                out[index] = self._aia(request, query, result)
            except DiameterError as exc:
                out[index] = exc
        return out

    def _air_query(self, request: Message, peer: PeerInfo) -> AuthQuery:
        _required(request, d.SESSION_ID)
        imsi = _required(request, d.USER_NAME).as_text()
        visited = decode_plmn(_required(request, d.VISITED_PLMN_ID, _V).data)
        count, resync = 1, None
        info = request.find(d.REQUESTED_EUTRAN_AUTHENTICATION_INFO, _V)
        if info is None:
            # Only E-UTRAN vectors are served; UTRAN/GERAN quintets/triplets are not.
            raise DiameterError(d.MISSING_AVP, "Requested-EUTRAN-Authentication-Info is required",
                                failed_avp=Avp(d.REQUESTED_EUTRAN_AUTHENTICATION_INFO, b"",
                                               _V).encode())
        for child in info.children():
            if child.code == d.NUMBER_OF_REQUESTED_VECTORS and child.vendor == _V:
                count = child.as_u32()
            elif child.code == d.RE_SYNCHRONIZATION_INFO and child.vendor == _V:
                if len(child.data) != 30:
                    raise DiameterError(d.INVALID_AVP_LENGTH,
                                        "Re-Synchronization-Info is RAND (16) || AUTS (14)",
                                        failed_avp=child.encode())
                resync = (child.data[:16], child.data[16:])
        if count < 1:
            raise DiameterError(d.INVALID_AVP_VALUE, "Number-Of-Requested-Vectors must be >= 1")
        return AuthQuery(imsi, visited, count, resync, self._actor(peer))

    def _aia(self, request: Message, query: AuthQuery, result: AuthInfo) -> Message | bytes:
        """The AIA for ``result``, encoded when it carries vectors (and the fraud event of
        the answered AIR)."""
        if result.outcome is not HssOutcome.USER_UNKNOWN:
            kind = ("auth-sqn-ahead" if result.sqn_ahead else
                    "auth-sync-failure" if query.resync else "auth")
            self._observe(query.imsi, kind, query.visited)
        if result.outcome is not HssOutcome.OK:
            return self._refusal(request, result.outcome, d.APP_S6A)
        # The AIA's wire form straight from the vectors (§7.3.18; no Avp per field, no
        # Message): Session-Id, then the constant Vendor-Specific-Application-Id and
        # Result-Code, Authentication-Info, the constant tail; the bytes
        # ``self._answer(...).encode()`` gives for the same AVPs.
        vectors = b"".join(_vector_avp(i, v) for i, v in enumerate(result.vectors, 1))
        body = b"".join((_required(request, d.SESSION_ID).encode(), self._aia_head,
                         encode_avp(d.AUTHENTICATION_INFO, vectors, _V), self._tail_raw))
        return _ANSWER_HEADER.pack(
            (1 << 24) | (HEADER_LEN + len(body)),
            ((request.flags & FLAG_PROXIABLE) << 24) | request.code, request.app_id,
            request.hop_by_hop, request.end_to_end) + body

    def ulr(self, request: Message, peer: PeerInfo) -> Message:
        """Update-Location-Request (TS 29.272 §5.2.1.1)."""
        _required(request, d.SESSION_ID)
        imsi = _required(request, d.USER_NAME).as_text()
        visited = decode_plmn(_required(request, d.VISITED_PLMN_ID, _V).data)
        flags = _required(request, d.ULR_FLAGS, _V).as_u32()
        host = _required(request, d.ORIGIN_HOST).as_text()
        realm = _required(request, d.ORIGIN_REALM).as_text()
        # simtrust decides on the IMEI–ICCID binding; without the equipment it cannot.
        equipment = _equipment(request)
        cell = _cell(request)
        self._admit(imsi, str(equipment.tac), cell)
        result = self._hss.update_location(
            imsi, equipment, visited, ServingNode(imsi, host, realm), actor=self._actor(peer))
        if result.outcome is not HssOutcome.USER_UNKNOWN:
            self._observe(imsi, "location", visited, str(equipment), cell)
        if result.outcome is not HssOutcome.OK or result.profile is None:
            return self._refusal(request, result.outcome, d.APP_S6A)
        avps = [Avp.u32(d.RESULT_CODE, d.SUCCESS), Avp.u32(d.ULA_FLAGS, 1, _V)]
        if not flags & d.ULR_FLAG_SKIP_SUBSCRIBER_DATA:
            avps.append(subscription_data(result.profile))
        return self._answer(request, avps, d.APP_S6A)

    def pur(self, request: Message, peer: PeerInfo) -> Message:
        """Purge-UE-Request (TS 29.272 §5.2.1.3)."""
        _required(request, d.SESSION_ID)
        imsi = _required(request, d.USER_NAME).as_text()
        outcome = self._hss.purge(imsi, peer.host, actor=self._actor(peer))
        if outcome is not HssOutcome.OK:
            return self._refusal(request, outcome, d.APP_S6A)
        return self._answer(request, [Avp.u32(d.RESULT_CODE, d.SUCCESS),
                                      Avp.u32(d.PUA_FLAGS, 0, _V)], d.APP_S6A)

    # -- S13 -----------------------------------------------------------------

    def ecr(self, request: Message, peer: PeerInfo) -> Message:
        """ME-Identity-Check-Request (TS 29.272 §6.2.1)."""
        _required(request, d.SESSION_ID)
        equipment = _equipment(request)
        user = request.find(d.USER_NAME)
        check = self._eir.check(equipment, None if user is None else user.as_text(),
                                actor=self._actor(peer))
        return self._answer(request, [
            Avp.u32(d.RESULT_CODE, d.SUCCESS),
            Avp.u32(d.EQUIPMENT_STATUS, _EQUIPMENT[check.status], _V),
        ], d.APP_S13)

    # -- CLR / IDR -------------------------------------------------------------

    def _on_event(self, event: HssEvent) -> None:
        node = self._node
        if node is None or node.loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.notify(event), node.loop)

    def _session_id(self) -> str:
        return f"{self._host};{self._session_high};{next(self._session)}"

    async def notify(self, event: HssEvent) -> Message | None:
        """Send the CLR or IDR for ``event``; return the MME's answer (None if unreachable)."""
        node = self._node
        if node is None:
            return None
        head = [
            Avp.text(d.SESSION_ID, self._session_id()),
            Avp.grouped(d.VENDOR_SPECIFIC_APPLICATION_ID, [
                Avp.u32(d.VENDOR_ID, _V), Avp.u32(d.AUTH_APPLICATION_ID, d.APP_S6A)]),
            Avp.u32(d.AUTH_SESSION_STATE, d.NO_STATE_MAINTAINED),
            Avp.text(d.ORIGIN_HOST, self._host), Avp.text(d.ORIGIN_REALM, self._realm),
            Avp.text(d.DESTINATION_HOST, event.node.host),
            Avp.text(d.DESTINATION_REALM, event.node.realm),
            Avp.text(d.USER_NAME, event.node.imsi),
        ]
        if event.kind == "cancel":
            cause = (d.CANCEL_MME_UPDATE if event.reason == "mme-update"
                     else d.CANCEL_SUBSCRIPTION_WITHDRAWAL)
            message = Message(d.CMD_CLR, FLAG_REQUEST | FLAG_PROXIABLE, d.APP_S6A, 0, 0, [
                *head, Avp.u32(d.CANCELLATION_TYPE, cause, _V)])
        else:
            assert event.profile is not None
            message = Message(d.CMD_IDR, FLAG_REQUEST | FLAG_PROXIABLE, d.APP_S6A, 0, 0, [
                *head, subscription_data(event.profile)])
        try:
            return await node.request(event.node.host, message)
        except (DiameterError, TimeoutError, ConnectionError) as exc:
            _log.warning("%s to %s not delivered: %s", event.kind, event.node.host, exc)
            return None


def subscription_data(profile: SubscriptionProfile) -> Avp:
    """Subscription-Data (TS 29.272 §7.3.2) for a packet-only IoT subscriber."""
    ambr = Avp.grouped(d.AMBR, [
        Avp.u32(d.MAX_REQUESTED_BANDWIDTH_UL, profile.ambr_ul, _V),
        Avp.u32(d.MAX_REQUESTED_BANDWIDTH_DL, profile.ambr_dl, _V)], _V)
    configs = []
    for apn in profile.apns:
        avps = [
            Avp.u32(d.CONTEXT_IDENTIFIER, apn.context_id, _V),
            Avp.u32(d.PDN_TYPE, 1 if apn.ipv6 else 0, _V),
        ]
        if apn.address is not None:
            avps.append(Avp.address(d.SERVED_PARTY_IP_ADDRESS, apn.address, _V))
        avps += [
            Avp.text(d.SERVICE_SELECTION, apn.name),
            Avp.grouped(d.EPS_SUBSCRIBED_QOS_PROFILE, [
                Avp.u32(d.QOS_CLASS_IDENTIFIER, 9, _V),
                Avp.grouped(d.ALLOCATION_RETENTION_PRIORITY, [
                    Avp.u32(d.PRIORITY_LEVEL, 8, _V),
                    Avp.u32(d.PRE_EMPTION_CAPABILITY, 1, _V),
                    Avp.u32(d.PRE_EMPTION_VULNERABILITY, 0, _V)], _V),
            ], _V),
            ambr,
        ]
        configs.append(Avp.grouped(d.APN_CONFIGURATION, avps, _V))
    return Avp.grouped(d.SUBSCRIPTION_DATA, [
        Avp.u32(d.SUBSCRIBER_STATUS, 0, _V),
        Avp.u32(d.NETWORK_ACCESS_MODE, 2, _V),
        ambr,
        Avp.grouped(d.APN_CONFIGURATION_PROFILE, [
            Avp.u32(d.CONTEXT_IDENTIFIER, profile.apns[0].context_id, _V),
            Avp.u32(d.ALL_APN_CONFIGURATIONS_INCLUDED_INDICATOR, 0, _V),
            *configs,
        ], _V),
    ], _V)
