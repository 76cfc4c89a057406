"""Secure elements and reusable KYC: keys never leave, receipts anchored through the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest

from simtrust.crypto import Keyring
from simtrust.errors import Conflict, DecryptionFailed, RateLimited, UnknownKey
from simtrust.identity import (
    DidRegistry,
    KycIssuer,
    KycVerifier,
    ReceiptLedger,
    SoftwareSecureElement,
    StatusListRegistry,
    StatusListVerifier,
    VerificationFailed,
    VerificationReceipt,
    did_key,
    identity_payload,
    present_sd_jwt,
    provision_sim_identity,
    verify_ed25519,
)
from simtrust.store import Database

from .conftest import NOW, FakeLedger

LIST = "https://operator-a.example/status/kyc"
ATTRIBUTES = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1815-12-10",
    "age_over_18": True,
}


def test_secure_element_signs_and_never_exports(identity_db: Database, tmp_path: object) -> None:
    keyring = Keyring.generate(tmp_path / "master.key")  # type: ignore[operator]
    element = SoftwareSecureElement("8944100000000000002", db=identity_db, keyring=keyring)
    public = element.generate_key("auth")
    verify_ed25519(public, element.sign("auth", b"challenge"), b"challenge")
    with pytest.raises(Conflict):
        element.generate_key("auth")
    with pytest.raises(UnknownKey):
        element.sign("missing", b"x")
    assert not [name for name in dir(element) if "export" in name or name == "private_key"]
    sealed = identity_db.query_one("SELECT sealed FROM identity_se_key WHERE label = 'auth'")
    assert sealed is not None
    assert len(bytes(sealed[0])) > 32
    # Another element object over the same store (a restart) can sign; a different element id cannot open it.
    again = SoftwareSecureElement("8944100000000000002", db=identity_db, keyring=keyring)
    verify_ed25519(public, again.sign("auth", b"m"), b"m")
    assert "8944100000000000002" in repr(again)
    identity_db.execute("UPDATE identity_se_key SET element_id = 'other'")
    other = SoftwareSecureElement("other", db=identity_db, keyring=keyring)
    with pytest.raises(DecryptionFailed):
        other.sign("auth", b"m")


def _setup(identity_db: Database, ledger: FakeLedger) -> dict[str, object]:
    registry = DidRegistry(identity_db)
    operator_a = SoftwareSecureElement("operator-a")
    issuer = provision_sim_identity(operator_a, network="testnet", now=NOW, label="issuer")
    sim = provision_sim_identity(
        SoftwareSecureElement("8944100000000000003"), network="testnet", now=NOW
    )
    for identity in (issuer, sim):
        assert "applied" == registry.apply(ledger.finalize("identity", identity.payload)).outcome
    status = StatusListRegistry(identity_db)
    status.create(LIST, issuer=issuer.did, purpose="revocation", signer=issuer.signer, now=NOW)
    submitted: list[tuple[str, bytes]] = []
    receipts = ReceiptLedger(
        identity_db, submit=lambda kind, body: submitted.append((kind, body)) or b""
    )
    verifier_did = did_key(SoftwareSecureElement("operator-b").generate_key("v"))
    verifier = KycVerifier(
        verifier_did,
        resolver=registry.resolver,
        status=StatusListVerifier(status.published, registry.resolver),
        receipts=receipts,
    )
    return {
        "registry": registry,
        "issuer": issuer,
        "sim": sim,
        "status": status,
        "receipts": receipts,
        "verifier": verifier,
        "verifier_did": verifier_did,
        "submitted": submitted,
    }


def test_reusable_kyc_flow_with_anchored_receipt_and_revocation(
    identity_db: Database, ledger: FakeLedger
) -> None:
    s = _setup(identity_db, ledger)
    issuer, sim, verifier = s["issuer"], s["sim"], s["verifier"]
    token, entry = KycIssuer(issuer.signer, s["status"], LIST).issue(  # type: ignore[attr-defined]
        subject=sim.did,
        holder_key=sim.signer.public_key,
        attributes=ATTRIBUTES,
        level="substantial",
        now=NOW,  # type: ignore[attr-defined]
    )
    shown = present_sd_jwt(
        token,
        disclose=["age_over_18"],
        holder=sim.signer,
        nonce="n-1",
        audience=s["verifier_did"],
        now=NOW,
    )  # type: ignore[attr-defined,arg-type]
    result, receipt = verifier.verify(shown, nonce="n-1", now=NOW, required=["age_over_18"])  # type: ignore[attr-defined]
    assert issuer.did == result.issuer  # type: ignore[attr-defined]
    assert "Ada" not in str(receipt.to_json())
    # The receipt went to the ledger; it is anchored once the message is finalized.
    [(kind, body)] = s["submitted"]  # type: ignore[misc]
    receipts: ReceiptLedger = s["receipts"]  # type: ignore[assignment]
    assert [receipt] == receipts.pending()
    message = ledger.finalize(kind, body)
    assert "applied" == s["registry"].apply(message).outcome  # type: ignore[attr-defined]
    assert (message.message_id, message.order) == receipts.anchored_in(receipt.digest)
    assert [] == receipts.pending()
    assert [receipt] == receipts.for_issuer(issuer.did)  # type: ignore[attr-defined]
    # Asking for an attribute that was not disclosed fails.
    again = present_sd_jwt(
        token,
        disclose=["age_over_18"],
        holder=sim.signer,
        nonce="n-2",
        audience=s["verifier_did"],
        now=NOW,
    )  # type: ignore[attr-defined,arg-type]
    with pytest.raises(VerificationFailed) as failure:
        verifier.verify(again, nonce="n-2", now=NOW, required=["family_name"])  # type: ignore[attr-defined]
    assert "disclosure" == failure.value.reason
    # Revocation: the issuer flips the bit, the second operator rejects and names the list.
    s["status"].set_status(LIST, int(entry["statusListIndex"]), True, signer=issuer.signer, now=NOW)  # type: ignore[attr-defined]
    later = present_sd_jwt(
        token,
        disclose=["age_over_18"],
        holder=sim.signer,
        nonce="n-3",
        audience=s["verifier_did"],
        now=NOW + timedelta(seconds=5),
    )  # type: ignore[attr-defined,arg-type]
    with pytest.raises(VerificationFailed) as failure:
        verifier.verify(later, nonce="n-3", now=NOW + timedelta(seconds=5))  # type: ignore[attr-defined]
    assert ("revoked", LIST) == (
        failure.value.reason,
        failure.value.context["statusListCredential"],
    )
    assert 1 == len(receipts.for_issuer(issuer.did))  # type: ignore[attr-defined]


def test_receipt_waits_when_the_ledger_refuses_and_is_sent_again(
    identity_db: Database, ledger: FakeLedger
) -> None:

    registry = DidRegistry(identity_db)
    calls: list[bytes] = []

    def submit(kind: str, body: bytes) -> bytes:
        calls.append(body)
        if len(calls) == 1:
            raise RateLimited("issuer quota exhausted")
        return registry.apply(ledger.finalize(kind, body)).outcome.encode()

    receipts = ReceiptLedger(identity_db, submit=submit)
    receipt = VerificationReceipt(
        "cd" * 32, "did:example:v", "did:example:i", "2026-06-01T12:00:00Z"
    )
    digest = receipts.record(receipt)
    assert [receipt] == receipts.pending()
    assert 1 == receipts.anchor_pending()
    assert receipts.anchored_in(digest) is not None
    assert [] == receipts.pending()


def test_receipt_replay_on_ledger_is_refused(identity_db: Database, ledger: FakeLedger) -> None:

    registry = DidRegistry(identity_db)
    receipt = VerificationReceipt(
        "ab" * 32, "did:example:v", "did:example:i", "2026-06-01T12:00:00Z"
    )
    body = identity_payload("verification-receipt", receipt.to_json())
    assert "applied" == registry.apply(ledger.finalize("identity", body)).outcome
    assert ("rejected", "replayed") == (
        registry.apply(ledger.finalize("identity", body)).outcome,
        registry.apply(ledger.finalize("identity", body)).reason,
    )
    bad = identity_payload(
        "verification-receipt", {**receipt.to_json(), "presentationHash": "Ada Lovelace"}
    )
    assert "rejected" == registry.apply(ledger.finalize("identity", bad)).outcome
