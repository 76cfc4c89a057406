"""SD-JWT VC (``dc+sd-jwt``) interop with the IETF reference implementation (``sd-jwt`` on PyPI).

Both directions: the reference verifier checks an SD-JWT simtrust issued
(issuer signature, ``_sd`` digests, disclosures) and recovers the same
claims; the reference issuer and holder (jwcrypto Ed25519 keys, EdDSA) build
an SD-JWT VC and a key-bound presentation that simtrust's verifier accepts,
and refuses once a disclosure is dropped into another presentation or the
nonce differs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    VerificationFailed,
    did_key,
    issue_sd_jwt,
    verify_sd_jwt,
)
from simtrust.identity._multibase import b64url_decode, b64url_encode

NOW = datetime.now(UTC).replace(microsecond=0)
VCT = "https://credentials.example/identity_credential"


def _jwk_of(signer: Ed25519Signer) -> JWK:
    return JWK(kty="OKP", crv="Ed25519", x=b64url_encode(signer.public_key))


def test_reference_verifier_reads_simtrust_sd_jwt() -> None:
    issuer = Ed25519Signer.generate()
    holder = Ed25519Signer.generate()
    claims = {"iss": issuer.controller, "given_name": "Erika", "family_name": "Mustermann"}
    issued = issue_sd_jwt(
        claims,
        issuer,
        disclosable=["given_name", "family_name"],
        holder_key=holder.public_key,
        now=NOW,
        vct=VCT,
        valid_for=timedelta(days=1),
    )

    def issuer_key(iss: str, header: dict[str, object]) -> JWK:
        assert iss == issuer.controller
        assert "dc+sd-jwt" == header["typ"]
        return _jwk_of(issuer)

    payload = SDJWTVerifier(issued, issuer_key).get_verified_payload()
    assert ("Erika", "Mustermann", VCT) == (
        payload["given_name"],
        payload["family_name"],
        payload["vct"],
    )
    tampered = issued.replace("~", "~" + issued.split("~")[1] + "~", 1)
    with pytest.raises(Exception):  # noqa: B017 - the reference raises plain exceptions
        SDJWTVerifier(tampered, issuer_key).get_verified_payload()


def test_simtrust_verifies_reference_sd_jwt_vc_with_key_binding() -> None:
    issuer_key = JWK.generate(kty="OKP", crv="Ed25519")
    holder_key = JWK.generate(kty="OKP", crv="Ed25519")
    raw = b64url_decode(json.loads(issuer_key.export_public())["x"])
    issuer_did = did_key(raw)
    kid = f"{issuer_did}#{issuer_did.removeprefix('did:key:')}"
    user_claims = {
        "iss": issuer_did,
        "vct": VCT,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(days=1)).timestamp()),
        SDObj("given_name"): "Erika",
        SDObj("birthdate"): "1963-08-12",
    }
    issuance = SDJWTIssuer(
        user_claims,
        issuer_key,
        holder_key,
        sign_alg="EdDSA",
        add_decoy_claims=True,
        extra_header_parameters={"typ": "dc+sd-jwt", "kid": kid},
    ).sd_jwt_issuance
    holder = SDJWTHolder(issuance)
    holder.create_presentation(
        {"given_name": True}, nonce="n-1", aud="did:example:verifier", holder_key=holder_key,
        sign_alg="EdDSA",
    )  # fmt: skip
    presentation = holder.sd_jwt_presentation
    # The reference holder stamps its key-binding JWT with the wall clock (iat = time()),
    # so the verifier's "now" is read here, not when the module was imported.
    now = datetime.now(UTC)
    verified = verify_sd_jwt(
        presentation, resolver=DidResolver(), now=now, nonce="n-1", audience="did:example:verifier"
    )
    assert issuer_did == verified.issuer
    assert ("given_name",) == verified.disclosed
    assert "Erika" == verified.claims["given_name"]
    assert "birthdate" not in verified.claims
    for nonce, audience, reason in (
        ("n-2", "did:example:verifier", "challenge"),
        ("n-1", "did:example:other", "domain"),
    ):
        with pytest.raises(VerificationFailed) as failure:
            verify_sd_jwt(presentation, resolver=DidResolver(), now=now, nonce=nonce,
                          audience=audience)  # fmt: skip
        assert reason == failure.value.reason
