"""Each SIM gets a did:simtrust DID whose keys live in its secure element.

The key is generated inside the element; the create operation is signed
there too, so the DID is self-certifying from birth (docs/did-method.md §3).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.identity._didsimtrust import create_operation, identity_payload, simtrust_did
from simtrust.identity._secure_element import SecureElement, SecureElementSigner

__all__ = ["SimIdentity", "provision_sim_identity"]


@dataclass(frozen=True, slots=True)
class SimIdentity:
    """A SIM's DID, its signer (key inside the element) and the create operation to submit."""

    did: str
    signer: SecureElementSigner
    operation: dict[str, Any]

    @property
    def payload(self) -> bytes:
        """The ledger ``identity`` payload body that creates the DID."""
        return identity_payload("did-operation", self.operation)


def provision_sim_identity(
    element: SecureElement,
    *,
    network: str,
    now: datetime,
    label: str = "did-key-1",
    nonce: str | None = None,
) -> SimIdentity:
    """Generate the DID key inside ``element`` and sign the create operation there."""
    public = element.generate_key(label)
    nonce = nonce or secrets.token_hex(8)
    did = simtrust_did(network, public, nonce)
    signer = element.signer(label, f"{did}#key-1")
    return SimIdentity(did, signer, create_operation(signer, network=network, nonce=nonce, now=now))
