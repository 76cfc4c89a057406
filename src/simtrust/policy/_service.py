"""Wiring of the policy services onto a runtime, and adapters to the subscriber inventory.

:func:`policy_service` builds one :class:`PolicyService` per runtime: the
versioned store (changes take effect at once in the compiled set), the name
map the gateway reports into, the engine and its action dispatcher writing
to ``rt.audit``. Device contexts, addresses and ``remove`` come from the
subscriber inventory when it is present (:class:`InventoryDirectory`,
:class:`SuspendSim`); devices can also be registered directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simtrust.errors import SimtrustError
from simtrust.policy._actions import (
    ActionDispatcher,
    AlertSink,
    MqttAlertSink,
    RemoveAction,
    TenantWebhookSink,
)
from simtrust.policy._addressmap import AddressMap
from simtrust.policy._engine import AddressResolver, PolicyEngine, StaticDirectory
from simtrust.policy._evaluate import NameMap, PolicySet
from simtrust.policy._model import DeviceContext
from simtrust.policy._store import PolicyStore

if TYPE_CHECKING:
    from simtrust.runtime import Runtime

__all__ = ["InventoryDirectory", "LayeredAddresses", "PolicyService", "SuspendSim",
           "build_policy_service", "policy_service"]


class InventoryDirectory:
    """Device contexts from registrations first, then the subscriber inventory."""

    def __init__(self, rt: Runtime, static: StaticDirectory) -> None:
        self._rt = rt
        self._static = static
        self._cache: dict[str, DeviceContext | None] = {}
        self._subscribed = False

    def forget(self, imsi: str | None = None) -> None:
        if imsi is None:
            self._cache.clear()
        else:
            self._cache.pop(imsi, None)

    def context(self, imsi: str) -> DeviceContext | None:
        found = self._static.context(imsi)
        if found is not None:
            return found
        if imsi in self._cache:
            return self._cache[imsi]
        ctx = self._from_inventory(imsi)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[imsi] = ctx
        return ctx

    def _changed(self, kind: str, item: str) -> None:
        if kind == "sim" and item != "*":
            self._cache.pop(item, None)
        elif kind in ("sim", "group"):
            self._cache.clear()

    def _from_inventory(self, imsi: str) -> DeviceContext | None:
        try:
            from simtrust.subscriber import Imsi, SimState, subscriber_services
        except ImportError:
            return None
        try:
            inventory = subscriber_services(self._rt).inventory
            if not self._subscribed:
                inventory.subscribe(self._changed)  # SIM state or group changes drop the cache
                self._subscribed = True
            sim = inventory.find_sim(Imsi(imsi))
            if sim is None:
                return None
            group = inventory.get_group(sim.group_id).name if sim.group_id is not None else ""
        except SimtrustError:
            return None
        active = sim.state in (SimState.ACTIVE, SimState.TEST)
        return DeviceContext(imsi, sim.tenant_id, apn=sim.apn or "", group=group, active=active)


class SuspendSim:
    """:class:`RemoveAction` over the subscriber inventory: SIM → ``suspended``."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def remove(self, imsi: str, *, tenant_id: str, reason: str, actor: str) -> None:
        from simtrust.subscriber import Imsi, SimState, subscriber_services

        inventory = subscriber_services(self._rt).inventory
        sim = inventory.get_sim_by_imsi(Imsi(imsi))
        if sim.tenant_id != tenant_id:
            raise SimtrustError(f"SIM {imsi} is not of tenant {tenant_id}")
        if sim.state != SimState.SUSPENDED:
            inventory.transition(sim.iccid, SimState.SUSPENDED, actor=actor, reason=reason)


class LayeredAddresses:
    """Addresses from the local :class:`AddressMap`, then the subscriber address book."""

    def __init__(self, rt: Runtime, local: AddressMap) -> None:
        self._rt = rt
        self.local = local
        self._book: AddressResolver | None = None
        self._tried = False

    def lookup(self, address: str) -> str | None:
        found = self.local.lookup(address)
        if found is not None:
            return found
        if not self._tried:
            self._tried = True
            try:
                from simtrust.subscriber import subscriber_services

                self._book = subscriber_services(self._rt).addresses
            except ImportError:
                self._book = None
        return self._book.lookup(address) if self._book is not None else None


@dataclass(slots=True)
class PolicyService:
    """The policy services of one runtime."""

    store: PolicyStore
    policies: PolicySet
    names: NameMap
    addresses: AddressMap
    devices: StaticDirectory
    directory: InventoryDirectory
    dispatcher: ActionDispatcher
    engine: PolicyEngine

    def reload(self) -> int:
        """Recompile from the store (e.g. after another process changed policies)."""
        fresh = PolicySet(self.store.current(), self.names)
        self.engine.policies = fresh
        self.policies = fresh
        return len(fresh.policies())

    def register(self, device: DeviceContext, address: str | None = None) -> None:
        """Make a device known without the inventory (gateways, tests, offline runs)."""
        self.devices.add(device)
        self.directory.forget(device.imsi)
        if address is not None:
            self.addresses.attach(device.imsi, device.apn, address)

    def close(self) -> None:
        self.dispatcher.close()
        for sink in self.dispatcher.sinks:
            closer = getattr(sink, "close", None)
            if closer is not None:
                closer()

    def status(self) -> dict[str, Any]:
        return {
            "policies": len(self.policies.policies()),
            "removed": sorted(self.engine.removed),
            "names": len(self.names.snapshot()),
            "unmapped_flows": self.engine.unmapped,
            "action_failures": self.dispatcher.failures,
        }


def build_policy_service(rt: Runtime, sinks: list[AlertSink] | None = None,
                         removers: list[RemoveAction] | None = None) -> PolicyService:
    """Build the services; ``sinks`` default to the tenant's webhook and the MQTT broker,
    ``removers`` to suspending the SIM in the subscriber inventory."""
    store = PolicyStore(rt.db, rt.audit, rt.clock)
    names = NameMap()
    policies = PolicySet(store.current(), names)
    addresses = AddressMap()
    devices = StaticDirectory()
    directory = InventoryDirectory(rt, devices)
    if sinks is None:
        sinks = [TenantWebhookSink(store.webhook), MqttAlertSink(rt.settings.mqtt_url)]
    dispatcher = ActionDispatcher(rt.audit, sinks=sinks,
                                  removers=removers if removers is not None else [SuspendSim(rt)])
    engine = PolicyEngine(policies, LayeredAddresses(rt, addresses), directory, dispatcher,
                          clock=lambda: rt.clock().timestamp())
    service = PolicyService(store, policies, names, addresses, devices, directory, dispatcher,
                            engine)
    store.on_change.append(engine.install)
    return service


def policy_service(rt: Runtime) -> PolicyService:
    """The runtime's policy service (built once)."""
    return rt.extension("policy", lambda: build_policy_service(rt))
