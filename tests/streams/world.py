"""A tenant with SIMs, each with a SIM DID on the ledger and a meter's device certificate."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any

from simtrust.identity import SimIdentity, provision_sim_identity
from simtrust.runtime import Runtime
from simtrust.streams import Author
from simtrust.subscriber import AttachPolicy, BindingMode
from tests.subscriber.conftest import TENANT, iccid, imei, imsi, spec

__all__ = ["TENANT", "Meter", "certificate", "setup_tenant", "sim_meter"]

_ticks = itertools.count(1_767_225_600_000)


@dataclass
class Meter:
    n: int
    sim: SimIdentity
    author: Author
    credential: dict[str, Any]
    meter_did: str

    @property
    def iccid(self) -> str:
        return iccid(self.n).value

    @property
    def imsi(self) -> str:
        return imsi(self.n).value

    @property
    def imei(self) -> str:
        return imei(self.n).value


def setup_tenant(rt: Runtime, sims: int = 2) -> None:
    rt.tenants.create_tenant(TENANT, "Acme")
    inventory = rt.subscriber.inventory
    inventory.set_policy(AttachPolicy(TENANT, binding_mode=BindingMode.ICCID_PRIMARY),
                         actor="test")
    for n in range(1, sims + 1):
        inventory.add_sim(TENANT, spec(n, static_ip=f"10.45.0.{n}"), actor="test")


def certificate(rt: Runtime, subject: dict[str, Any], *, revocable: bool = True
                ) -> dict[str, Any]:
    options = {"credentialStatus": {"type": "BitstringStatusListEntry"}} if revocable else {}
    return rt.identity.issue({
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],
        "id": f"urn:uuid:{secrets.token_hex(16)}",
        "type": ["VerifiableCredential", "DeviceCertificate"],
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": subject,
    }, options)


def sim_meter(rt: Runtime, n: int, meter_did: str | None = None) -> Meter:
    """SIM ``n``'s DID (key in its secure element, created on the ledger), a channel
    authored by that key, and the device certificate of the meter behind it."""
    identity = rt.identity
    sim = provision_sim_identity(identity.element(iccid(n).value), network=identity.network,
                                 now=identity.now())
    identity.submit_operation(sim.operation)
    meter_did = meter_did or f"did:example:meter-{n}"
    credential = certificate(rt, {"id": sim.did, "meter": meter_did, "iccid": iccid(n).value,
                                  "imei": imei(n).value})
    author = Author(sim.signer, lambda: next(_ticks))
    return Meter(n, sim, author, credential, meter_did)
