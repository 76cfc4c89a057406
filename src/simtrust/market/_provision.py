"""What a TMF641 service order item does to simtrust: one provisioner per service function.

A TMF633 ``ServiceSpecification`` names its function in ``targetEntitySchema.@type``
(TMF633 v4.0.0 §"TargetEntitySchema": the type of the entity the specification
instantiates). Each function is a :class:`Provisioner` acting on the security
services' public surfaces: ``SimBatch`` moves SIMs from the seller's stock to the
buyer's tenant, ``PrivateApn`` creates an APN with its address pool and RADIUS
access settings, ``NetworkPolicy`` installs a policy version, ``TenantCa`` registers
a hosted CA for the enterprise's tier-2 credentials, and ``SliceSla`` /
``RoamingAgreement`` create a contract on the ledger (TS 28.541 ServiceProfile
targets; the issue 15 roaming agreement). Every store-backed action has an exact
undo (:meth:`Provisioner.compensate`); ledger contracts cannot be undone, so the
orchestrator runs them last.

The life cycle after provisioning (TMF622 v4.0.0 ``OrderItemActionType``
``modify`` / ``delete``; TMF641 v4.1.0 ``ServiceOrderItem.action``): a function
names the characteristics a ``modify`` may change (:attr:`Provisioner.modifiable`),
changes them (:meth:`Provisioner.modify`, undone by :meth:`Provisioner.revert`
for the store-backed ones) and terminates what it provisioned
(:meth:`Provisioner.terminate`): SIMs go back to the seller's stock, the APN
and its RADIUS settings are removed, the policy installed is deactivated, the
CA is removed, a slice SLA contract gets a ``terminate`` transition signed by
the seller's ledger key. A roaming agreement needs both parties' signatures to
end (issue 15), so the marketplace does not terminate it
(``docs/decisions/market-modify-terminate.md``).
"""

from __future__ import annotations

import abc
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from simtrust.aaa import AUTH_METHODS, ApnAccessStore
from simtrust.bootstrap import CertificateAuthorities
from simtrust.domain import Iccid
from simtrust.errors import Conflict, InvalidInput, NotFound, Rejected
from simtrust.policy import PolicyStore, Scope, policy_from_dict
from simtrust.subscriber import Inventory, SimState

__all__ = [
    "FUNCTION_ORDER",
    "Provisioner",
    "Provisioners",
]

#: The order steps run in: what later steps refer to first, ledger contracts last.
FUNCTION_ORDER = ("TenantCa", "PrivateApn", "NetworkPolicy", "SimBatch", "SliceSla",
                  "RoamingAgreement")
_APN = re.compile(r"[a-z0-9][a-z0-9.-]{0,99}")
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,40}")
_PLMN = re.compile(r"[0-9]{5,6}")
_PARTY = re.compile(r"did:(key|simtrust):[A-Za-z0-9:._-]{8,200}")


def _text(values: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = values.get(name, default)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"characteristic {name} must be a non-empty string", attribute=name)
    return value


def _int(values: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = values.get(name, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"characteristic {name} must be an integer from {low} to {high}",
                           attribute=name)
    return value


class Provisioner(Protocol):
    """One service function: validate, act, undo."""

    #: Whether the action lands on the ledger (it cannot be undone).
    on_ledger: bool

    def check(self, tenant_id: str, values: Mapping[str, Any], planned: Mapping[str, Any],
              ) -> None:
        """Refuse values that could never provision (at order creation, nothing written).

        ``planned`` holds what earlier steps of the same order will create
        (``apns``: APN names).
        """

    def provision(self, tenant_id: str, values: Mapping[str, Any], *, actor: str,
                  reason: str) -> dict[str, Any]:
        """Do it; the result becomes the TMF638 service's characteristics."""

    def compensate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                   reason: str) -> None:
        """Undo :meth:`provision` exactly (store-backed functions only)."""

    #: Characteristics a ``modify`` item may change.
    modifiable: frozenset[str]
    #: Whether a ``delete`` item may terminate what this function provisioned.
    terminable: bool

    def check_modify(self, tenant_id: str, before: Mapping[str, Any],
                     changes: Mapping[str, Any]) -> None:
        """Refuse changes that could never apply (at order creation, nothing written)."""

    def modify(self, tenant_id: str, before: Mapping[str, Any], changes: Mapping[str, Any],
               *, actor: str, reason: str) -> dict[str, Any]:
        """Apply ``changes`` to what ``before`` describes; the new result."""

    def revert(self, tenant_id: str, before: Mapping[str, Any], after: Mapping[str, Any],
               *, actor: str, reason: str) -> None:
        """Undo :meth:`modify` exactly (store-backed functions only)."""

    def terminate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                  reason: str) -> None:
        """End what :meth:`provision` created (TMF638 ``terminated``)."""

    #: Whether suspending the product suspends what this function provisioned.
    suspendable: bool

    def suspend(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                reason: str, resume: bool = False) -> None:
        """Suspend (or resume) what :meth:`provision` created (TMF637 ``suspended``)."""


class _Lifecycle(abc.ABC):
    """Defaults: nothing modifiable; terminating is the exact undo of provisioning."""

    modifiable: frozenset[str] = frozenset()
    terminable = True

    @abc.abstractmethod
    def compensate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                   reason: str) -> None:
        """Undo exactly what provisioning did (each service function says how)."""

    def check_modify(self, tenant_id: str, before: Mapping[str, Any],
                     changes: Mapping[str, Any]) -> None:
        return None

    def modify(self, tenant_id: str, before: Mapping[str, Any], changes: Mapping[str, Any],
               *, actor: str, reason: str) -> dict[str, Any]:
        raise Rejected("not-modifiable", "this service has no modifiable characteristic")

    def revert(self, tenant_id: str, before: Mapping[str, Any], after: Mapping[str, Any],
               *, actor: str, reason: str) -> None:
        raise Conflict("this change cannot be undone", reason="not-revertible")

    def terminate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                  reason: str) -> None:
        self.compensate(tenant_id, result, actor=actor, reason=reason)

    #: Whether suspending the product suspends what this function provisioned.
    suspendable = False

    def suspend(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                reason: str, resume: bool = False) -> None:
        return None


def _apn_name(values: Mapping[str, Any], name: str) -> str:
    apn = _text(values, name).strip().lower()
    if not _APN.fullmatch(apn):
        raise InvalidInput("an APN name is letters, digits, '-' and '.'", attribute=name)
    return apn


class SimBatch(_Lifecycle):
    """SIMs from the seller's stock tenant, active for the buyer (on its APN if named)."""

    on_ledger = False

    def __init__(self, inventory: Callable[[], Inventory]) -> None:
        self._inventory = inventory

    def check(self, tenant_id: str, values: Mapping[str, Any], planned: Mapping[str, Any],
              ) -> None:
        _text(values, "stockTenant")
        _int(values, "quantity", 1, 1, 1_000_000)
        if "apnName" in values:
            apn = _apn_name(values, "apnName")
            if apn not in planned.get("apns", ()):
                self._inventory().get_apn(tenant_id, apn)

    def provision(self, tenant_id: str, values: Mapping[str, Any], *, actor: str,
                  reason: str) -> dict[str, Any]:
        apn = _apn_name(values, "apnName") if "apnName" in values else None
        iccids = self._inventory().allocate_stock(
            _text(values, "stockTenant"), tenant_id, _int(values, "quantity", 1, 1, 1_000_000),
            actor=actor, apn=apn, reason=reason)
        result: dict[str, Any] = {"stockTenant": values["stockTenant"], "simCount": len(iccids),
                                  "iccid": [i.value for i in iccids]}
        if apn is not None:
            result["apnName"] = apn
        return result

    def compensate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                   reason: str) -> None:
        self._inventory().return_stock([Iccid(i) for i in result["iccid"]], tenant_id,
                                       str(result["stockTenant"]), actor=actor, reason=reason)

    modifiable = frozenset({"apnName"})

    def check_modify(self, tenant_id: str, before: Mapping[str, Any],
                     changes: Mapping[str, Any]) -> None:
        self._inventory().get_apn(tenant_id, _apn_name(changes, "apnName"))

    def _move(self, tenant_id: str, result: Mapping[str, Any], apn: str | None,
              actor: str) -> None:
        inventory = self._inventory()
        for iccid in result["iccid"]:
            if inventory.get_sim(Iccid(iccid)).tenant_id != tenant_id:
                raise Conflict(f"SIM {iccid} is no longer the tenant's", iccid=iccid)
        for iccid in result["iccid"]:
            if apn is None:
                inventory.update_sim(Iccid(iccid), actor=actor, clear=("apn",))
            else:
                inventory.update_sim(Iccid(iccid), actor=actor, apn=apn)

    def modify(self, tenant_id: str, before: Mapping[str, Any], changes: Mapping[str, Any],
               *, actor: str, reason: str) -> dict[str, Any]:
        apn = _apn_name(changes, "apnName")
        self._move(tenant_id, before, apn, actor)
        return {**before, "apnName": apn}

    suspendable = True

    def suspend(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                reason: str, resume: bool = False) -> None:
        """Every SIM of the batch ``suspended`` (or ``active`` again): no attach meanwhile."""
        inventory = self._inventory()
        target = SimState.ACTIVE if resume else SimState.SUSPENDED
        for iccid in result["iccid"]:
            sim = inventory.get_sim(Iccid(iccid))
            if sim.tenant_id != tenant_id:
                raise Conflict(f"SIM {iccid} is no longer the tenant's", iccid=iccid)
            if sim.state is not target:
                inventory.transition(Iccid(iccid), target, actor=actor, reason=reason)

    def revert(self, tenant_id: str, before: Mapping[str, Any], after: Mapping[str, Any],
               *, actor: str, reason: str) -> None:
        previous = before.get("apnName")
        self._move(tenant_id, after, None if previous is None else str(previous), actor)


class PrivateApn(_Lifecycle):
    """An APN with its address pool and RADIUS access settings (auth, session timeout)."""

    on_ledger = False

    def __init__(self, inventory: Callable[[], Inventory],
                 access: Callable[[], ApnAccessStore]) -> None:
        self._inventory = inventory
        self._access = access

    def check(self, tenant_id: str, values: Mapping[str, Any], planned: Mapping[str, Any],
              ) -> None:
        apn = _apn_name(values, "apnName")
        pool = _text(values, "addressPool")
        try:
            network = ipaddress.ip_network(pool, strict=True)
        except ValueError:
            raise InvalidInput(f"addressPool {pool!r} is not a CIDR block",
                               attribute="addressPool") from None
        if network.num_addresses < 4:
            raise InvalidInput("addressPool is too small", attribute="addressPool")
        if _text(values, "radiusAuth", default="none") not in AUTH_METHODS:
            raise InvalidInput(f"radiusAuth must be one of {', '.join(AUTH_METHODS)}",
                               attribute="radiusAuth")
        _int(values, "sessionTimeout", 86_400, 60, 2**31 - 1)
        # An order is the tenant's own request: the pool must lie in its own address
        # allocation, so the answer never depends on other tenants' networks
        # (docs/decisions/subscriber-address-allocations.md).
        self._inventory().allocations.check_pool(tenant_id, network, own=True)
        try:
            self._inventory().get_apn(tenant_id, apn)
        except NotFound:
            return
        raise Conflict(f"the tenant has an APN {apn!r} already", attribute="apnName")

    def provision(self, tenant_id: str, values: Mapping[str, Any], *, actor: str,
                  reason: str) -> dict[str, Any]:
        apn = _apn_name(values, "apnName")
        created = self._inventory().create_apn(tenant_id, apn, actor=actor,
                                               pool=_text(values, "addressPool"),
                                               own_allocation=True)
        access = self._access().set_access(
            tenant_id, apn, actor=actor, auth=_text(values, "radiusAuth", default="none"),
            session_timeout=_int(values, "sessionTimeout", 86_400, 60, 2**31 - 1))
        return {"apnName": apn, "addressPool": str(created.pool),
                "radiusAuth": access.auth, "sessionTimeout": access.session_timeout}

    def compensate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                   reason: str) -> None:
        apn = str(result["apnName"])
        self._access().remove_access(tenant_id, apn, actor=actor)
        self._inventory().delete_apn(tenant_id, apn, actor=actor, reason=reason)

    modifiable = frozenset({"radiusAuth", "sessionTimeout"})

    @staticmethod
    def _settings(values: Mapping[str, Any]) -> tuple[str, int]:
        auth = _text(values, "radiusAuth")
        if auth not in AUTH_METHODS:
            raise InvalidInput(f"radiusAuth must be one of {', '.join(AUTH_METHODS)}",
                               attribute="radiusAuth")
        return auth, _int(values, "sessionTimeout", 86_400, 60, 2**31 - 1)

    def check_modify(self, tenant_id: str, before: Mapping[str, Any],
                     changes: Mapping[str, Any]) -> None:
        self._settings({**before, **changes})

    def modify(self, tenant_id: str, before: Mapping[str, Any], changes: Mapping[str, Any],
               *, actor: str, reason: str) -> dict[str, Any]:
        auth, timeout = self._settings({**before, **changes})
        access = self._access().set_access(tenant_id, str(before["apnName"]), actor=actor,
                                           auth=auth, session_timeout=timeout)
        return {**before, "radiusAuth": access.auth, "sessionTimeout": access.session_timeout}

    def revert(self, tenant_id: str, before: Mapping[str, Any], after: Mapping[str, Any],
               *, actor: str, reason: str) -> None:
        auth, timeout = self._settings(before)
        self._access().set_access(tenant_id, str(before["apnName"]), actor=actor, auth=auth,
                                  session_timeout=timeout)


class NetworkPolicy(_Lifecycle):
    """A policy version at a scope of the buyer (``tenant`` or ``apn:NAME``)."""

    on_ledger = False

    def __init__(self, store: Callable[[], PolicyStore]) -> None:
        self._store = store

    @staticmethod
    def _policy(tenant_id: str, values: Mapping[str, Any]) -> Any:
        rules = values.get("policyRules")
        if not isinstance(rules, list) or not rules:
            raise InvalidInput("characteristic policyRules must be a non-empty array",
                               attribute="policyRules")
        scope = _text(values, "policyScope", default="tenant")
        if scope.startswith("device:"):
            raise InvalidInput("policyScope is tenant, apn:NAME or group:NAME",
                               attribute="policyScope")
        return policy_from_dict({"tenant_id": tenant_id, "scope": scope, "rules": rules})

    def check(self, tenant_id: str, values: Mapping[str, Any], planned: Mapping[str, Any],
              ) -> None:
        self._policy(tenant_id, values)

    def provision(self, tenant_id: str, values: Mapping[str, Any], *, actor: str,
                  reason: str) -> dict[str, Any]:
        policy = self._policy(tenant_id, values)
        store = self._store()
        try:
            previous = store.get(tenant_id, policy.scope)
        except NotFound:
            previous = None
        stored = store.put(policy, actor=actor)
        return {"policyScope": stored.scope.key, "policyVersion": stored.version,
                "previousVersion": 0 if previous is None or not previous.active
                else previous.version}

    def compensate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                   reason: str) -> None:
        store = self._store()
        scope = Scope.parse(str(result["policyScope"]))
        previous = int(result["previousVersion"])
        if previous:
            store.put(store.get(tenant_id, scope, previous), actor=actor)
        else:
            store.delete(tenant_id, scope, actor=actor)

    modifiable = frozenset({"policyRules"})

    def check_modify(self, tenant_id: str, before: Mapping[str, Any],
                     changes: Mapping[str, Any]) -> None:
        self._policy(tenant_id, {"policyScope": before["policyScope"], **changes})

    def modify(self, tenant_id: str, before: Mapping[str, Any], changes: Mapping[str, Any],
               *, actor: str, reason: str) -> dict[str, Any]:
        policy = self._policy(tenant_id, {"policyScope": before["policyScope"], **changes})
        stored = self._store().put(policy, actor=actor)
        return {**before, "policyVersion": stored.version}

    def revert(self, tenant_id: str, before: Mapping[str, Any], after: Mapping[str, Any],
               *, actor: str, reason: str) -> None:
        store = self._store()
        scope = Scope.parse(str(before["policyScope"]))
        store.put(store.get(tenant_id, scope, int(before["policyVersion"])), actor=actor)

    def terminate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                  reason: str) -> None:
        """Deactivate the policy if the version in force is still this service's."""
        store = self._store()
        scope = Scope.parse(str(result["policyScope"]))
        try:
            current = store.get(tenant_id, scope)
        except NotFound:
            return
        if current.active and current.version == int(result["policyVersion"]):
            store.delete(tenant_id, scope, actor=actor)


class TenantCa(_Lifecycle):
    """A hosted CA of the buyer for tier-2 device credentials (its label is the tenant's)."""

    on_ledger = False

    def __init__(self, cas: Callable[[], CertificateAuthorities]) -> None:
        self._cas = cas

    @staticmethod
    def _label(values: Mapping[str, Any]) -> str:
        label = _text(values, "caLabel")
        if not _LABEL.fullmatch(label):
            raise InvalidInput("caLabel is 1-40 of [A-Za-z0-9_-]", attribute="caLabel")
        return label

    def check(self, tenant_id: str, values: Mapping[str, Any], planned: Mapping[str, Any],
              ) -> None:
        label = self._label(values)
        _text(values, "commonName", default=label)
        if label in {ca.label for ca in self._cas().cas(tenant_id)}:
            raise Conflict(f"the tenant has a CA {label!r} already", attribute="caLabel")

    def provision(self, tenant_id: str, values: Mapping[str, Any], *, actor: str,
                  reason: str) -> dict[str, Any]:
        label = self._label(values)
        record = self._cas().create_hosted(
            tenant_id, label, common_name=_text(values, "commonName", default=label), actor=actor)
        return {"caLabel": record.label, "estLabel": record.est_label, "caId": record.ca_id,
                "subject": record.certificate.subject.rfc4514_string()}

    def compensate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                   reason: str) -> None:
        self._cas().remove(str(result["estLabel"]), actor=actor, reason=reason)


#: Function name → its provisioner.
Provisioners = dict[str, Provisioner]
