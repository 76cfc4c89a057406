"""Wiring of the bootstrap services from their collaborators (no runtime look-ups)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from simtrust.audit import AuditLog
from simtrust.bootstrap._akma import Aanf
from simtrust.bootstrap._bsf import Bsf
from simtrust.bootstrap._ca import CertificateAuthorities
from simtrust.bootstrap._est import CertificateServer, shared_nonce_key
from simtrust.bootstrap._kdf import NafId
from simtrust.bootstrap._revocation import SimRevocation
from simtrust.crypto import Keyring
from simtrust.store import Database
from simtrust.subscriber import SubscriberServices

__all__ = ["BootstrapServices", "build_bootstrap"]


@dataclass(slots=True)
class BootstrapServices:
    """BSF, AAnF, CA store, certificate server and the SIM-tied revocation."""

    bsf: Bsf
    aanf: Aanf
    cas: CertificateAuthorities
    server: CertificateServer
    revocation: SimRevocation

    def __repr__(self) -> str:
        return f"BootstrapServices({self.bsf!r}, {self.server!r})"


def build_bootstrap(
    *,
    db: Database,
    keyring: Keyring,
    audit: AuditLog,
    clock: Callable[[], datetime],
    subscriber: SubscriberServices,
    naf_fqdn: str,
    bsf_domain: str,
    public_base_url: str | None = None,
    key_lifetime: timedelta = timedelta(hours=24),
) -> BootstrapServices:
    """Build the services and hook revocation into the inventory and the swap alerts."""
    bsf = Bsf(db, keyring, subscriber.auth, audit, clock, domain=bsf_domain,
              lifetime=key_lifetime)
    aanf = Aanf(db, keyring, audit, clock, key_lifetime=key_lifetime)
    cas = CertificateAuthorities(db, keyring, audit, clock, public_base_url=public_base_url)
    server = CertificateServer(cas, bsf, aanf, subscriber.inventory, audit, clock,
                               naf_id=NafId(naf_fqdn), db=db,
                               secret=shared_nonce_key(db, keyring))
    revocation = SimRevocation(cas, bsf, aanf, subscriber.inventory)
    subscriber.inventory.subscribe(revocation.on_change)
    subscriber.alerts.add_sink(revocation)
    return BootstrapServices(bsf, aanf, cas, server, revocation)
