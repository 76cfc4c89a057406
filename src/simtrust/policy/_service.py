"""The policy services of one process, built from the collaborators they need.

:func:`build_policy_service` makes one :class:`PolicyService`: the versioned
store (changes take effect at once in the compiled set), the name map the
gateway reports into, the engine and its action dispatcher writing to the
audit log. The composition root passes what lies outside this package: the
device directory and address resolver of the subscriber inventory (asked after
devices registered here), the remove actions (suspend the SIM) and the alert
sinks (tenant webhook, MQTT); policy itself imports none of those packages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.alerts import AlertSink, AuditWriter
from simtrust.domain import DeviceContext, ImsiDigits
from simtrust.policy._actions import ActionDispatcher, PolicyAlert, RemoveAction
from simtrust.policy._addressmap import AddressMap
from simtrust.policy._engine import AddressResolver, DeviceDirectory, PolicyEngine, StaticDirectory
from simtrust.policy._evaluate import NameMap, PolicySet
from simtrust.policy._store import PolicyStore
from simtrust.store import Database

__all__ = ["LayeredAddresses", "LayeredDirectory", "PolicyService", "build_policy_service"]


class LayeredDirectory:
    """Device contexts from registrations first, then from ``fallback`` (the inventory)."""

    __slots__ = ("fallback", "static")

    def __init__(self, static: StaticDirectory, fallback: DeviceDirectory | None) -> None:
        self.static = static
        self.fallback = fallback

    def __repr__(self) -> str:
        return f"LayeredDirectory(fallback={self.fallback!r})"

    def context(self, imsi: ImsiDigits) -> DeviceContext | None:
        found = self.static.context(imsi)
        if found is not None or self.fallback is None:
            return found
        return self.fallback.context(imsi)


class LayeredAddresses:
    """Addresses from the local :class:`AddressMap`, then from ``fallback`` (the address book)."""

    __slots__ = ("fallback", "local")

    def __init__(self, local: AddressMap, fallback: AddressResolver | None) -> None:
        self.local = local
        self.fallback = fallback

    def __repr__(self) -> str:
        return f"LayeredAddresses(fallback={self.fallback!r})"

    def lookup(self, address: str) -> ImsiDigits | None:
        found = self.local.lookup(address)
        if found is not None or self.fallback is None:
            return found
        return self.fallback.lookup(address)


@dataclass(slots=True)
class PolicyService:
    """The policy services of one runtime."""

    store: PolicyStore
    policies: PolicySet
    names: NameMap
    addresses: AddressMap
    devices: StaticDirectory
    directory: LayeredDirectory
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
        if address is not None:
            self.addresses.attach(device.imsi, device.apn, address)

    def close(self) -> None:
        self.dispatcher.close()
        for sink in self.dispatcher.sinks:
            sink.close()

    def status(self) -> dict[str, Any]:
        return {
            "policies": len(self.policies.policies()),
            "removed": sorted(self.engine.removed),
            "names": len(self.names.snapshot()),
            "unmapped_flows": self.engine.unmapped,
            "action_failures": self.dispatcher.failures,
        }


def build_policy_service(db: Database, audit: AuditWriter, clock: Callable[[], datetime], *,
                         sinks: Sequence[AlertSink[PolicyAlert]] = (),
                         removers: Sequence[RemoveAction] = (),
                         directory: DeviceDirectory | None = None,
                         addresses: AddressResolver | None = None,
                         sink_factory: Callable[[PolicyStore], Sequence[AlertSink[PolicyAlert]]]
                         | None = None) -> PolicyService:
    """Build the services over ``db``.

    ``directory`` and ``addresses`` answer for devices not registered here (the
    subscriber inventory); ``removers`` carry out ``remove`` (suspend the SIM);
    alerts go to ``sinks`` and to those ``sink_factory`` makes from the store
    (the tenant webhook URLs live in it).
    """
    store = PolicyStore(db, audit, clock)
    names = NameMap()
    policies = PolicySet(store.current(), names)
    local = AddressMap()
    devices = StaticDirectory()
    layered = LayeredDirectory(devices, directory)
    all_sinks = [*sinks, *(sink_factory(store) if sink_factory is not None else ())]
    dispatcher = ActionDispatcher(audit, sinks=all_sinks, removers=removers)
    engine = PolicyEngine(policies, LayeredAddresses(local, addresses), layered, dispatcher,
                          clock=lambda: clock().timestamp())
    service = PolicyService(store, policies, names, local, devices, layered, dispatcher, engine)
    store.on_change.append(engine.install)
    return service
