"""The runtime's identity service: did:simtrust through the real ledger node, issuance, status."""

from __future__ import annotations

from simtrust.identity import (
    add_key_patch,
    deactivate_operation,
    provision_sim_identity,
    remove_key_patch,
    update_operation,
    verification_report,
)
from simtrust.runtime import Runtime

from .conftest import credential_for


def test_sim_did_lives_on_the_ledger(runtime: Runtime) -> None:
    service = runtime.identity
    element = service.element("8944100000000000010")
    sim = provision_sim_identity(element, network=service.network, now=runtime.clock())
    outcome = service.submit_operation(sim.operation)
    assert ("applied", sim.did, 1) == (outcome.outcome, outcome.did, outcome.version)
    assert "1" == service.resolve(sim.did).document_metadata["versionId"]
    # Rotation through the ledger; the replayed operation is voided by the ledger too.
    new_public = element.generate_key("did-key-2")
    rotate = update_operation(
        sim.signer,
        did=sim.did,
        previous_version="1",
        patches=[
            add_key_patch(sim.did, "key-2", new_public, ["capabilityInvocation", "authentication"]),
            remove_key_patch(f"{sim.did}#key-1"),
        ],
        now=runtime.clock(),
    )
    assert "applied" == service.submit_operation(rotate).outcome
    replay = service.submit_operation(rotate)
    assert ("rejected", "replayed") == (replay.outcome, replay.reason)
    signer2 = element.signer("did-key-2", f"{sim.did}#key-2")
    gone = service.submit_operation(
        deactivate_operation(signer2, did=sim.did, previous_version="2", now=runtime.clock())
    )
    assert "applied" == gone.outcome
    assert service.resolve(sim.did).document_metadata["deactivated"] is True
    assert [f"{sim.did}#key-2"] == service.resolve(sim.did, version_id="2").document[
        "authentication"
    ]


def test_issue_revoke_and_report(runtime: Runtime) -> None:
    service = runtime.identity
    credential = credential_for(service.issuer().controller)
    vc = service.issue(credential, {"credentialStatus": {"type": "BitstringStatusListEntry"}})
    report = verification_report(lambda: service.verify_credential(vc))
    assert report["verified"] is True
    assert ["proof", "validityPeriod", "credentialStatus"] == report["checks"]
    service.set_status(vc["credentialStatus"], True)
    report = verification_report(lambda: service.verify_credential(vc))
    assert report["verified"] is False
    assert "revoked" == report["errors"][0]["reason"]
    assert (
        vc["credentialStatus"]["statusListCredential"]
        == report["errors"][0]["statusListCredential"]
    )
    # The issuer's DID was created once and is reused.
    assert service.issuer().controller == runtime.identity.issuer().controller
