"""The UDM/ARPF side of Nudm_UEAuthentication (TS 29.503 §5.4.2, §6.3).

Takes the ``supiOrSuci`` path value and an ``AuthenticationInfoRequest`` (JSON
object) and returns an ``AuthenticationInfoResult``: a 5G HE AV (``5G_HE_AKA``:
RAND, AUTN, XRES*, K_AUSF, TS 33.501 §6.1.3.2) or an EAP-AKA' vector
(RAND, AUTN, XRES, CK', IK', TS 33.501 §6.1.3.1 with the serving network name
as the network name), per the subscriber's authentication method. A SUCI is
de-concealed first (the SIDF, TS 33.501 §6.12.5). ``resynchronizationInfo``
(RAND, AUTS) re-synchronises SQN before the new vector (TS 33.501 §6.1.3.3.2).
The serving network must be one the SIM's roaming rule permits.

``confirm_auth`` stores the AuthEvent the AUSF posts after authenticating the
UE (TS 29.503 §5.4.2.3, ``auth-events`` POST) and ``delete_auth`` removes it
(§5.4.2.4: PUT of the event with ``authRemovalInd`` true); both are audited.

Errors carry the application error ``cause`` of TS 29.503 / TS 29.500:
``MANDATORY_IE_MISSING`` / ``MANDATORY_IE_INCORRECT`` (400), ``USER_NOT_FOUND``
(404), ``AUTHENTICATION_REJECTED``, ``SERVING_NETWORK_NOT_AUTHORIZED``,
``INVALID_HN_PUBLIC_KEY_IDENTIFIER``, ``INVALID_SCHEME_OUTPUT`` (403) and
``UNSUPPORTED_PROTECTION_SCHEME`` (501).
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from simtrust.domain import Imsi, Plmn
from simtrust.errors import (
    AuthenticationFailure,
    DecryptionFailed,
    InvalidIdentifier,
    InvalidInput,
    NotFound,
    SimtrustError,
    UnknownKey,
)
from simtrust.subscriber._auc_service import AuthService
from simtrust.subscriber._errors import NotImplementedHere
from simtrust.subscriber._hn_keys import HomeNetworkKeys
from simtrust.subscriber._inventory import Inventory
from simtrust.subscriber._model import AuthMethod, Roaming, Sim
from simtrust.subscriber.auc.suci import NULL_SCHEME, PROFILE_A, PROFILE_B, parse_suci
from simtrust.subscriber.auc.vectors import HeAv5g

__all__ = ["UdmService"]

_SNN = re.compile(
    r"^(5G:mnc(?P<mnc>[0-9]{3})[.]mcc(?P<mcc>[0-9]{3})[.]3gppnetwork[.]org(:[A-F0-9]{11})?"
    r"|5G:NSWO)$"
)
_RAND = re.compile(r"^[A-Fa-f0-9]{32}$")
_AUTS = re.compile(r"^[A-Fa-f0-9]{28}$")
_SUPI = re.compile(r"^imsi-[0-9]{5,15}$")


def _missing(param: str) -> InvalidInput:
    return InvalidInput(f"{param} is required", cause="MANDATORY_IE_MISSING",
                        invalid_param=f"/{param}")


def _incorrect(param: str, why: str) -> InvalidInput:
    return InvalidInput(f"{param}: {why}", cause="MANDATORY_IE_INCORRECT",
                        invalid_param=f"/{param}")


@functools.lru_cache(maxsize=1024)
def _serving_plmns(sn_name: str) -> tuple[Plmn, ...]:
    """The PLMNs a serving network name may stand for (its MNC is zero-padded to 3)."""
    match = _SNN.match(sn_name)
    if match is None or match.group("mcc") is None:
        return ()
    mcc, mnc = match.group("mcc"), match.group("mnc")
    if mnc.startswith("0"):
        return Plmn(mcc, mnc), Plmn(mcc, mnc[1:])
    return (Plmn(mcc, mnc),)


class UdmService:
    """generate-auth-data over the inventory, the AuC service and the home network keys."""

    __slots__ = ("_auth", "_inv", "_keys")

    def __init__(self, inventory: Inventory, auth: AuthService, keys: HomeNetworkKeys) -> None:
        self._inv = inventory
        self._auth = auth
        self._keys = keys

    def __repr__(self) -> str:
        return f"UdmService({self._inv!r})"

    def resolve(self, supi_or_suci: str) -> Imsi:
        """The IMSI a SUPI (``imsi-…``) or SUCI (``suci-0-…``) names."""
        imsi, sim = self._resolve(supi_or_suci)
        return imsi if sim is None or supi_or_suci.startswith("suci-") else sim.imsi

    def _resolve(self, supi_or_suci: str) -> tuple[Imsi, Sim | None]:
        """The IMSI named and its SIM, if any (one inventory read)."""
        imsi = self._named(supi_or_suci)
        return imsi, self._inv.find_sim(imsi)

    def _named(self, supi_or_suci: str) -> Imsi:
        """The IMSI a SUPI or SUCI names (a SUCI de-concealed by the SIDF); no store read."""
        if supi_or_suci.startswith("suci-"):
            try:
                suci = parse_suci(supi_or_suci)
            except InvalidIdentifier as exc:
                raise InvalidInput(f"malformed SUCI: {exc.detail}",
                                   cause="MANDATORY_IE_INCORRECT",
                                   invalid_param="{supiOrSuci}") from exc
            if suci.scheme not in (NULL_SCHEME, PROFILE_A, PROFILE_B):
                raise NotImplementedHere("protection scheme not supported",
                                         cause="UNSUPPORTED_PROTECTION_SCHEME")
            try:
                concealed = self._keys.deconceal(str(suci))
            except UnknownKey as exc:
                raise AuthenticationFailure(
                    "no home network key with this identifier",
                    cause="INVALID_HN_PUBLIC_KEY_IDENTIFIER") from exc
            except DecryptionFailed as exc:
                raise AuthenticationFailure(
                    "SUCI scheme output does not decrypt", cause="INVALID_SCHEME_OUTPUT"
                ) from exc
            except InvalidIdentifier as exc:
                raise AuthenticationFailure(
                    "SUCI does not conceal an IMSI", cause="INVALID_SCHEME_OUTPUT") from exc
            return concealed
        if not _SUPI.match(supi_or_suci):
            raise InvalidInput("supiOrSuci must be imsi-<digits> or a SUCI",
                               cause="MANDATORY_IE_INCORRECT", invalid_param="{supiOrSuci}")
        try:
            imsi = Imsi(supi_or_suci.removeprefix("imsi-"))
        except InvalidIdentifier as exc:
            raise InvalidInput(f"bad SUPI: {exc.detail}", cause="MANDATORY_IE_INCORRECT",
                               invalid_param="{supiOrSuci}") from exc
        return imsi

    def generate_auth_data(
        self, supi_or_suci: str, request: Mapping[str, Any], *, actor: str,
        on_resync: Callable[[int], object] | None = None,
    ) -> dict[str, Any]:
        """The AuthenticationInfoResult for an AuthenticationInfoRequest.

        After a re-sync ``on_resync`` is told how far the USIM's SEQ_MS was beyond
        the AuC's SEQ_HE (0: not beyond; the fraud detectors' SQN signal).
        """
        sim, sn_name, resync = self._checked(supi_or_suci, request)
        if resync is not None:
            seq_he = self._auth.seq_he(sim.imsi) if on_resync is not None else 0
            sqn_ms = self._auth.resynchronise(sim.imsi, resync[0], resync[1], actor=actor)
            if on_resync is not None:
                on_resync(self._auth.seq_ahead(sim.imsi, sqn_ms, seq_he))
        supi = sim.imsi.supi
        if sim.auth_method is AuthMethod.EAP_AKA_PRIME:
            eap = self._auth.eap_aka_prime(sim.imsi, sn_name, actor=actor)
            return {
                "authType": "EAP_AKA_PRIME",
                "authenticationVector": {
                    "avType": "EAP_AKA_PRIME",
                    "rand": eap.rand.hex(),
                    "xres": eap.xres.hex(),
                    "autn": eap.autn.hex(),
                    "ckPrime": eap.ck_prime.hex(),
                    "ikPrime": eap.ik_prime.hex(),
                },
                "supi": supi,
            }
        return _he_result(supi, self._auth.he_av_5g(sim.imsi, sn_name, actor=actor))

    def generate_auth_data_many(
        self, requests: Sequence[tuple[str, Mapping[str, Any], str]],
    ) -> list[tuple[dict[str, Any], int] | Exception]:
        """:meth:`generate_auth_data` for (SUPI or SUCI, request, actor) that arrived together.

        The 5G_AKA vectors without re-synchronisation share one group commit of
        the AuC (one transaction, one fsync); EAP-AKA' and re-synchronisations
        are served one by one. Each entry is (AuthenticationInfoResult, how far
        the USIM was ahead after a re-sync, else 0) or the error that request
        alone failed with.
        """
        out: list[tuple[dict[str, Any], int] | Exception] = []
        named: list[tuple[Imsi, str, tuple[bytes, bytes] | None] | None] = []
        for supi_or_suci, request, _ in requests:
            try:
                sn_name, resync = _validate(request)
                named.append((self._named(supi_or_suci), sn_name, resync))
            except SimtrustError as exc:
                named.append(None)
                out.append(exc)
                continue
            out.append(_PENDING)
        # One read of every SIM named in the burst (with what the AuC needs of it), and
        # each tenant's and group's roaming rule read once per burst.
        rows = self._auth.auth_rows([n[0].value for n in named if n is not None])
        rules: dict[tuple[str, int | None], Roaming] = {}
        batch: list[tuple[int, Sim, str, str]] = []
        for index, ((supi_or_suci, request, actor), entry) in enumerate(
                zip(requests, named, strict=True)):
            if entry is None:
                continue
            imsi, sn_name, resync = entry
            try:
                sim = self._auth.sim_of(imsi.value, rows.get(imsi.value))
                if sim is None:
                    raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
                self._check_serving_network(sim.imsi, sim.roaming, sim.group_id,
                                            sim.tenant_id, sn_name, rules)
                if resync is not None or sim.auth_method is AuthMethod.EAP_AKA_PRIME:
                    ahead: list[int] = []
                    result = self.generate_auth_data(supi_or_suci, request, actor=actor,
                                                     on_resync=ahead.append)
                    out[index] = (result, ahead[0] if ahead else 0)
                    continue
            except SimtrustError as exc:
                out[index] = exc
                continue
            batch.append((index, sim, sn_name, actor))
        if batch:
            issued = self._auth.he_av_5g_many(
                [(sim.imsi, sn, actor) for _, sim, sn, actor in batch], rows=rows)
            for (index, sim, _, _), av in zip(batch, issued, strict=True):
                out[index] = av if isinstance(av, Exception) else (_he_result(sim.imsi.supi, av), 0)
        return out

    def _checked(
        self, supi_or_suci: str, request: Mapping[str, Any],
    ) -> tuple[Sim, str, tuple[bytes, bytes] | None]:
        """The SIM, serving network name and re-sync of a valid, authorised request."""
        sn_name, resync = _validate(request)
        _, sim = self._resolve(supi_or_suci)
        if sim is None:
            raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
        self._check_serving_network(sim.imsi, sim.roaming, sim.group_id, sim.tenant_id, sn_name)
        return sim, sn_name, resync

    def _subscriber_of(self, supi: str) -> Sim:
        if not _SUPI.match(supi):
            raise InvalidInput("supi must be imsi-<digits>", cause="MANDATORY_IE_INCORRECT",
                               invalid_param="{supi}")
        try:
            sim = self._inv.find_sim(Imsi(supi.removeprefix("imsi-")))
        except InvalidIdentifier as exc:
            raise InvalidInput(f"bad SUPI: {exc.detail}", cause="MANDATORY_IE_INCORRECT",
                               invalid_param="{supi}") from exc
        if sim is None:
            raise NotFound("no subscriber with this SUPI", cause="USER_NOT_FOUND")
        return sim

    def confirm_auth(
        self, supi: str, body: Mapping[str, Any], *, actor: str
    ) -> tuple[str, dict[str, Any]]:
        """Store the AUSF's authentication result; return (authEventId, the stored AuthEvent)."""
        event = _auth_event(body)
        sim = self._subscriber_of(supi)
        event_id = str(uuid.uuid4())
        db = self._inv.db
        with db.transaction():
            db.execute(
                "INSERT INTO sub_auth_events (id, imsi, body, created_at) VALUES (?, ?, ?, ?)",
                (event_id, sim.imsi.value, json.dumps(event, sort_keys=True),
                 self._inv.now().isoformat()),
            )
            self._inv.audit.append(
                actor=actor, action="udm.auth-event", subject=f"sim:{sim.iccid}",
                outcome="success" if event["success"] else "failure",
                reason=str(event["authType"]), tenant_id=sim.tenant_id,
                details={"auth_event_id": event_id, "ausf": str(event["nfInstanceId"]),
                         "serving_network_name": event["servingNetworkName"]},
            )
        return event_id, event

    def delete_auth(
        self, supi: str, event_id: str, body: Mapping[str, Any], *, actor: str
    ) -> None:
        """Remove a stored authentication result (the AuthEvent carries authRemovalInd)."""
        event = _auth_event(body)
        if event.get("authRemovalInd") is not True:
            raise _incorrect("authRemovalInd", "must be true to remove an authentication result")
        sim = self._subscriber_of(supi)
        db = self._inv.db
        with db.transaction():
            removed = db.execute("DELETE FROM sub_auth_events WHERE id = ? AND imsi = ?",
                                 (event_id, sim.imsi.value))
            if not removed:
                raise NotFound("no authentication event with this id", cause="DATA_NOT_FOUND")
            self._inv.audit.append(
                actor=actor, action="udm.auth-event-removed", subject=f"sim:{sim.iccid}",
                outcome="success", reason=str(event["authType"]), tenant_id=sim.tenant_id,
                details={"auth_event_id": event_id, "ausf": str(event["nfInstanceId"])},
            )

    def auth_events(self, supi: str) -> list[dict[str, Any]]:
        """The stored authentication results of a subscriber (oldest first)."""
        sim = self._subscriber_of(supi)
        rows = self._inv.db.query(
            "SELECT id, body FROM sub_auth_events WHERE imsi = ? ORDER BY created_at, id",
            (sim.imsi.value,))
        return [{"authEventId": str(r[0]), **json.loads(str(r[1]))} for r in rows]

    def supi_ranges(self) -> list[dict[str, str]]:
        """The SUPI ranges this UDM serves (one per home PLMN), for the NRF's UdmInfo."""
        rows = self._inv.db.query(
            "SELECT substr(imsi, 1, 3 + mnc_length) AS plmn, MIN(imsi), MAX(imsi)"
            " FROM sub_sims GROUP BY substr(imsi, 1, 3 + mnc_length) ORDER BY plmn"
        )
        return [{"start": str(r[1]), "end": str(r[2])} for r in rows]

    def _check_serving_network(
        self, imsi: Imsi, roaming: Roaming | None, group_id: int | None, tenant_id: str,
        sn_name: str, rules: dict[tuple[str, int | None], Roaming] | None = None,
    ) -> None:
        """Refuse a serving network the SIM's roaming rule does not permit; ``rules``
        keeps the group's or tenant's rule for the other requests of one burst."""
        plmns = _serving_plmns(sn_name)
        if not plmns:
            return  # 5G:NSWO is served by the home network itself
        rule = roaming
        if rule is None:
            key = (tenant_id, group_id)
            rule = None if rules is None else rules.get(key)
            if rule is None:
                if group_id is not None:
                    rule = self._inv.get_group(group_id).roaming
                if rule is None:
                    rule = self._inv.policy(tenant_id).roaming
                if rules is not None:
                    rules[key] = rule
        home = imsi.plmn
        if not any(rule.permits(home, plmn) for plmn in plmns):
            raise AuthenticationFailure(
                "the serving network is not authorized for this subscriber",
                cause="SERVING_NETWORK_NOT_AUTHORIZED",
            )


def _he_result(supi: str, av: HeAv5g) -> dict[str, Any]:
    """The AuthenticationInfoResult of a 5G HE AV (TS 29.503 §6.3.6.2.2)."""
    return {
        "authType": "5G_AKA",
        "authenticationVector": {
            "avType": "5G_HE_AKA",
            "rand": av.rand.hex(),
            "xresStar": av.xres_star.hex(),
            "autn": av.autn.hex(),
            "kausf": av.kausf.hex(),
        },
        "supi": supi,
    }


_PENDING = NotFound("not served yet")  # a placeholder replaced before the batch returns

_AUTH_TYPES = {"5G_AKA", "EAP_AKA_PRIME", "EAP_TLS", "NONE", "EAP_TTLS"}


def _auth_event(body: Mapping[str, Any]) -> dict[str, Any]:
    """A validated AuthEvent (TS 29.503 §6.3.6.2.4) as plain JSON."""
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be an AuthEvent object", cause="INVALID_MSG_FORMAT")
    for name in ("nfInstanceId", "success", "timeStamp", "authType", "servingNetworkName"):
        if body.get(name) is None:
            raise _missing(name)
    try:
        uuid.UUID(str(body["nfInstanceId"]))
    except ValueError:
        raise _incorrect("nfInstanceId", "must be a UUID") from None
    if not isinstance(body["success"], bool):
        raise _incorrect("success", "must be a boolean")
    stamp = body["timeStamp"]
    try:
        if not isinstance(stamp, str) or "T" not in stamp:
            raise ValueError(stamp)
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise _incorrect("timeStamp", "must be an RFC 3339 date-time") from None
    if body["authType"] not in _AUTH_TYPES:
        raise _incorrect("authType", "not an AuthType")
    sn_name = body["servingNetworkName"]
    if not isinstance(sn_name, str) or not _SNN.match(sn_name):
        raise _incorrect("servingNetworkName", "not a serving network name")
    for flag in ("authRemovalInd", "udrRestartInd"):
        if flag in body and not isinstance(body[flag], bool):
            raise _incorrect(flag, "must be a boolean")
    return dict(body)


def _validate(request: Mapping[str, Any]) -> tuple[str, tuple[bytes, bytes] | None]:
    sn_name = request.get("servingNetworkName")
    if sn_name is None:
        raise _missing("servingNetworkName")
    if not isinstance(sn_name, str) or not _SNN.match(sn_name):
        raise _incorrect("servingNetworkName", "not a serving network name (TS 24.501 §9.12.1)")
    ausf = request.get("ausfInstanceId")
    if ausf is None:
        raise _missing("ausfInstanceId")
    try:
        uuid.UUID(str(ausf))
    except ValueError:
        raise _incorrect("ausfInstanceId", "must be a UUID") from None
    features = request.get("supportedFeatures")
    if features is not None and (
        not isinstance(features, str) or not re.fullmatch(r"[A-Fa-f0-9]*", features)
    ):
        raise InvalidInput("supportedFeatures must be hex", cause="INVALID_MSG_FORMAT",
                           invalid_param="/supportedFeatures")
    info = request.get("resynchronizationInfo")
    if info is None:
        return sn_name, None
    if not isinstance(info, Mapping):
        raise _incorrect("resynchronizationInfo", "must be an object")
    rand, auts = info.get("rand"), info.get("auts")
    if rand is None:
        raise _missing("resynchronizationInfo/rand")
    if auts is None:
        raise _missing("resynchronizationInfo/auts")
    if not isinstance(rand, str) or not _RAND.match(rand):
        raise _incorrect("resynchronizationInfo/rand", "must be 32 hex digits")
    if not isinstance(auts, str) or not _AUTS.match(auts):
        raise _incorrect("resynchronizationInfo/auts", "must be 28 hex digits")
    return sn_name, (bytes.fromhex(rand), bytes.fromhex(auts))
