"""Wiring of the subscriber services onto a runtime (one set per :class:`Runtime`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simtrust.subscriber._addresses import AddressBook
from simtrust.subscriber._alerts import AlertDispatcher, AlertSink, MqttSink, WebhookSink
from simtrust.subscriber._attach import AttachEngine
from simtrust.subscriber._auc_service import AuthService
from simtrust.subscriber._blocklist import Blocklist
from simtrust.subscriber._directory import SubscriberDirectory
from simtrust.subscriber._hn_keys import HomeNetworkKeys
from simtrust.subscriber._hss import EirService, HssService
from simtrust.subscriber._import import SimImporter
from simtrust.subscriber._inventory import Inventory
from simtrust.subscriber._udm import UdmService

if TYPE_CHECKING:
    from simtrust.runtime import Runtime

__all__ = ["SubscriberServices", "build_services", "subscriber_services"]


@dataclass(slots=True)
class SubscriberServices:
    """The subscriber package's services over one runtime."""

    inventory: Inventory
    blocklist: Blocklist
    addresses: AddressBook
    importer: SimImporter
    auth: AuthService
    attach: AttachEngine
    hn_keys: HomeNetworkKeys
    udm: UdmService
    alerts: AlertDispatcher
    hss: HssService
    eir: EirService

    def __repr__(self) -> str:
        return f"SubscriberServices({self.inventory!r})"

    def directory(self, tz: str = "UTC") -> SubscriberDirectory:
        """The policy engine's ``DeviceDirectory`` over this inventory."""
        return SubscriberDirectory(self.attach, tz)

    def close(self) -> None:
        """Stop alert delivery (attach decisions are stored before they are answered)."""
        self.alerts.close()


def build_services(rt: Runtime, sinks: list[AlertSink] | None = None) -> SubscriberServices:
    """Build the services; ``sinks`` default to the tenant webhook and the MQTT broker."""
    inventory = Inventory(rt.db, rt.keyring, rt.audit, rt.clock)
    blocklist = Blocklist(rt.db, rt.audit, rt.clock, inventory.changes, inventory.notify)
    addresses = AddressBook(inventory)
    if sinks is None:
        sinks = [WebhookSink(), MqttSink(rt.settings.mqtt_url)]
    alerts = AlertDispatcher(sinks)
    auth = AuthService(inventory, rand=os.urandom)
    hn_keys = HomeNetworkKeys(rt.db, rt.keyring, rt.audit, rt.clock)
    attach = AttachEngine(inventory, blocklist, addresses, alerts, clock=rt.clock)
    return SubscriberServices(
        inventory=inventory,
        blocklist=blocklist,
        addresses=addresses,
        importer=SimImporter(inventory),
        auth=auth,
        attach=attach,
        hn_keys=hn_keys,
        udm=UdmService(inventory, auth, hn_keys),
        alerts=alerts,
        hss=HssService(inventory, auth, attach),
        eir=EirService(inventory, attach),
    )


def subscriber_services(rt: Runtime) -> SubscriberServices:
    """The runtime's subscriber services (built once, closed with the runtime)."""
    return rt.extension("subscriber", lambda: build_services(rt))
