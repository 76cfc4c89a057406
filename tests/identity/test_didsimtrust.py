"""did:simtrust registry fed with finalized ledger messages: life cycle, authorization, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.identity import (
    DidNotFound,
    DidRegistry,
    Ed25519Signer,
    SoftwareSecureElement,
    VerificationFailed,
    add_key_patch,
    create_operation,
    deactivate_operation,
    did_key,
    identity_payload,
    issue_credential,
    provision_sim_identity,
    remove_key_patch,
    simtrust_did,
    update_operation,
    verify_credential,
)
from simtrust.store import Database

from .conftest import NOW, FakeLedger, credential_for

NET = "testnet"


def _new(nonce: str = "n1") -> tuple[str, Ed25519Signer]:
    key = Ed25519Signer.generate()
    did = simtrust_did(NET, key.public_key, nonce)
    return did, Ed25519Signer(key._key, f"{did}#key-1")


def _submit(registry: DidRegistry, ledger: FakeLedger, operation: dict[str, Any]) -> Any:
    return registry.apply(ledger.finalize("identity", identity_payload("did-operation", operation)))


@pytest.fixture
def registry(identity_db: Database) -> DidRegistry:
    return DidRegistry(identity_db)


def test_create_then_resolve_with_metadata(registry: DidRegistry, ledger: FakeLedger) -> None:
    did, signer = _new()
    operation = create_operation(signer, network=NET, nonce="n1", now=NOW)
    with pytest.raises(DidNotFound):
        registry.resolve(did)  # nothing happens before finalization
    outcome = _submit(registry, ledger, operation)
    assert ("applied", did, 1) == (outcome.outcome, outcome.did, outcome.version)
    resolution = registry.resolve(did)
    assert did == resolution.document["id"]
    assert [f"{did}#key-1"] == resolution.document["capabilityInvocation"]
    created = datetime.fromtimestamp(ledger.messages[0].issued_at, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )  # type: ignore[arg-type]
    assert {
        "created": created,
        "updated": created,
        "versionId": "1",
    } == resolution.document_metadata


def test_key_rotation_and_services(registry: DidRegistry, ledger: FakeLedger) -> None:
    did, key1 = _new()
    _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    new = Ed25519Signer.generate()
    key2 = Ed25519Signer(new._key, f"{did}#key-2")
    rotate = update_operation(
        key1,
        did=did,
        previous_version="1",
        patches=[
            add_key_patch(
                did, "key-2", key2.public_key, ["capabilityInvocation", "assertionMethod"]
            ),
            remove_key_patch(f"{did}#key-1"),
            {
                "op": "add-service",
                "service": {
                    "id": f"{did}#ota",
                    "type": "OtaEndpoint",
                    "serviceEndpoint": "https://ota.example",
                },
            },
        ],
        now=NOW,
    )
    assert "applied" == _submit(registry, ledger, rotate).outcome
    document = registry.resolve(did).document
    assert [f"{did}#key-2"] == document["capabilityInvocation"]
    assert ["https://ota.example"] == [s["serviceEndpoint"] for s in document["service"]]
    # The rotated-out key may no longer update; the new one may.
    late = update_operation(
        key1,
        did=did,
        previous_version="2",
        patches=[{"op": "remove-service", "id": f"{did}#ota"}],
        now=NOW,
    )
    assert ("rejected", "key-not-authorized") == (
        _submit(registry, ledger, late).outcome,
        _submit_reason(registry, did),
    )
    ok = update_operation(
        key2,
        did=did,
        previous_version="2",
        patches=[{"op": "remove-service", "id": f"{did}#ota"}],
        now=NOW,
    )
    assert "applied" == _submit(registry, ledger, ok).outcome
    assert "service" not in registry.resolve(did).document


def _submit_reason(registry: DidRegistry, did: str) -> str:
    return registry.operations(did)[-1]["reason"].split(":")[0]


def test_stale_and_replayed_updates_are_rejected(registry: DidRegistry, ledger: FakeLedger) -> None:
    did, key1 = _new()
    _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    service = {"id": f"{did}#a", "type": "T", "serviceEndpoint": "https://a.example"}
    first = update_operation(
        key1,
        did=did,
        previous_version="1",
        patches=[{"op": "add-service", "service": service}],
        now=NOW,
    )
    second = update_operation(
        key1,
        did=did,
        previous_version="1",
        patches=[{"op": "add-service", "service": {**service, "id": f"{did}#b"}}],
        now=NOW,
    )
    assert "applied" == _submit(registry, ledger, first).outcome
    stale = _submit(registry, ledger, second)
    assert ("rejected", "stale") == (stale.outcome, stale.reason)
    replay = _submit(registry, ledger, first)
    assert ("rejected", "replayed") == (replay.outcome, replay.reason)
    assert "2" == registry.resolve(did).document_metadata["versionId"]


def test_redelivered_message_is_ignored(registry: DidRegistry, ledger: FakeLedger) -> None:
    _did, key1 = _new()
    message = ledger.finalize(
        "identity",
        identity_payload("did-operation", create_operation(key1, network=NET, nonce="n1", now=NOW)),
    )
    assert "applied" == registry.apply(message).outcome
    assert ("ignored", "already applied") == (
        registry.apply(message).outcome,
        registry.apply(message).reason,
    )
    assert "ignored" == registry.apply(ledger.finalize("tagged-data", b"hello")).outcome


def test_only_capability_invocation_keys_may_update(
    registry: DidRegistry, ledger: FakeLedger
) -> None:
    did, key1 = _new()
    _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    assertion = Ed25519Signer(Ed25519Signer.generate()._key, f"{did}#assert")
    _submit(
        registry,
        ledger,
        update_operation(
            key1,
            did=did,
            previous_version="1",
            patches=[add_key_patch(did, "assert", assertion.public_key, ["assertionMethod"])],
            now=NOW,
        ),
    )
    attempt = update_operation(
        assertion,
        did=did,
        previous_version="2",
        patches=[remove_key_patch(f"{did}#key-1")],
        now=NOW,
    )
    outcome = _submit(registry, ledger, attempt)
    assert ("rejected", "key-not-authorized") == (outcome.outcome, outcome.reason)
    stranger = Ed25519Signer.generate()
    outcome = _submit(
        registry,
        ledger,
        update_operation(
            stranger,
            did=did,
            previous_version="2",
            patches=[remove_key_patch(f"{did}#key-1")],
            now=NOW,
        ),
    )
    assert ("rejected", "key-not-authorized") == (outcome.outcome, outcome.reason)
    # A forged signature by the right key id fails as a signature.
    forged = dict(
        update_operation(
            key1,
            did=did,
            previous_version="2",
            patches=[remove_key_patch(f"{did}#assert")],
            now=NOW,
        )
    )
    forged["patches"] = [remove_key_patch(f"{did}#key-1")]
    outcome = _submit(registry, ledger, forged)
    assert ("rejected", "invalid-signature") == (outcome.outcome, outcome.reason)
    assert "2" == registry.resolve(did).document_metadata["versionId"]


def test_a_controller_did_may_update(registry: DidRegistry, ledger: FakeLedger) -> None:
    did, key1 = _new()
    _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    operator = Ed25519Signer.generate()
    _submit(
        registry,
        ledger,
        update_operation(
            key1,
            did=did,
            previous_version="1",
            patches=[{"op": "set-controller", "controller": [did_key(operator.public_key)]}],
            now=NOW,
        ),
    )
    outcome = _submit(
        registry,
        ledger,
        update_operation(
            operator,
            did=did,
            previous_version="2",
            patches=[
                {
                    "op": "add-service",
                    "service": {"id": f"{did}#s", "type": "T", "serviceEndpoint": "x"},
                }
            ],
            now=NOW,
        ),
    )
    assert "applied" == outcome.outcome


def test_create_must_be_derived_from_the_signing_key(
    registry: DidRegistry, ledger: FakeLedger
) -> None:
    _did, key1 = _new("n1")
    operation = create_operation(key1, network=NET, nonce="n1", now=NOW)
    squatted = {**operation, "nonce": "n2"}
    outcome = _submit(registry, ledger, squatted)
    assert ("rejected", "unauthorized") == (outcome.outcome, outcome.reason)
    assert "applied" == _submit(registry, ledger, operation).outcome
    assert ("rejected", "replayed") == (_submit(registry, ledger, operation).outcome, "replayed")


def test_deactivate_and_history(registry: DidRegistry, ledger: FakeLedger) -> None:
    did, key1 = _new()
    _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    _submit(
        registry,
        ledger,
        update_operation(
            key1,
            did=did,
            previous_version="1",
            patches=[
                {
                    "op": "add-service",
                    "service": {"id": f"{did}#s", "type": "T", "serviceEndpoint": "x"},
                }
            ],
            now=NOW,
        ),
    )
    vc = issue_credential(credential_for(did), key1, now=NOW)
    assert did == verify_credential(vc, resolver=registry.resolver, now=NOW).issuer
    _submit(registry, ledger, deactivate_operation(key1, did=did, previous_version="2", now=NOW))
    current = registry.resolve(did)
    assert current.document_metadata["deactivated"] is True
    assert "3" == current.document_metadata["versionId"]
    assert "verificationMethod" not in current.document
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(vc, resolver=registry.resolver, now=NOW)
    assert "key-not-authorized" == failure.value.reason
    after = _submit(
        registry,
        ledger,
        update_operation(
            key1, did=did, previous_version="3", patches=[remove_key_patch(f"{did}#key-1")], now=NOW
        ),
    )
    assert ("rejected", "deactivated") == (after.outcome, after.reason)
    # Every past version stays resolvable, by id and by time.
    first = registry.resolve(did, version_id="1")
    assert "service" not in first.document
    assert {"versionId": "1", "nextVersionId": "2"}.items() <= first.document_metadata.items()
    assert "deactivated" not in first.document_metadata
    times = [datetime.fromtimestamp(m.issued_at, UTC) for m in ledger.messages]  # type: ignore[arg-type]
    assert (
        "1"
        == registry.resolve(did, version_time=times[0] + timedelta(seconds=5)).document_metadata[
            "versionId"
        ]
    )
    assert "2" == registry.resolve(did, version_time=times[1]).document_metadata["versionId"]
    with pytest.raises(DidNotFound):
        registry.resolve(did, version_time=times[0] - timedelta(seconds=1))
    with pytest.raises(DidNotFound):
        registry.resolve(did, version_id="9")


def test_conflicting_updates_first_in_finalized_order_wins(
    registry: DidRegistry, ledger: FakeLedger
) -> None:
    did, key1 = _new()
    _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    a = update_operation(
        key1,
        did=did,
        previous_version="1",
        patches=[
            {
                "op": "add-service",
                "service": {"id": f"{did}#a", "type": "T", "serviceEndpoint": "a"},
            }
        ],
        now=NOW,
    )
    b = update_operation(
        key1,
        did=did,
        previous_version="1",
        patches=[
            {
                "op": "add-service",
                "service": {"id": f"{did}#b", "type": "T", "serviceEndpoint": "b"},
            }
        ],
        now=NOW,
    )
    assert ["applied", "rejected"] == [_submit(registry, ledger, op).outcome for op in (b, a)]
    assert [f"{did}#b"] == [s["id"] for s in registry.resolve(did).document["service"]]


def test_sim_identity_keys_stay_in_the_secure_element(
    registry: DidRegistry, ledger: FakeLedger
) -> None:
    element = SoftwareSecureElement("8944100000000000001")
    sim = provision_sim_identity(element, network=NET, now=NOW)
    assert "applied" == registry.apply(ledger.finalize("identity", sim.payload)).outcome
    assert [f"{sim.did}#key-1"] == registry.resolve(sim.did).document["authentication"]
    assert ["did-key-1"] == element.labels()


def test_registry_bound_to_a_network_refuses_other_networks(
    identity_db: Database, ledger: FakeLedger
) -> None:
    registry = DidRegistry(identity_db, network="mainnet")
    _, key1 = _new()
    outcome = _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    assert ("rejected", "wrong-network") == (outcome.outcome, outcome.reason)


def test_invalid_documents_are_rejected(registry: DidRegistry, ledger: FakeLedger) -> None:
    did, key1 = _new()
    _submit(registry, ledger, create_operation(key1, network=NET, nonce="n1", now=NOW))
    for patches in (
        [remove_key_patch(f"{did}#key-1")],  # would orphan the DID
        [
            {
                "op": "add-service",
                "service": {"id": "https://elsewhere#x", "type": "T", "serviceEndpoint": "x"},
            }
        ],
        [{"op": "explode"}],
        [add_key_patch(did, "key-1", key1.public_key, [])],  # duplicate id
    ):
        outcome = _submit(
            registry,
            ledger,
            update_operation(key1, did=did, previous_version="1", patches=patches, now=NOW),
        )
        assert ("rejected", "invalid-document") == (outcome.outcome, outcome.reason)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    payload=st.binary(max_size=200)
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(
        lambda d: identity_payload("did-operation", d)
    )
)
def test_apply_never_raises_on_garbage(
    registry: DidRegistry, ledger: FakeLedger, payload: bytes
) -> None:
    assert registry.apply(ledger.finalize("identity", payload)).outcome in ("rejected", "ignored")
