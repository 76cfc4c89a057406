"""VC-JOSE (vc+jwt) and SD-JWT with key binding; fuzzed decoders."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    VerificationFailed,
    issue_sd_jwt,
    issue_vc_jwt,
    present_sd_jwt,
    verify_enveloped_vc_jwt,
    verify_sd_jwt,
    verify_vc_jwt,
)
from simtrust.identity._multibase import b64url_decode, b64url_encode

from .conftest import NOW, credential_for

AUD = "did:example:operator-b"


def _reason(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(VerificationFailed) as failure:
        fn(*args, **kwargs)  # type: ignore[operator]
    return failure.value.reason


def test_vc_jwt_header_payload_and_verification(issuer_signer: Ed25519Signer) -> None:
    credential = credential_for(issuer_signer.controller)
    token = issue_vc_jwt(credential, issuer_signer)
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert {
        "alg": "EdDSA",
        "kid": issuer_signer.verification_method,
        "typ": "vc+jwt",
        "cty": "vc",
    } == header
    assert credential == json.loads(b64url_decode(token.split(".")[1]))
    assert issuer_signer.controller == verify_vc_jwt(token, resolver=DidResolver(), now=NOW).issuer


def test_vc_jwt_tampering_and_wrong_key(issuer_signer: Ed25519Signer) -> None:
    token = issue_vc_jwt(credential_for(issuer_signer.controller), issuer_signer)
    head, body, sig = token.split(".")
    forged = json.loads(b64url_decode(body))
    forged["credentialSubject"]["imeiTac"] = "00000000"
    forged_token = f"{head}.{b64url_encode(json.dumps(forged).encode())}.{sig}"
    assert "invalid-signature" == _reason(
        verify_vc_jwt, forged_token, resolver=DidResolver(), now=NOW
    )
    none_alg = b64url_encode(json.dumps({"alg": "none", "typ": "vc+jwt"}).encode())
    assert "unsupported-cryptosuite" == _reason(
        verify_vc_jwt, f"{none_alg}.{body}.", resolver=DidResolver(), now=NOW
    )
    other = Ed25519Signer.generate()
    with pytest.raises(VerificationFailed):
        issue_vc_jwt(credential_for(issuer_signer.controller), other)


def test_vc_jwt_validity_period(issuer_signer: Ed25519Signer) -> None:
    token = issue_vc_jwt(
        credential_for(issuer_signer.controller, validUntil="2026-06-01T12:00:00Z"), issuer_signer
    )
    assert "expired" == _reason(
        verify_vc_jwt, token, resolver=DidResolver(), now=NOW + timedelta(seconds=1)
    )


@settings(max_examples=200)
@given(
    st.text(max_size=200)
    | st.builds(
        lambda a, b, c: f"{a}.{b}.{c}",
        st.text(max_size=40),
        st.text(max_size=40),
        st.text(max_size=40),
    )
)
def test_jwt_verifier_reports_garbage_as_failure(token: str) -> None:
    with pytest.raises(VerificationFailed):
        verify_vc_jwt(token, resolver=DidResolver(), now=NOW)


_V2 = "https://www.w3.org/ns/credentials/v2"


@given(
    st.dictionaries(
        st.sampled_from(["@context", "id", "type", "proof", "x"]),
        st.sampled_from([_V2, [_V2], "EnvelopedVerifiableCredential", "data:application/vc+jwt,",
                         "data:text/plain,x", None, 7, []])
        | st.text(max_size=30).map(lambda t: "data:application/vc+jwt," + t),
        max_size=5,
    )
    | st.text(max_size=20)
)
@settings(max_examples=300)
def test_enveloped_verifier_reports_garbage_as_failure(item: object) -> None:
    """VCDM 2.0 §4.13.1 envelopes from untrusted callers: a failure with a reason, no crash."""
    with pytest.raises(VerificationFailed):
        verify_enveloped_vc_jwt(item, resolver=DidResolver(), now=NOW)


def test_enveloped_vc_jwt_round_trip(issuer_signer: Ed25519Signer) -> None:
    token = issue_vc_jwt(credential_for(issuer_signer.controller), issuer_signer)
    envelope = {"@context": [_V2], "id": f"data:application/vc+jwt,{token}",
                "type": "EnvelopedVerifiableCredential"}  # fmt: skip
    verified = verify_enveloped_vc_jwt(envelope, resolver=DidResolver(), now=NOW)
    assert issuer_signer.controller == verified.issuer


KYC = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1815-12-10",
    "age_over_18": True,
}


def _sd_jwt(issuer: Ed25519Signer, holder: Ed25519Signer) -> str:
    claims = {"sub": holder.controller, "kyc_level": "substantial", **KYC}
    return issue_sd_jwt(
        claims,
        issuer,
        disclosable=KYC.keys(),
        holder_key=holder.public_key,
        now=NOW,
        vct="urn:test",
    )


def test_sd_jwt_hides_everything_not_disclosed(
    issuer_signer: Ed25519Signer, holder_signer: Ed25519Signer
) -> None:
    token = _sd_jwt(issuer_signer, holder_signer)
    payload = json.loads(b64url_decode(token.split("~")[0].split(".")[1]))
    # No claim value in the clear (quoted, so random base64 digests cannot match by chance).
    assert '"Ada"' not in json.dumps(payload)
    assert not set(KYC) & set(payload)
    assert "sha-256" == payload["_sd_alg"]
    assert len(KYC) + 3 == len(payload["_sd"])  # decoys hide how many claims exist
    shown = present_sd_jwt(
        token, disclose=["age_over_18"], holder=holder_signer, nonce="n1", audience=AUD, now=NOW
    )
    result = verify_sd_jwt(shown, resolver=DidResolver(), now=NOW, nonce="n1", audience=AUD)
    assert ("age_over_18",) == result.disclosed
    assert result.claims["age_over_18"] is True
    assert "given_name" not in result.claims
    assert "substantial" == result.claims["kyc_level"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": "other"}, "challenge"),
        ({"audience": "did:example:op-c"}, "domain"),
        ({"now": NOW + timedelta(minutes=10)}, "key-binding"),
    ],
)
def test_sd_jwt_key_binding_checks(
    issuer_signer: Ed25519Signer,
    holder_signer: Ed25519Signer,
    change: dict[str, object],
    reason: str,
) -> None:
    shown = present_sd_jwt(
        _sd_jwt(issuer_signer, holder_signer),
        disclose=["birthdate"],
        holder=holder_signer,
        nonce="n1",
        audience=AUD,
        now=NOW,
    )
    args: dict[str, object] = {"nonce": "n1", "audience": AUD, "now": NOW, **change}
    assert reason == _reason(verify_sd_jwt, shown, resolver=DidResolver(), **args)


def test_sd_jwt_stolen_credential_cannot_be_presented(
    issuer_signer: Ed25519Signer, holder_signer: Ed25519Signer
) -> None:
    token = _sd_jwt(issuer_signer, holder_signer)
    thief = Ed25519Signer.generate()
    shown = present_sd_jwt(
        token, disclose=["birthdate"], holder=thief, nonce="n", audience=AUD, now=NOW
    )
    assert "key-binding" == _reason(
        verify_sd_jwt, shown, resolver=DidResolver(), now=NOW, nonce="n", audience=AUD
    )
    assert "key-binding" == _reason(
        verify_sd_jwt, token, resolver=DidResolver(), now=NOW, nonce="n", audience=AUD
    )


def test_sd_jwt_disclosure_tricks_are_refused(
    issuer_signer: Ed25519Signer, holder_signer: Ed25519Signer
) -> None:
    token = _sd_jwt(issuer_signer, holder_signer)
    jwt, *disclosures, _ = token.split("~")
    forged = b64url_encode(json.dumps(["salt", "given_name", "Eve"]).encode())
    for chosen in ([forged], [disclosures[0], disclosures[0]]):
        presented = jwt + "~" + "".join(d + "~" for d in chosen)
        shown = present_sd_jwt(
            presented,
            disclose=["given_name", "age_over_18", "birthdate", "family_name"],
            holder=holder_signer,
            nonce="n",
            audience=AUD,
            now=NOW,
        )
        assert "disclosure" == _reason(
            verify_sd_jwt, shown, resolver=DidResolver(), now=NOW, nonce="n", audience=AUD
        )


def test_sd_jwt_altered_after_key_binding_fails(
    issuer_signer: Ed25519Signer, holder_signer: Ed25519Signer
) -> None:
    token = _sd_jwt(issuer_signer, holder_signer)
    shown = present_sd_jwt(
        token, disclose=["birthdate"], holder=holder_signer, nonce="n", audience=AUD, now=NOW
    )
    extra = token.split("~")[1]
    jwt, *rest = shown.split("~")
    widened = "~".join([jwt, extra, *rest])
    assert "key-binding" == _reason(
        verify_sd_jwt, widened, resolver=DidResolver(), now=NOW, nonce="n", audience=AUD
    )


@settings(max_examples=200)
@given(st.lists(st.text(max_size=30), max_size=5).map("~".join))
def test_sd_jwt_verifier_reports_garbage_as_failure(text: str) -> None:
    with pytest.raises(VerificationFailed):
        verify_sd_jwt(text, resolver=DidResolver(), now=NOW, nonce="n", audience=AUD)
