"""Multi-bit IETF Token Status Lists (draft-ietf-oauth-status-list §4.1, §7.1).

The codec reproduces the draft's two-bit example (twelve statuses →
``eNo76fITAAPfAgc``); Bitstring-ordered lists of 1, 2, 4 and 8 bits per entry
read the same statuses in Token order. An SD-JWT VC issued with ``statusBits``
2 references the issuer's two-bit list: the token served at its ``uri`` has
``bits`` 2, and the presentation verifies while VALID, fails as ``suspended``
while SUSPENDED and as ``revoked`` once INVALID, read both by simtrust and by
hand (joserfc signature, zlib, the two bits least significant first).
"""

from __future__ import annotations

import base64
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
    encode_token_list,
    present_sd_jwt,
    read_token_list,
    signer_jwk,
    to_token_order,
    token_status_at,
    verify_sd_jwt,
)
from simtrust.identity._multibase import b64url_encode
from simtrust.runtime import Runtime

# §4.1 example: status[0..11] with bits 2
DRAFT_STATUSES = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
DRAFT_LIST = {"bits": 2, "lst": "eNo76fITAAPfAgc"}
HOLDER = EcdsaP256Signer.generate()


def test_the_drafts_two_bit_example() -> None:
    bits, raw = read_token_list(DRAFT_LIST)
    assert (2, bytes([0xC9, 0x44, 0xF9])) == (bits, raw)
    assert DRAFT_STATUSES == [token_status_at(raw, 2, i) for i in range(12)]
    assert DRAFT_LIST == encode_token_list(raw, 2)


def _bitstring(values: list[int], size: int) -> bytes:
    """Bitstring Status List order: entry 0 in the most significant bits (§3.1)."""
    number = 0
    for value in values:
        number = (number << size) | value
    length = (len(values) * size + 7) // 8
    return (number << (length * 8 - len(values) * size)).to_bytes(length, "big")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 2, 4, 8]).flatmap(lambda size: st.tuples(
    st.just(size), st.lists(st.integers(0, 2**size - 1), min_size=1, max_size=64))))
def test_bitstring_lists_read_the_same_in_token_order(case: tuple[int, list[int]]) -> None:
    size, values = case
    values = values + [0] * (-len(values) % (8 // size))
    token = to_token_order(_bitstring(values, size), size)
    assert values == [token_status_at(token, size, i) for i in range(len(values))]


def test_bad_sizes_are_refused() -> None:
    for bits in (0, 3, 16, True, "2"):
        with pytest.raises(DecodeError):
            read_token_list({"bits": bits, "lst": DRAFT_LIST["lst"]})
    with pytest.raises(DecodeError):
        token_status_at(bytes(1), 2, 4)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _by_hand(api: Any, uri: str, rt: Runtime, idx: int) -> int:
    path = uri.split("://", 1)[1].split("/", 1)[1]
    token = api.get("/" + path, headers={"Accept": "application/statuslist+jwt"}).text
    header = json.loads(_b64(token.split(".")[0]))
    public = rt.identity.resolver.verification_key(header["kid"], "assertionMethod")
    key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public)})
    payload = json.loads(jws.deserialize_compact(token, key, algorithms=["EdDSA"]).payload)
    assert 2 == payload["status_list"]["bits"]
    raw = zlib.decompress(_b64(payload["status_list"]["lst"]))
    return (raw[idx * 2 // 8] >> (idx * 2 % 8)) & 0b11


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_an_sd_jwt_in_a_two_bit_list_is_valid_suspended_then_invalid(
        api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime) -> None:
    request = {"vct": "https://credentials.example/employee", "statusBits": 2,
               "claims": {"sub": "did:example:bob", "role": "engineer"},
               "disclosable": ["role"], "holderJwk": signer_jwk(HOLDER)}
    response = api.post("/credentials/sd-jwt", json=request, headers=operator_headers)
    assert 201 == response.status_code, response.text
    credential = response.json()["credential"]
    payload = json.loads(_b64(credential.split("~")[0].split(".")[1]))
    idx, uri = payload["status"]["status_list"]["idx"], payload["status"]["status_list"]["uri"]
    rt = sqlite_runtime
    service = rt.identity
    now = service.now()
    shown = present_sd_jwt(credential, disclose=["role"], holder=HOLDER, nonce="n",
                           audience="did:web:rp.example", now=now)

    def verify() -> None:
        verify_sd_jwt(shown, resolver=service.resolver, now=service.now(), nonce="n",
                      audience="did:web:rp.example", status=service.status_checker,
                      token_status=service.token_status)

    verify()
    assert 0 == _by_hand(api, uri, rt, idx)
    entry = {"statusListCredential": uri, "statusListIndex": str(idx)}
    for value, reason in ((2, "suspended"), (1, "revoked")):
        service.set_status(entry, value)
        assert value == _by_hand(api, uri, rt, idx)
        with pytest.raises(VerificationFailed) as info:
            verify()
        assert reason == info.value.reason
    service.set_status(entry, 0)  # back to VALID
    verify()
    bad = api.post("/credentials/sd-jwt", json={**request, "statusBits": 4},
                   headers=operator_headers)
    assert 422 == bad.status_code  # outside the declared bounds of the request model
