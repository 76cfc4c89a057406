"""Bitstring Status List: encoding, herd-privacy size, allocation without reuse, revocation, suspension."""

from __future__ import annotations

import contextlib
import gzip
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import Conflict, DecodeError, InvalidInput, NotFound
from simtrust.identity import (
    MIN_LIST_SIZE,
    DidRegistry,
    DidResolver,
    Ed25519Signer,
    StatusListRegistry,
    StatusListVerifier,
    VerificationFailed,
    add_proof,
    decode_status_list,
    encode_status_list,
    identity_payload,
    issue_credential,
    status_bit,
    verify_credential,
)
from simtrust.identity._multibase import multibase_encode
from simtrust.identity._statusanchor import status_list_anchor
from simtrust.store import Database

from .conftest import NOW, FakeLedger, credential_for

LIST = "https://operator-a.example/status/1"


def test_encoding_is_gzip_then_multibase_base64url() -> None:
    bits = bytearray(MIN_LIST_SIZE // 8)
    bits[0] = 0x80  # index 0 is the left-most bit
    encoded = encode_status_list(bytes(bits))
    assert encoded.startswith("u")
    assert bytes(bits) == decode_status_list(encoded)
    assert status_bit(bytes(bits), 0)
    assert not status_bit(bytes(bits), 7)
    assert status_bit(b"\x01", 7)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_decoder_raises_only_decode_error(text: str) -> None:
    with contextlib.suppress(DecodeError):
        decode_status_list(text)


@settings(max_examples=100)
@given(st.binary(max_size=300))
def test_decoder_survives_arbitrary_gzip_member(data: bytes) -> None:
    for blob in (data, gzip.compress(data)):
        with contextlib.suppress(DecodeError, OSError, EOFError):
            assert gzip.decompress(blob) == decode_status_list(multibase_encode(blob, "u"))


def test_gzip_bomb_is_refused() -> None:
    with pytest.raises(DecodeError):
        decode_status_list(multibase_encode(gzip.compress(bytes(8 * 1024 * 1024)), "u"))


def _registry(db: Database, signer: Ed25519Signer, **kwargs: int) -> StatusListRegistry:
    registry = StatusListRegistry(db)
    registry.create(
        LIST, issuer=signer.controller, purpose="revocation", signer=signer, now=NOW, **kwargs
    )
    return registry


def test_list_smaller_than_herd_privacy_minimum_is_refused(
    identity_db: Database, issuer_signer: Ed25519Signer
) -> None:
    with pytest.raises(InvalidInput):
        _registry(identity_db, issuer_signer, size=1024)


def test_allocation_is_random_unique_and_persisted(
    identity_db: Database, issuer_signer: Ed25519Signer
) -> None:
    registry = _registry(identity_db, issuer_signer)
    indexes = [int(registry.allocate(LIST)["statusListIndex"]) for _ in range(40)]
    assert 40 == len(set(indexes))
    assert max(indexes) > 1000  # drawn across the list, not sequential
    # A new registry object over the same store never hands out a used index.
    picks = iter([indexes[0], indexes[1], 5])
    again = StatusListRegistry(identity_db, random_index=lambda _size: next(picks))
    assert "5" == again.allocate(LIST)["statusListIndex"]


def test_full_list_refuses_allocation(identity_db: Database, issuer_signer: Ed25519Signer) -> None:
    registry = _registry(identity_db, issuer_signer)
    identity_db.execute("UPDATE identity_status_list SET allocated = size")
    with pytest.raises(Conflict):
        registry.allocate(LIST)


def test_unallocated_index_cannot_be_set(
    identity_db: Database, issuer_signer: Ed25519Signer
) -> None:
    registry = _registry(identity_db, issuer_signer)
    with pytest.raises(NotFound):
        registry.set_status(LIST, 3, True, signer=issuer_signer, now=NOW)


@pytest.mark.parametrize(
    ("purpose", "reason"), [("revocation", "revoked"), ("suspension", "suspended")]
)
def test_verifier_reports_status_with_the_list_it_read(
    identity_db: Database, issuer_signer: Ed25519Signer, purpose: str, reason: str
) -> None:
    registry = StatusListRegistry(identity_db)
    registry.create(
        LIST, issuer=issuer_signer.controller, purpose=purpose, signer=issuer_signer, now=NOW
    )
    entry = registry.allocate(LIST, credential_id="urn:uuid:1")
    vc = issue_credential(
        credential_for(issuer_signer.controller, credentialStatus=entry), issuer_signer, now=NOW
    )
    checker = StatusListVerifier(registry.published, DidResolver())
    result = verify_credential(vc, resolver=DidResolver(), now=NOW, status=checker)
    assert [(purpose, LIST, int(entry["statusListIndex"]), False)] == [
        (s.status_purpose, s.status_list_credential, s.index, s.set) for s in result.status
    ]
    index = int(entry["statusListIndex"])
    registry.set_status(LIST, index, True, signer=issuer_signer, now=NOW + timedelta(minutes=1))
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(
            vc, resolver=DidResolver(), now=NOW + timedelta(minutes=2), status=checker
        )
    assert reason == failure.value.reason
    assert LIST == failure.value.context["statusListCredential"]
    assert index == failure.value.context["statusListIndex"]
    if purpose == "suspension":
        registry.set_status(
            LIST, index, False, signer=issuer_signer, now=NOW + timedelta(minutes=3)
        )
        verify_credential(
            vc, resolver=DidResolver(), now=NOW + timedelta(minutes=4), status=checker
        )


@pytest.mark.parametrize(("ahead", "reason"), [(30, "revoked"), (60, "revoked"),
                                             (61, "status-unavailable")])
def test_list_published_slightly_ahead_of_the_verifier_clock_is_read(
    identity_db: Database, issuer_signer: Ed25519Signer, ahead: int, reason: str
) -> None:
    """A list re-published by an issuer whose clock runs ahead is read within 60 s."""
    registry = StatusListRegistry(identity_db)
    registry.create(LIST, issuer=issuer_signer.controller, purpose="revocation",
                    signer=issuer_signer, now=NOW)  # fmt: skip
    entry = registry.allocate(LIST, credential_id="urn:uuid:1")
    vc = issue_credential(
        credential_for(issuer_signer.controller, credentialStatus=entry), issuer_signer, now=NOW
    )
    revoked_at = NOW + timedelta(minutes=5)
    registry.set_status(LIST, int(entry["statusListIndex"]), True, signer=issuer_signer,
                        now=revoked_at)  # fmt: skip
    checker = StatusListVerifier(registry.published, DidResolver())
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(vc, resolver=DidResolver(),
                          now=revoked_at - timedelta(seconds=ahead), status=checker)  # fmt: skip
    assert reason == failure.value.reason


def test_status_list_from_another_issuer_is_not_trusted(
    identity_db: Database, issuer_signer: Ed25519Signer
) -> None:
    registry = _registry(identity_db, issuer_signer)
    entry = registry.allocate(LIST)
    mallory = Ed25519Signer.generate()
    vc = issue_credential(
        credential_for(mallory.controller, credentialStatus=entry), mallory, now=NOW
    )
    checker = StatusListVerifier(registry.published, DidResolver())
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(vc, resolver=DidResolver(), now=NOW, status=checker)
    assert "status-unavailable" == failure.value.reason


def test_tampered_status_list_is_not_read(
    identity_db: Database, issuer_signer: Ed25519Signer
) -> None:
    registry = _registry(identity_db, issuer_signer)
    entry = registry.allocate(LIST)
    vc = issue_credential(
        credential_for(issuer_signer.controller, credentialStatus=entry), issuer_signer, now=NOW
    )

    def tampered(url: str) -> dict[str, object]:
        listed = registry.published(url)
        listed["credentialSubject"]["encodedList"] = encode_status_list(bytes(MIN_LIST_SIZE // 8))  # type: ignore[index]
        listed["credentialSubject"]["statusPurpose"] = "revocation"  # type: ignore[index]
        listed["validFrom"] = "2020-01-01T00:00:00Z"
        return listed

    with pytest.raises(VerificationFailed) as failure:
        verify_credential(
            vc, resolver=DidResolver(), now=NOW, status=StatusListVerifier(tampered, DidResolver())
        )
    assert "status-unavailable" == failure.value.reason


def test_unknown_list_url_is_status_unavailable(
    identity_db: Database, issuer_signer: Ed25519Signer
) -> None:
    registry = _registry(identity_db, issuer_signer)
    entry = {
        **registry.allocate(LIST),
        "statusListCredential": "https://operator-a.example/status/404",
    }
    vc = issue_credential(
        credential_for(issuer_signer.controller, credentialStatus=entry), issuer_signer, now=NOW
    )
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(
            vc,
            resolver=DidResolver(),
            now=NOW,
            status=StatusListVerifier(registry.published, DidResolver()),
        )
    assert "status-unavailable" == failure.value.reason


def test_status_list_anchor_on_the_ledger_detects_equivocation(
    identity_db: Database, issuer_signer: Ed25519Signer
) -> None:


    ledger, registry = FakeLedger(), DidRegistry(identity_db)
    status = StatusListRegistry(identity_db)
    first = status.create(
        LIST, issuer=issuer_signer.controller, purpose="revocation", signer=issuer_signer, now=NOW
    )
    entry = status.allocate(LIST)
    anchor = identity_payload("status-list", status_list_anchor(first, issuer_signer, NOW))
    assert "applied" == registry.apply(ledger.finalize("identity", anchor)).outcome
    # Someone else cannot anchor a list of this issuer.
    mallory = Ed25519Signer.generate()
    forged = status_list_anchor(first, mallory, NOW)
    forged["issuer"] = issuer_signer.controller
    outcome = registry.apply(ledger.finalize("identity", identity_payload("status-list", forged)))
    assert ("rejected", "invalid-signature") == (outcome.outcome, outcome.reason)

    unsigned = {k: v for k, v in forged.items() if k != "proof"}
    signed_by_mallory = add_proof(unsigned, mallory, created=NOW)
    outcome = registry.apply(
        ledger.finalize("identity", identity_payload("status-list", signed_by_mallory))
    )
    assert ("rejected", "key-not-authorized") == (outcome.outcome, outcome.reason)
    vc = issue_credential(
        credential_for(issuer_signer.controller, credentialStatus=entry), issuer_signer, now=NOW
    )
    checker = StatusListVerifier(
        status.published, DidResolver(), anchored=registry.latest_status_anchor
    )
    assert [False] == [
        s.set for s in verify_credential(vc, resolver=DidResolver(), now=NOW, status=checker).status
    ]
    # The issuer revokes but shows verifiers a list the ledger does not hold: refused.
    status.set_status(
        LIST,
        int(entry["statusListIndex"]),
        True,
        signer=issuer_signer,
        now=NOW + timedelta(seconds=1),
    )
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(
            vc, resolver=DidResolver(), now=NOW + timedelta(seconds=2), status=checker
        )
    assert "status-unavailable" == failure.value.reason
