"""The HSS side of S6a and the EIR side of S13, protocol-neutral (TS 29.272 §5.2, §6.2).

:class:`HssService` answers the four things an MME asks (TS 29.272 §5.2):
authentication information (§5.2.3.1: EPS vectors bound to the visited PLMN,
AUTS re-synchronisation first), update location (§5.2.1.1: the attach
decision with the equipment from Terminal-Information, the serving MME
registered, the subscription profile), purge (§5.2.1.3) — and tells the
listener when to cancel a location (§5.2.1.2: the SIM was suspended or
terminated, or the subscriber moved to another MME) or insert subscriber data
(§5.2.2.1: the subscription changed). :class:`EirService` answers the ME
identity check (TS 29.272 §6.2.1) from the equipment blocklist.

Outcomes are :class:`HssOutcome` values; the Diameter layer maps them to the
result codes of TS 29.272 §7.4. Every request and decision is audited: vector
issues and attach decisions by the AuC and attach engine, the rest here, each
on disk before the answer goes out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from simtrust.domain import Imei, ImeiSv, Imsi, Plmn, imsi_digits, luhn_check_digit
from simtrust.errors import (
    AuthenticationFailure,
    Conflict,
    InvalidIdentifier,
    NotFound,
    SimtrustError,
)
from simtrust.subscriber._attach import AttachDecision, AttachEngine, Reason
from simtrust.subscriber._auc_service import AuthService
from simtrust.subscriber._blocklist import imei_body
from simtrust.subscriber._inventory import Inventory
from simtrust.subscriber._model import SimState
from simtrust.subscriber._sim_view import SimView
from simtrust.subscriber.auc.vectors import EpsVector

__all__ = [
    "ApnProfile",
    "AuthInfo",
    "AuthQuery",
    "EirService",
    "EquipmentCheck",
    "EquipmentStatus",
    "HssEvent",
    "HssOutcome",
    "HssService",
    "LocationUpdate",
    "ServingNode",
    "SubscriptionProfile",
    "equipment_from_terminal",
]

_log = logging.getLogger("simtrust.subscriber.hss")

#: Vectors per AIR: TS 29.272 §7.3.11 leaves the bound to the HSS; five matches
#: TS 33.102's batch and keeps one request's SQN jump small.
MAX_VECTORS = 5
#: The wildcard APN (TS 23.003 §9.2.1): a SIM with no APN may use any.
WILDCARD_APN = "*"


class HssOutcome(StrEnum):
    OK = "ok"
    USER_UNKNOWN = "user-unknown"
    UNKNOWN_EPS_SUBSCRIPTION = "unknown-eps-subscription"
    ROAMING_NOT_ALLOWED = "roaming-not-allowed"
    EQUIPMENT_REJECTED = "equipment-rejected"
    AUTH_DATA_UNAVAILABLE = "authentication-data-unavailable"
    UNABLE_TO_COMPLY = "unable-to-comply"


_REASON_OUTCOME = {
    Reason.UNKNOWN_SIM: HssOutcome.USER_UNKNOWN,
    Reason.SIM_INVENTORY: HssOutcome.UNKNOWN_EPS_SUBSCRIPTION,
    Reason.SIM_SUSPENDED: HssOutcome.UNKNOWN_EPS_SUBSCRIPTION,
    Reason.SIM_TERMINATED: HssOutcome.UNKNOWN_EPS_SUBSCRIPTION,
    Reason.ROAMING: HssOutcome.ROAMING_NOT_ALLOWED,
    Reason.ADDRESS: HssOutcome.UNABLE_TO_COMPLY,
}


@dataclass(frozen=True, slots=True)
class ServingNode:
    """The MME a subscriber is registered at (its Diameter identity)."""

    imsi: str
    host: str
    realm: str


@dataclass(frozen=True, slots=True)
class ApnProfile:
    context_id: int
    name: str
    address: str | None

    @property
    def ipv6(self) -> bool:
        return self.address is not None and ":" in self.address


@dataclass(frozen=True, slots=True)
class SubscriptionProfile:
    """What the MME gets in Subscription-Data: status, APNs (with static address), AMBR."""

    imsi: str
    apns: tuple[ApnProfile, ...]
    ambr_ul: int = 50_000_000
    ambr_dl: int = 100_000_000


@dataclass(frozen=True, slots=True)
class AuthInfo:
    outcome: HssOutcome
    detail: str
    vectors: list[EpsVector] = field(default_factory=list)
    #: After a re-sync: how far the USIM's SEQ_MS was beyond SEQ_HE (0: not beyond).
    sqn_ahead: int = 0


@dataclass(frozen=True, slots=True)
class AuthQuery:
    """One authentication-information request (an AIR's content)."""

    imsi: str
    visited: Plmn
    count: int
    resync: tuple[bytes, bytes] | None
    actor: str


@dataclass(frozen=True, slots=True)
class LocationUpdate:
    outcome: HssOutcome
    detail: str
    decision: AttachDecision | None = None
    profile: SubscriptionProfile | None = None


@dataclass(frozen=True, slots=True)
class HssEvent:
    """Something the HSS must tell an MME: ``cancel`` (CLR) or ``insert`` (IDR)."""

    kind: str
    node: ServingNode
    reason: str
    profile: SubscriptionProfile | None = None


def equipment_from_terminal(imei: str, software_version: str | None) -> Imei | ImeiSv:
    """The equipment of a Terminal-Information AVP (TS 29.272 §7.3.3-7.3.5).

    IMEI holds the 14 digits TAC+SNR (a 15th, the check digit, may follow);
    Software-Version the 2-digit SVN, which makes it an IMEISV.
    """
    if not (imei.isascii() and imei.isdigit()) or len(imei) not in (14, 15):
        raise InvalidIdentifier("IMEI must be 14 or 15 digits", kind="IMEI", reason="length")
    if software_version is not None:
        numeric = software_version.isascii() and software_version.isdigit()
        if len(software_version) != 2 or not numeric:
            raise InvalidIdentifier("Software-Version must be 2 digits", kind="IMEISV",
                                    reason="length")
        return ImeiSv(imei[:14] + software_version)
    if len(imei) == 15:
        return Imei(imei)
    return Imei(imei + str(luhn_check_digit(imei)))


class HssService:
    """S6a procedures over the inventory, the AuC and the attach engine."""

    __slots__ = ("_attach", "_auth", "_follow_stop", "_inv", "_listeners", "_lock")

    def __init__(self, inventory: Inventory, auth: AuthService, attach: AttachEngine) -> None:
        self._inv = inventory
        self._auth = auth
        self._attach = attach
        self._listeners: list[Callable[[HssEvent], None]] = []
        self._lock = threading.Lock()
        self._follow_stop: threading.Event | None = None
        inventory.subscribe(self._on_local_change)

    def __repr__(self) -> str:
        return f"HssService({self._inv!r}, listeners={len(self._listeners)})"

    def subscribe(self, listener: Callable[[HssEvent], None]) -> None:
        """Call ``listener`` with each cancel-location / insert-subscriber-data event."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[HssEvent], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # -- authentication information (AIR) ------------------------------------

    def authentication_info(
        self, imsi: str, visited: Plmn, count: int,
        resync: tuple[bytes, bytes] | None = None, *, actor: str,
    ) -> AuthInfo:
        """``count`` EPS vectors (1..5) for the visited PLMN, after AUTS re-sync if given."""
        checked = self._auth_checks(imsi, visited, actor)
        if isinstance(checked, AuthInfo):
            return checked
        subscriber = checked
        ahead = 0
        try:
            if resync is not None:
                seq_he = self._auth.seq_he(subscriber)
                sqn_ms = self._auth.resynchronise(subscriber, resync[0], resync[1], actor=actor)
                ahead = self._auth.seq_ahead(subscriber, sqn_ms, seq_he)
            vectors = self._auth.eps_vectors(
                subscriber, visited, max(1, min(count, MAX_VECTORS)), actor=actor
            )
        except AuthenticationFailure as exc:
            # A forged AUTS is audited by the AuC; the MME gets no vectors.
            return AuthInfo(HssOutcome.AUTH_DATA_UNAVAILABLE, exc.detail)
        except Conflict as exc:
            return AuthInfo(HssOutcome.UNABLE_TO_COMPLY, exc.detail)
        return AuthInfo(HssOutcome.OK, "vectors issued", vectors, ahead)

    def authentication_info_many(self, queries: Sequence[AuthQuery]) -> list[AuthInfo]:
        """:meth:`authentication_info` for requests that arrived together.

        The vectors of all of them come from one group commit of the AuC (one
        transaction, one fsync, one audit append); each answer is the same as
        its request alone would get. Re-synchronisations are served one by one.
        """
        results: list[AuthInfo | None] = []
        pending: list[tuple[int, Imsi, AuthQuery]] = []
        # The views of SIMs not seen yet, in one query rather than one per AIR.
        self._attach.load_views([q.imsi for q in queries
                                 if q.imsi.isascii() and q.imsi.isdigit()])
        for query in queries:
            if query.resync is not None:
                results.append(self.authentication_info(
                    query.imsi, query.visited, query.count, query.resync, actor=query.actor))
                continue
            checked = self._auth_checks(query.imsi, query.visited, query.actor)
            if isinstance(checked, AuthInfo):
                results.append(checked)
                continue
            pending.append((len(results), checked, query))
            results.append(None)
        if pending:
            issued = self._auth.eps_vectors_many(
                [(imsi, q.visited, max(1, min(q.count, MAX_VECTORS)), q.actor)
                 for _, imsi, q in pending])
            for (index, _, _), out in zip(pending, issued, strict=True):
                if not isinstance(out, Exception):  # the common case first
                    results[index] = AuthInfo(HssOutcome.OK, "vectors issued", out)
                elif isinstance(out, AuthenticationFailure):
                    results[index] = AuthInfo(HssOutcome.AUTH_DATA_UNAVAILABLE, out.detail)
                elif isinstance(out, NotFound):
                    results[index] = AuthInfo(HssOutcome.USER_UNKNOWN, out.detail)
                elif isinstance(out, SimtrustError):
                    results[index] = AuthInfo(HssOutcome.UNABLE_TO_COMPLY, out.detail)
                else:
                    raise out
        return [r for r in results if r is not None]

    def _auth_checks(self, imsi: str, visited: Plmn, actor: str) -> AuthInfo | Imsi:
        """The refusal of an AIR before any vector (audited), or the subscriber to serve."""
        view = self._view(imsi)
        if view is None:
            return self._refuse("hss.authentication-info", imsi, None,
                                HssOutcome.USER_UNKNOWN, "no SIM with this IMSI", actor)
        tenant = view.tenant_id
        if view.state not in (SimState.ACTIVE, SimState.TEST):
            return self._refuse("hss.authentication-info", imsi, tenant,
                                HssOutcome.UNKNOWN_EPS_SUBSCRIPTION, f"SIM is {view.state}",
                                actor)
        if not self._attach.may_roam(imsi, visited):
            return self._refuse("hss.authentication-info", imsi, tenant,
                                HssOutcome.ROAMING_NOT_ALLOWED,
                                f"roaming in {visited} is not permitted", actor)
        # view.imsi is ``imsi`` as _view validated it, view.home the stored SIM's PLMN.
        return Imsi._validated(view.imsi, len(view.home.mnc))

    # -- update location (ULR), purge (PUR) -----------------------------------

    def update_location(
        self, imsi: str, equipment: Imei | ImeiSv, visited: Plmn, node: ServingNode, *,
        actor: str,
    ) -> LocationUpdate:
        """Decide the attach; on success register ``node`` and return the profile."""
        try:
            decision = self._attach.decide(imsi, equipment, visited, actor=actor)
        except SimtrustError as exc:
            return LocationUpdate(HssOutcome.UNABLE_TO_COMPLY, exc.detail)
        if not decision.allowed:
            reason = Reason(decision.reason)
            outcome = _REASON_OUTCOME.get(reason, HssOutcome.EQUIPMENT_REJECTED)
            return LocationUpdate(outcome, decision.detail, decision)
        previous = self._register(node, decision.tenant_id, actor)
        if previous is not None and previous.host != node.host:
            self._emit(HssEvent("cancel", previous, "mme-update"))
        profile = self._profile(imsi, decision.address)
        return LocationUpdate(HssOutcome.OK, decision.detail, decision, profile)

    def purge(self, imsi: str, host: str, *, actor: str) -> HssOutcome:
        """The MME purged the UE: forget its registration if that MME holds it."""
        view = self._view(imsi)
        if view is None:
            self._refuse("hss.purge", imsi, None, HssOutcome.USER_UNKNOWN,
                         "no SIM with this IMSI", actor)
            return HssOutcome.USER_UNKNOWN
        db = self._inv.db
        with db.transaction(durable=True):
            removed = db.execute(
                "DELETE FROM sub_serving_nodes WHERE imsi = ? AND host = ?", (imsi, host)
            )
            self._inv.audit.append(
                actor=actor, action="hss.purge", subject=f"sim:{view.iccid}",
                outcome="success", reason="purged" if removed else "not-registered-here",
                tenant_id=view.tenant_id, details={"imsi": imsi, "mme": host},
            )
        return HssOutcome.OK

    def serving_node(self, imsi: str) -> ServingNode | None:
        row = self._inv.db.query_one(
            "SELECT host, realm FROM sub_serving_nodes WHERE imsi = ?", (imsi,)
        )
        return None if row is None else ServingNode(imsi, str(row[0]), str(row[1]))

    def profile(self, imsi: str) -> SubscriptionProfile | None:
        """The subscription profile of a registered-or-not subscriber (None if unknown)."""
        if self._view(imsi) is None:
            return None
        return self._profile(imsi, self._attach.addresses.address_of(imsi))

    def tenant_of(self, imsi: str) -> str | None:
        """The tenant owning ``imsi`` (None if unknown): the key of admission limits."""
        view = self._view(imsi)
        return None if view is None else view.tenant_id

    # -- internals ---------------------------------------------------------------

    def _view(self, imsi: str) -> SimView | None:
        try:
            value = imsi_digits(imsi)  # Imsi(imsi).value without building an Imsi
        except InvalidIdentifier:
            return None
        return self._attach.sim_view(value)

    def _profile(self, imsi: str, address: str | None) -> SubscriptionProfile:
        view = self._attach.sim_view(imsi)
        apn = view.apn if view is not None and view.apn else WILDCARD_APN
        return SubscriptionProfile(imsi, (ApnProfile(1, apn, address),))

    def _register(self, node: ServingNode, tenant: str | None, actor: str) -> ServingNode | None:
        db = self._inv.db
        with db.transaction(durable=True):
            previous = self.serving_node(node.imsi)
            db.execute(
                "INSERT INTO sub_serving_nodes (imsi, host, realm, registered_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (imsi) DO UPDATE SET host = excluded.host,"
                " realm = excluded.realm, registered_at = excluded.registered_at",
                (node.imsi, node.host, node.realm, self._inv.now().isoformat()),
            )
            if previous is None or previous.host != node.host:
                self._inv.audit.append(
                    actor=actor, action="hss.register", subject=f"imsi:{node.imsi}",
                    outcome="success", tenant_id=tenant,
                    details={"mme": node.host, "realm": node.realm,
                             "previous": previous.host if previous else None},
                )
        return previous

    def _refuse(
        self, action: str, imsi: str, tenant: str | None, outcome: HssOutcome, detail: str,
        actor: str,
    ) -> AuthInfo:
        self._inv.audit.append(
            actor=actor, action=action, subject=f"imsi:{imsi}", outcome="failure",
            reason=str(outcome), tenant_id=tenant, details={"detail": detail}, durable=True,
        )
        return AuthInfo(outcome, detail)

    def _emit(self, event: HssEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a failing listener must not fail the notifying write
                _log.exception("HSS event listener failed")

    def follow_changes(self, interval: float = 0.25) -> None:
        """Act on SIM changes of every process (the inventory's change feed), not only this one's.

        ``simtrust serve`` runs the API in worker processes and the Diameter listener
        in the master: a SIM suspended through a worker must still cancel its location.
        Once following, this process's own writes are taken from the feed as well
        (each change is acted on once).
        """
        if self._follow_stop is not None:
            return
        stop = self._follow_stop = threading.Event()
        changes = self._inv.changes
        seen = start = changes.head()
        applied: set[int] = set()

        def loop() -> None:
            nonlocal seen, applied
            while not stop.wait(interval):
                try:
                    rows, _reload = changes.since(seen)
                    for seq, kind, item in rows:
                        if seq <= start or seq in applied:
                            continue
                        applied.add(seq)
                        seen = max(seen, seq)
                        self._on_change(kind, item)
                except SimtrustError as exc:
                    _log.error("change feed: %s", exc.detail)
                if len(applied) > 4096:
                    applied = {q for q in applied if q > seen - 1024}

        threading.Thread(target=loop, name="simtrust-hss-follow", daemon=True).start()

    def stop_following(self) -> None:
        if self._follow_stop is not None:
            self._follow_stop.set()
            self._follow_stop = None

    def _on_local_change(self, kind: str, item: str) -> None:
        if self._follow_stop is None:
            self._on_change(kind, item)

    def _on_change(self, kind: str, item: str) -> None:
        if kind == "sim":
            # Another process's change to the SIM (when following the feed): the AuC's
            # memo would not use a stale entry anyway, but need not keep it.
            self._auth.forget(item)
        # Only the process that can send the CLR/IDR (a listener is subscribed) acts:
        # an API worker or CLI process must not consume the registration silently.
        if kind != "sim" or item == "*" or not self._listeners:
            return
        node = self.serving_node(item)
        if node is None:
            return
        sim = self._inv.find_sim(Imsi(item))
        if sim is None or sim.state in (SimState.SUSPENDED, SimState.TERMINATED,
                                        SimState.INVENTORY):
            reason = "sim-removed" if sim is None else f"sim-{sim.state}"
            with self._inv.db.transaction():
                self._inv.db.execute("DELETE FROM sub_serving_nodes WHERE imsi = ?", (item,))
                self._inv.audit.append(
                    actor="hss", action="hss.cancel-location", subject=f"imsi:{item}",
                    outcome="success", reason=reason,
                    tenant_id=sim.tenant_id if sim else None,
                    details={"mme": node.host, "realm": node.realm},
                )
            self._emit(HssEvent("cancel", node, reason))
            return
        profile = self._profile(item, sim.static_ip or self._attach.addresses.address_of(item))
        self._inv.audit.append(
            actor="hss", action="hss.insert-subscriber-data", subject=f"imsi:{item}",
            outcome="success", reason="subscription-changed", tenant_id=sim.tenant_id,
            details={"mme": node.host, "apns": [a.name for a in profile.apns]},
        )
        self._emit(HssEvent("insert", node, "subscription-changed", profile))


class EquipmentStatus(StrEnum):
    """Equipment-Status values (TS 29.272 §7.3.51)."""

    WHITELISTED = "whitelisted"
    BLACKLISTED = "blacklisted"
    GREYLISTED = "greylisted"


@dataclass(frozen=True, slots=True)
class EquipmentCheck:
    status: EquipmentStatus
    reason: str
    entry_id: int | None = None


class EirService:
    """ME identity check against the blocklist (docs/decisions/corenet-eir-lists.md).

    An entry that applies to the subscriber (a global CEIR entry, or one of
    the subscriber's tenant) blacklists; an entry of another tenant, or a
    tenant entry when no IMSI came with the check, greylists (known-suspect
    equipment the network tracks but does not bar); otherwise whitelisted.
    """

    __slots__ = ("_attach", "_inv")

    def __init__(self, inventory: Inventory, attach: AttachEngine) -> None:
        self._inv = inventory
        self._attach = attach

    def __repr__(self) -> str:
        return f"EirService({self._inv!r})"

    def check(self, equipment: Imei | ImeiSv, imsi: str | None, *, actor: str) -> EquipmentCheck:
        view = None
        if imsi is not None:
            try:
                view = self._attach.sim_view(Imsi(imsi).value)
            except InvalidIdentifier:
                view = None
        tenant = view.tenant_id if view is not None else None
        body = imei_body(equipment)
        result = EquipmentCheck(EquipmentStatus.WHITELISTED, "not listed")
        for owner, match in self._attach.blocklist_index().matches(body):
            if owner is None or (tenant is not None and owner == tenant):
                result = EquipmentCheck(EquipmentStatus.BLACKLISTED, match.reason, match.entry_id)
                break
            result = EquipmentCheck(EquipmentStatus.GREYLISTED, match.reason, match.entry_id)
        self._inv.audit.append(
            actor=actor, action="eir.check", subject=f"imei:{body}",
            outcome="deny" if result.status is EquipmentStatus.BLACKLISTED else (
                "alert" if result.status is EquipmentStatus.GREYLISTED else "allow"),
            reason=str(result.status), tenant_id=tenant,
            details={"equipment": str(equipment), "imsi": imsi, "entry": result.entry_id,
                     "entry_reason": result.reason},
            durable=True,  # an answered check is on disk (docs/decisions/attach-durable-audit.md)
        )
        return result
