"""DID operations finalized while no identity service listened reach the registry later."""

from __future__ import annotations

from pathlib import Path

from simtrust.config import load_settings
from simtrust.identity import (
    IDENTITY_PAYLOAD_TYPE,
    SoftwareSecureElement,
    identity_payload,
    provision_sim_identity,
)
from simtrust.runtime import Runtime


def test_operation_finalized_before_service_start_is_replayed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Runtime.ephemeral(home)
    try:
        # Only the ledger node runs here: no identity handler is registered.
        node = first.ledger
        element = SoftwareSecureElement("sim-1", db=first.db, keyring=first.keyring)
        sim = provision_sim_identity(
            element, network=first.settings.network_id, now=first.clock(), label="sim-1"
        )
        result = node.issue(IDENTITY_PAYLOAD_TYPE, identity_payload("did-operation", sim.operation))
        assert "rejected" != result.status
    finally:
        first.close()

    second = Runtime.open(load_settings(env={}, home=home))
    try:
        service = second.identity
        resolution = service.resolve(sim.did)
        assert sim.did == resolution.document["id"]
        assert service.registry.applied_through() >= 1
    finally:
        second.close()
