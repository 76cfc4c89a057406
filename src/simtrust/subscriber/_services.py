"""The subscriber services of one process, built from the collaborators they need.

The composition root (``simtrust.runtime``) calls :func:`build_services` with
the store, keyring, audit log, clock and the alert sinks attach alerts go to;
nothing here looks another service up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from simtrust.alerts import AlertDispatcher, AlertSink
from simtrust.audit import AuditLog
from simtrust.crypto import Keyring, pooled_random
from simtrust.domain import Imsi
from simtrust.errors import PermissionDenied
from simtrust.store import Database
from simtrust.subscriber._addresses import AddressBook
from simtrust.subscriber._alerts import SwapAlert
from simtrust.subscriber._attach import AttachEngine
from simtrust.subscriber._auc_service import AuthService
from simtrust.subscriber._blocklist import Blocklist
from simtrust.subscriber._directory import SubscriberDirectory
from simtrust.subscriber._hn_keys import HomeNetworkKeys
from simtrust.subscriber._hss import EirService, HssService
from simtrust.subscriber._import import SimImporter
from simtrust.subscriber._inventory import Inventory
from simtrust.subscriber._model import SimState
from simtrust.subscriber._udm import UdmService

__all__ = ["SubscriberServices", "SuspendSim", "build_services"]


@dataclass(slots=True)
class SubscriberServices:
    """The subscriber package's services over one store."""

    inventory: Inventory
    blocklist: Blocklist
    addresses: AddressBook
    importer: SimImporter
    auth: AuthService
    attach: AttachEngine
    hn_keys: HomeNetworkKeys
    udm: UdmService
    alerts: AlertDispatcher[SwapAlert]
    hss: HssService
    eir: EirService

    def __repr__(self) -> str:
        return f"SubscriberServices({self.inventory!r})"

    def directory(self, tz: str = "UTC") -> SubscriberDirectory:
        """The policy engine's ``DeviceDirectory`` over this inventory."""
        return SubscriberDirectory(self.attach, tz)

    def suspender(self) -> SuspendSim:
        """The policy ``remove`` action over this inventory (SIM → ``suspended``)."""
        return SuspendSim(self.inventory)

    def close(self) -> None:
        """Stop alert delivery (attach decisions are stored before they are answered)."""
        self.alerts.close()


class SuspendSim:
    """Takes a SIM off the network: its state becomes ``suspended`` (next attach denied).

    Answers the policy package's ``RemoveAction`` protocol; a SIM of another
    tenant than the one the violated policy belongs to is refused.
    """

    __slots__ = ("_inventory",)

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory

    def __repr__(self) -> str:
        return "SuspendSim()"

    def remove(self, imsi: Imsi, *, tenant_id: str, reason: str, actor: str) -> None:
        sim = self._inventory.get_sim_by_imsi(imsi)
        if sim.tenant_id != tenant_id:
            raise PermissionDenied(f"SIM {imsi} is not of tenant {tenant_id}")
        if sim.state != SimState.SUSPENDED:
            self._inventory.transition(sim.iccid, SimState.SUSPENDED, actor=actor, reason=reason)


def build_services(db: Database, keyring: Keyring, audit: AuditLog,
                   clock: Callable[[], datetime], *,
                   sinks: Sequence[AlertSink[SwapAlert]]) -> SubscriberServices:
    """Build the services; attach alerts go to ``sinks`` through one dispatcher thread."""
    inventory = Inventory(db, keyring, audit, clock)
    blocklist = Blocklist(db, audit, clock, inventory.changes, inventory.notify)
    addresses = AddressBook(inventory)
    alerts: AlertDispatcher[SwapAlert] = AlertDispatcher(sinks)
    auth = AuthService(inventory, rand=pooled_random)
    hn_keys = HomeNetworkKeys(db, keyring, audit, clock)
    attach = AttachEngine(inventory, blocklist, addresses, alerts, clock=clock)
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
