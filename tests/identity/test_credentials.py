"""VC Data Model 2.0: shape, issuer binding, validity period, presentations, reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    VerificationFailed,
    add_proof,
    create_presentation,
    issue_credential,
    verification_report,
    verify_credential,
    verify_presentation,
)

from .conftest import NOW, credential_for


def _reason(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(VerificationFailed) as failure:
        fn(*args, **kwargs)
    return failure.value.reason


def test_issue_and_verify_device_certificate(issuer_signer: Ed25519Signer) -> None:
    vc = issue_credential(credential_for(issuer_signer.controller), issuer_signer, now=NOW)
    result = verify_credential(vc, resolver=DidResolver(), now=NOW)
    assert issuer_signer.controller == result.issuer
    assert "eddsa-jcs-2022" == result.proofs[0].cryptosuite


def test_only_the_issuer_key_may_sign(issuer_signer: Ed25519Signer) -> None:
    other = Ed25519Signer.generate()
    assert "key-not-authorized" == _reason(
        issue_credential, credential_for(issuer_signer.controller), other, now=NOW
    )
    # A proof by another key attached to a credential naming our issuer is refused.

    forged = add_proof(credential_for(issuer_signer.controller), other, created=NOW)
    assert "key-not-authorized" == _reason(
        verify_credential, forged, resolver=DidResolver(), now=NOW
    )


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "not-yet-valid"),
        (datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC), "expired"),
    ],
)
def test_validity_period_uses_the_clock_passed_in(
    issuer_signer: Ed25519Signer, now: datetime, reason: str
) -> None:
    credential = credential_for(issuer_signer.controller, validUntil="2027-01-01T00:00:00Z")
    vc = issue_credential(credential, issuer_signer, now=NOW)
    assert 1 == len(verify_credential(vc, resolver=DidResolver(), now=NOW).proofs)
    assert reason == _reason(verify_credential, vc, resolver=DidResolver(), now=now)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"@context": ["https://www.w3.org/ns/credentials/v2", "https://evil.example/ctx"]},
            "unknown-context",
        ),
        ({"@context": ["https://www.w3.org/2018/credentials/v1"]}, "malformed"),
        ({"type": ["DeviceCertificate"]}, "malformed"),
        ({"issuer": 42}, "malformed"),
        ({"credentialSubject": {}}, "malformed"),
        ({"validFrom": "yesterday"}, "malformed"),
        ({"validFrom": "2026-01-01T00:00:00"}, "malformed"),
        ({"credentialStatus": ["x"]}, "malformed"),
    ],
)
def test_bad_data_model_is_reported(
    issuer_signer: Ed25519Signer, change: dict[str, Any], reason: str
) -> None:
    credential = {**credential_for(issuer_signer.controller), **change}
    assert reason == _reason(verify_credential, credential, resolver=DidResolver(), now=NOW)


def test_status_entry_without_checker_is_not_silently_accepted(
    issuer_signer: Ed25519Signer,
) -> None:
    credential = credential_for(
        issuer_signer.controller,
        credentialStatus={"type": "BitstringStatusListEntry", "statusPurpose": "revocation"},
    )
    vc = issue_credential(credential, issuer_signer, now=NOW)
    assert "status-unavailable" == _reason(verify_credential, vc, resolver=DidResolver(), now=NOW)


def test_presentation_with_holder_binding_challenge_and_domain(
    issuer_signer: Ed25519Signer, holder_signer: Ed25519Signer
) -> None:
    vc = issue_credential(
        credential_for(issuer_signer.controller, holder_signer.controller), issuer_signer, now=NOW
    )
    vp = create_presentation([vc], holder_signer, now=NOW, challenge="c-123", domain="op-b.example")
    result = verify_presentation(
        vp, resolver=DidResolver(), now=NOW, challenge="c-123", domain="op-b.example"
    )
    assert holder_signer.controller == result.holder
    assert [issuer_signer.controller] == [c.issuer for c in result.credentials]
    assert "challenge" == _reason(
        verify_presentation,
        vp,
        resolver=DidResolver(),
        now=NOW,
        challenge="replayed",
        domain="op-b.example",
    )
    assert "domain" == _reason(
        verify_presentation,
        vp,
        resolver=DidResolver(),
        now=NOW,
        challenge="c-123",
        domain="op-c.example",
    )


def test_presentation_by_someone_else_breaks_holder_binding(
    issuer_signer: Ed25519Signer, holder_signer: Ed25519Signer
) -> None:
    vc = issue_credential(
        credential_for(issuer_signer.controller, holder_signer.controller), issuer_signer, now=NOW
    )
    thief = Ed25519Signer.generate()
    vp = create_presentation([vc], thief, now=NOW, challenge="c")
    assert "holder-binding" == _reason(
        verify_presentation,
        vp,
        resolver=DidResolver(),
        now=NOW,
        challenge="c",
        require_holder_binding=True,
    )
    # VCDM 2.0 §4.13: without a request for holder binding, the presentation stands.
    verify_presentation(vp, resolver=DidResolver(), now=NOW, challenge="c")
    vp = create_presentation([vc], holder_signer, now=NOW, challenge="c")
    vp["holder"] = thief.controller
    assert "invalid-signature" == _reason(
        verify_presentation, vp, resolver=DidResolver(), now=NOW, challenge="c"
    )


def test_presentation_with_assertion_proof_fails_purpose(
    issuer_signer: Ed25519Signer, holder_signer: Ed25519Signer
) -> None:

    vp = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": holder_signer.controller,
    }
    vp = add_proof(vp, holder_signer, created=NOW)
    assert "proof-purpose" == _reason(verify_presentation, vp, resolver=DidResolver(), now=NOW)


def test_report_never_raises_for_garbage() -> None:
    for garbage in (None, 3, "x", [], {"proof": 1}, {"@context": "x"}):
        report = verification_report(
            lambda g=garbage: verify_credential(g, resolver=DidResolver(), now=NOW)
        )
        assert report["verified"] is False
        assert report["errors"][0]["reason"] == "malformed"


def test_report_of_a_good_credential(issuer_signer: Ed25519Signer) -> None:
    vc = issue_credential(credential_for(issuer_signer.controller), issuer_signer, now=NOW)
    report = verification_report(lambda: verify_credential(vc, resolver=DidResolver(), now=NOW))
    assert {
        "verified": True,
        "errors": [],
        "warnings": [],
        "checks": ["proof", "validityPeriod"],
        "issuer": issuer_signer.controller,
        "status": [],
    } == report
