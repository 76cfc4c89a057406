"""IETF Token Status List (draft-ietf-oauth-status-list) for SD-JWT VCs.

The encoder is checked against the draft's own example (§4.1: sixteen
statuses → ``eNrbuRgAAhcBXQ``). Issued SD-JWT VCs carry
``status.status_list`` (``idx``, ``uri``) instead of a Bitstring
``credentialStatus``; the Status List Token served at ``uri`` (content
negotiation, ``application/statuslist+jwt``) is read here without simtrust's
code: signature with joserfc against the issuer's DID key, list inflated with
zlib, the bit taken least significant first as the draft says. Revoking flips
that bit and makes the presentation fail verification.
"""

from __future__ import annotations

import base64
import contextlib
import json
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey

from simtrust.errors import DecodeError
from simtrust.identity import (
    EcdsaP256Signer,
    VerificationFailed,
    decode_token_list,
    encode_token_list,
    present_sd_jwt,
    signer_jwk,
    verify_sd_jwt,
    verify_status_list_token,
)
from simtrust.identity._multibase import b64url_encode
from simtrust.runtime import Runtime

HOLDER = EcdsaP256Signer.generate()
REQUEST = {"vct": "https://credentials.example/employee", "claims": {
    "sub": "did:example:ada", "given_name": "Ada", "role": "engineer"},
    "disclosable": ["given_name", "role"], "holderJwk": signer_jwk(HOLDER)}  # fmt: skip


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_drafts_example_list() -> None:
    # §4.1: status[0..15] = 1 0 0 1 1 1 0 1 | 1 1 0 0 0 1 0 1 → bytes b9 a3, LSB first.
    assert {"bits": 1, "lst": "eNrbuRgAAhcBXQ"} == encode_token_list(bytes([0xB9, 0xA3]))
    assert bytes([0xB9, 0xA3]) == decode_token_list({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})


def _token_bit(api: Any, uri: str, rt: Runtime, idx: int) -> int:
    """Fetch the Status List Token and read ``idx`` with joserfc and zlib only."""
    path = uri.split("://", 1)[1].split("/", 1)[1]
    answer = api.get("/" + path, headers={"Accept": "application/statuslist+jwt"})
    assert 200 == answer.status_code, answer.text
    assert answer.headers["content-type"].startswith("application/statuslist+jwt")
    token = answer.text
    header = json.loads(_b64(token.split(".")[0]))
    assert "statuslist+jwt" == header["typ"]
    public = rt.identity.resolver.verification_key(header["kid"], "assertionMethod")
    key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public)})
    payload = json.loads(jws.deserialize_compact(token, key, algorithms=["EdDSA"]).payload)
    assert uri == payload["sub"]
    assert payload["exp"] > payload["iat"]
    assert 0 < payload["ttl"]
    raw = zlib.decompress(_b64(payload["status_list"]["lst"]))
    assert raw == verify_status_list_token(token, uri=uri, issuer=header["kid"].split("#")[0],
                                           resolver=rt.identity.resolver,
                                           now=rt.identity.now())  # fmt: skip
    return (raw[idx // 8] >> (idx % 8)) & 1


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_sd_jwt_references_a_status_list_token(api: Any, operator_headers: dict[str, str],
                                               sqlite_runtime: Runtime) -> None:  # fmt: skip
    response = api.post("/credentials/sd-jwt", json=REQUEST, headers=operator_headers)
    assert 201 == response.status_code, response.text
    body = response.json()
    payload = json.loads(_b64(body["credential"].split("~")[0].split(".")[1]))
    assert "credentialStatus" not in payload
    reference = payload["status"]["status_list"]
    idx, uri = reference["idx"], reference["uri"]
    assert isinstance(idx, int)
    rt = sqlite_runtime
    assert 0 == _token_bit(api, uri, rt, idx)
    service = rt.identity
    now = service.now()
    shown = present_sd_jwt(body["credential"], disclose=["role"], holder=HOLDER, nonce="n",
                           audience="did:web:rp.example", now=now)  # fmt: skip
    verify_sd_jwt(shown, resolver=service.resolver, now=now, nonce="n",
                  audience="did:web:rp.example", status=service.status_checker)  # fmt: skip
    revoked = api.post("/credentials/status", headers=operator_headers, json={
        "credentialId": "did:example:ada", "credentialStatus": [
            {"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
             "status": True}]})  # fmt: skip
    assert 200 == revoked.status_code, revoked.text
    assert 1 == _token_bit(api, uri, rt, idx)
    # Checked at the current time: the re-issued status list is valid from the moment
    # of the revocation, which may be a second after ``now``.
    with pytest.raises(VerificationFailed, match="revoked"):
        verify_sd_jwt(shown, resolver=service.resolver, now=service.now(), nonce="n",
                      audience="did:web:rp.example", status=service.status_checker)  # fmt: skip
    # The same URI still serves the Bitstring Status List credential by default.
    path = uri.split("://", 1)[1].split("/", 1)[1]
    assert "BitstringStatusListCredential" in api.get("/" + path).json()["type"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200).map(lambda b: {"bits": 1, "lst": b64url_encode(b)}),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                 st.text(max_size=50)))  # fmt: skip
def test_fuzz_status_lists_decode_or_fail_cleanly(value: object) -> None:
    with contextlib.suppress(DecodeError):
        raw = decode_token_list(value)
        assert isinstance(raw, bytes)
