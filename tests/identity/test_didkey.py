"""did:key: the specification's Ed25519/X25519 test vectors, resolution, bad identifiers."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    InvalidDid,
    decode_multikey,
    did_key,
    ed25519_to_x25519_public,
    resolve_did_key,
)
from simtrust.identity._multibase import b58decode

from .conftest import DATA

ED_VECTORS = json.loads((DATA / "didkey-ed25519-x25519.json").read_text())
X_VECTORS = json.loads((DATA / "didkey-x25519.json").read_text())


@pytest.mark.parametrize("vector", ED_VECTORS, ids=lambda v: v["did"][-6:])
def test_ed25519_vector_did_and_derived_key_agreement(vector: dict[str, str]) -> None:
    signer = Ed25519Signer.from_seed(bytes.fromhex(vector["seed"]))
    assert b58decode(vector["publicKeyBase58"]) == signer.public_key
    assert vector["did"] == did_key(signer.public_key)
    document = resolve_did_key(vector["did"])
    methods = {m["id"]: m for m in document["verificationMethod"]}
    agreement_id = vector["did"] + vector["keyAgreementId"]
    assert [agreement_id] == document["keyAgreement"]
    assert vector["keyAgreementId"][1:] == methods[agreement_id]["publicKeyMultibase"]
    signing_id = f"{vector['did']}#{vector['did'].removeprefix('did:key:')}"
    for relationship in (
        "authentication",
        "assertionMethod",
        "capabilityInvocation",
        "capabilityDelegation",
    ):
        assert [signing_id] == document[relationship]


@pytest.mark.parametrize("vector", ED_VECTORS, ids=lambda v: v["did"][-6:])
def test_derived_x25519_key_matches_vector_private_key(vector: dict[str, str]) -> None:
    """The vector's X25519 private key yields the public key our Montgomery map derives."""
    private = X25519PrivateKey.from_private_bytes(b58decode(vector["keyAgreementPrivateKeyBase58"]))
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert b58decode(vector["keyAgreementPublicKeyBase58"]) == public

    assert public == ed25519_to_x25519_public(b58decode(vector["publicKeyBase58"]))


@pytest.mark.parametrize(("did", "key"), sorted(X_VECTORS.items()))
def test_x25519_vector_resolves_to_key_agreement_only(did: str, key: str) -> None:
    document = DidResolver().resolve(did).document
    assert [f"{did}#{did.removeprefix('did:key:')}"] == document["keyAgreement"]
    assert "assertionMethod" not in document

    assert (
        b58decode(key)
        == decode_multikey(document["verificationMethod"][0]["publicKeyMultibase"])[1]
    )


@pytest.mark.parametrize(
    "bad",
    [
        "did:key:",
        "did:key:abc",
        "did:key:z111",
        "did:key:zQ3s",
        "did:web:example.com",
        "did:key:z6Mk#x",
    ],
)
def test_bad_did_key_is_invalid_did(bad: str) -> None:
    with pytest.raises(InvalidDid):
        resolve_did_key(bad)


def test_resolved_document_is_a_copy() -> None:
    did = ED_VECTORS[0]["did"]
    resolve_did_key(did)["verificationMethod"].clear()
    assert 2 == len(resolve_did_key(did)["verificationMethod"])
