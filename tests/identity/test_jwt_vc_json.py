"""``jwt_vc_json`` over OpenID4VCI (Appendix A.1.1): VCDM 1.1 credentials as JWTs.

The oid4vc-ts wallet reads the configuration from the issuer metadata,
proves its key and receives the credential; the JWT is then checked with
joserfc (an independent JOSE implementation) against the issuer key from the
issuer's DID document, and by simtrust's own verifier, which also refuses
altered, foreign, expired and malformed credentials (fuzzed).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    VerificationFailed,
    did_key,
    issue_jwt_vc_json,
    verify_jwt_vc_json,
)
from simtrust.identity._multibase import b64url_encode
from simtrust.runtime import Runtime

from . import test_oid4vc_interop as interop
from .conftest import NOW
from .test_oid4vc_interop import Server, _node

server = interop.server
DEVICE = {"imei": "490154203237518", "model": "meter-x1"}


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_oid4vc_ts_wallet_receives_a_jwt_vc_json_credential(server: Server) -> None:
    node = _node()
    metadata = server.http.get("/.well-known/openid-credential-issuer").json()
    config = metadata["credential_configurations_supported"]["DeviceCredentialJwt"]
    assert ("jwt_vc_json", ["VerifiableCredential", "DeviceCredential"]) == (
        config["format"], config["credential_definition"]["type"])
    made = server.http.post("/oid4vci/offers", headers=server.headers, json={
        "credential_configuration_id": "DeviceCredentialJwt", "claims": DEVICE})
    assert 201 == made.status_code, made.text
    got = server.wallet(node, {"action": "receive", "offerUrl": made.json()["offerUrl"]})
    token = got["credential"]
    assert isinstance(token, str)
    # joserfc checks the signature with the key the issuer's DID document publishes.
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    identity = server.rt.identity
    public = identity.resolver.verification_key(header["kid"], "assertionMethod")
    key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public)})
    checked = jws.deserialize_compact(token, key, algorithms=["EdDSA"])
    claims = json.loads(checked.payload)
    holder = base64.urlsafe_b64decode(got["privateJwk"]["x"] + "==")
    assert did_key(holder) == claims["sub"]
    assert DEVICE == claims["vc"]["credentialSubject"]
    assert identity.issuer().controller == claims["iss"]
    # the credential carries its revocation entry in the vc claim (VCDM 1.1 §4.9)
    entry = claims["vc"]["credentialStatus"]
    assert ("BitstringStatusListEntry", "revocation") == (entry["type"], entry["statusPurpose"])
    assert claims == verify_jwt_vc_json(token, resolver=identity.resolver, now=identity.now(),
                                        status=identity.status_checker)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime.ephemeral(tmp_path / "home")
    yield runtime
    runtime.close()


def _issue(rt: Runtime, **change: Any) -> str:
    issuer = rt.identity.issuer()
    options: dict[str, Any] = {
        "types": ["DeviceCredential"], "claims": DEVICE, "subject": "did:key:z6Mkexample",
        "credential_id": "urn:uuid:1", "signer": issuer, "issuer": issuer.controller,
        "now": rt.identity.now(), **change}  # fmt: skip
    return issue_jwt_vc_json(**options)


def _resign(token: str, signer: Ed25519Signer, **payload: Any) -> str:
    header = json.loads(base64.urlsafe_b64decode(token.split(".", maxsplit=1)[0] + "=="))
    claims = {**_claims(token), **payload}
    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url_encode(signer.sign(f'{head}.{body}'.encode()))}"


def test_refusals(rt: Runtime) -> None:
    resolver, now = rt.identity.resolver, rt.identity.now()
    good = _issue(rt)
    assert "did:key:z6Mkexample" == verify_jwt_vc_json(good, resolver=resolver, now=now)["sub"]
    head, _body, sig = good.split(".")
    altered = b64url_encode(json.dumps({**_claims(good), "sub": "did:key:other"}).encode())
    stranger = Ed25519Signer.generate()
    cases = {
        "altered": f"{head}.{altered}.{sig}",
        "foreign key": _resign(good, stranger),
        "iss mismatch": _issue(rt, issuer="did:web:elsewhere.example"),
        "expired": _issue(rt, now=now - timedelta(days=2), valid_for=timedelta(days=1)),
        "not yet": _issue(rt, now=now + timedelta(hours=1)),
    }
    for name, token in cases.items():
        with pytest.raises(VerificationFailed):
            verify_jwt_vc_json(token, resolver=resolver, now=now)
            pytest.fail(name)


_HEADER = b64url_encode(b'{"alg":"EdDSA","kid":"did:key:z6Mkexample#k"}')


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), raw=st.binary(max_size=200))
def test_fuzz_only_verification_failures(text: str, raw: bytes) -> None:
    resolver = DidResolver()
    segment = b64url_encode(raw)
    for token in (text, f"{segment}.{segment}.{segment}", f"{_HEADER}.{segment}.x"):
        with pytest.raises(VerificationFailed):
            verify_jwt_vc_json(token, resolver=resolver, now=NOW)


def test_a_revoked_jwt_vc_json_fails_verification(rt: Runtime) -> None:
    """Bitstring Status List §3.2 on the entry of the vc claim, and the Token Status List
    ``status`` claim (draft-ietf-oauth-status-list §6.1) naming the same list and index."""
    identity, now = rt.identity, rt.identity.now()
    entry = identity.status.allocate(identity.status_list("revocation"), credential_id="urn:uuid:1")
    token = _issue(rt, credential_status=entry)
    checked = verify_jwt_vc_json(token, resolver=identity.resolver, now=now,
                                 status=identity.status_checker)
    assert entry == checked["vc"]["credentialStatus"]
    with pytest.raises(VerificationFailed) as info:  # an entry and nothing to check it with
        verify_jwt_vc_json(token, resolver=identity.resolver, now=now)
    assert "status-unavailable" == info.value.reason
    identity.update_status("urn:uuid:1", "revocation", True)
    now = identity.now()  # the re-signed list is valid from the moment of the update
    with pytest.raises(VerificationFailed) as info:
        verify_jwt_vc_json(token, resolver=identity.resolver, now=now,
                           status=identity.status_checker)
    assert "revoked" == info.value.reason
    # the same bit read through a status claim (re-signed by the issuer, no vc entry)
    issuer = identity.issuer()
    bare = _issue(rt)
    claims = _claims(bare)
    claims["status"] = {"status_list": {"idx": int(entry["statusListIndex"]),
                                        "uri": entry["statusListCredential"]}}
    head = b64url_encode(json.dumps({"typ": "JWT", "alg": "EdDSA",
                                     "kid": issuer.verification_method}).encode())
    body = b64url_encode(json.dumps(claims).encode())
    referenced = f"{head}.{body}.{b64url_encode(issuer.sign(f'{head}.{body}'.encode()))}"
    with pytest.raises(VerificationFailed) as info:
        verify_jwt_vc_json(referenced, resolver=identity.resolver, now=now,
                           status=identity.status_checker)
    assert "revoked" == info.value.reason
