"""Data Integrity EdDSA: W3C vectors bit for bit, proof sets and chains, tampering."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    VerificationFailed,
    add_proof,
    canonicalize,
    proof_hash,
    rdfc_canonicalize,
    verify_proofs,
)
from simtrust.identity._multibase import b58encode

from .conftest import NOW

CREATED = datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)
Load = Callable[[str], Any]


def _signer(vectors: Load) -> Ed25519Signer:
    return Ed25519Signer.from_multibase(vectors("keyPair.json")["privateKeyMultibase"])


def test_vector_key_pair_gives_vector_did(vectors: Load) -> None:
    signer = _signer(vectors)
    public = vectors("keyPair.json")["publicKeyMultibase"]
    assert f"did:key:{public}#{public}" == signer.verification_method


def test_jcs_intermediate_values_match_vectors(vectors: Load) -> None:
    unsigned = vectors("unsigned.json")
    config = vectors("eddsa-jcs-2022/proofConfigJCS.json")
    assert vectors("eddsa-jcs-2022/canonDocJCS.txt").encode() == canonicalize(unsigned)
    assert vectors("eddsa-jcs-2022/proofCanonJCS.txt").encode() == canonicalize(config)
    assert (
        vectors("eddsa-jcs-2022/docHashJCS.txt")
        == hashlib.sha256(canonicalize(unsigned)).hexdigest()
    )
    combined = proof_hash("eddsa-jcs-2022", config, unsigned)
    assert vectors("eddsa-jcs-2022/proofHashJCS.txt") == combined[:32].hex()
    assert vectors("eddsa-jcs-2022/combinedHashJCS.txt") == combined.hex()
    signature = _signer(vectors).sign(combined)
    assert vectors("eddsa-jcs-2022/sigHexJCS.txt") == signature.hex()
    assert vectors("eddsa-jcs-2022/sigBTC58JCS.txt") == "z" + b58encode(signature)


def test_jcs_issue_is_bit_exact_with_signed_vector(vectors: Load) -> None:
    signed = add_proof(vectors("unsigned.json"), _signer(vectors), created=CREATED)
    assert vectors("eddsa-jcs-2022/signedJCS.json") == signed
    assert canonicalize(vectors("eddsa-jcs-2022/signedJCS.json")) == canonicalize(signed)


def test_rdfc_intermediate_values_match_vectors(vectors: Load) -> None:
    unsigned = vectors("unsigned.json")
    config = vectors("eddsa-rdfc-2022/proofConfigDataInt.json")
    assert (
        vectors("eddsa-rdfc-2022/canonDocDataInt.txt") + "\n"
        == rdfc_canonicalize(unsigned).decode()
    )
    assert (
        vectors("eddsa-rdfc-2022/proofCanonDataInt.txt") + "\n"
        == rdfc_canonicalize(config).decode()
    )
    combined = proof_hash("eddsa-rdfc-2022", config, unsigned)
    assert vectors("eddsa-rdfc-2022/combinedHashDataInt.txt") == combined.hex()
    assert vectors("eddsa-rdfc-2022/sigHexDataInt.txt") == _signer(vectors).sign(combined).hex()


def test_rdfc_issue_is_bit_exact_with_signed_vector(vectors: Load) -> None:
    signed = add_proof(
        vectors("unsigned.json"), _signer(vectors), created=CREATED, cryptosuite="eddsa-rdfc-2022"
    )
    assert vectors("eddsa-rdfc-2022/signedDataInt.json") == signed


@pytest.mark.parametrize(
    "name", ["eddsa-jcs-2022/signedJCS.json", "eddsa-rdfc-2022/signedDataInt.json"]
)
def test_signed_vectors_verify(vectors: Load, name: str) -> None:
    [proof] = verify_proofs(vectors(name), resolver=DidResolver(), now=NOW)
    assert "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2" == proof.controller


def _mutations() -> list[tuple[str, Callable[[dict[str, Any]], None], str]]:
    def set_(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
        def apply(doc: dict[str, Any]) -> None:
            target = doc
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return apply

    return [
        ("altered-subject", set_(["credentialSubject", "alumniOf"], "Evil U"), "invalid-signature"),
        (
            "altered-created",
            set_(["proof", "created"], "2023-02-24T23:36:39Z"),
            "invalid-signature",
        ),
        (
            "wrong-suite",
            set_(["proof", "cryptosuite"], "bbs-2023"),
            "unsupported-cryptosuite",
        ),
        ("wrong-type", set_(["proof", "type"], "Ed25519Signature2020"), "unsupported-cryptosuite"),
        ("purpose", set_(["proof", "proofPurpose"], "authentication"), "proof-purpose"),
        ("bad-value", set_(["proof", "proofValue"], "z0OIl"), "malformed"),
        ("short-sig", set_(["proof", "proofValue"], "z3yMn"), "invalid-signature"),
        (
            "other-key",
            set_(["proof", "verificationMethod"], Ed25519Signer.generate().verification_method),
            "invalid-signature",
        ),
        (
            "key-not-listed",
            set_(
                ["proof", "verificationMethod"],
                "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#other",
            ),
            "key-not-authorized",
        ),
        (
            "unknown-method",
            set_(["proof", "verificationMethod"], "did:web:example.com#key"),
            "unresolvable",
        ),
        ("context-mismatch", set_(["proof", "@context"], ["https://example.org/x"]), "malformed"),
        ("no-proof", lambda d: d.pop("proof"), "malformed"),
    ]


@pytest.mark.parametrize(
    ("name", "mutate", "reason"), _mutations(), ids=[m[0] for m in _mutations()]
)
def test_altered_documents_fail_with_reason(
    vectors: Load, name: str, mutate: Callable[[dict[str, Any]], None], reason: str
) -> None:
    document = copy.deepcopy(vectors("eddsa-jcs-2022/signedJCS.json"))
    mutate(document)
    with pytest.raises(VerificationFailed) as failure:
        verify_proofs(document, resolver=DidResolver(), now=NOW)
    assert reason == failure.value.reason


def test_rdfc_rejects_altered_document_and_unknown_context(vectors: Load) -> None:
    document = copy.deepcopy(vectors("eddsa-rdfc-2022/signedDataInt.json"))
    document["name"] = "Forged"
    with pytest.raises(VerificationFailed) as failure:
        verify_proofs(document, resolver=DidResolver(), now=NOW)
    assert "invalid-signature" == failure.value.reason
    document["@context"] = [*document["@context"], "https://attacker.example/context"]
    with pytest.raises(VerificationFailed) as failure:
        verify_proofs(document, resolver=DidResolver(), now=NOW)
    assert "unknown-context" == failure.value.reason


def test_rdfc_refuses_terms_no_context_defines() -> None:
    """Safe mode: a property the contexts do not define would vanish from the signed quads."""
    signer = Ed25519Signer.generate()
    document = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "issuer": signer.controller,
        "credentialSubject": {"id": "did:example:1", "undefinedTerm": "dropped?"},
    }
    with pytest.raises(VerificationFailed) as failure:
        add_proof(document, signer, created=NOW, cryptosuite="eddsa-rdfc-2022")
    assert "malformed" == failure.value.reason
    assert "undefinedTerm" in failure.value.detail


def test_rdfc_malformed_json_ld_is_a_reason_not_an_exception() -> None:
    for document in (
        {"@context": ["https://www.w3.org/ns/credentials/v2", 42], "type": "x"},
        {"@context": ["https://www.w3.org/ns/credentials/v2"], "@id": {"not": "an iri"}},
    ):
        with pytest.raises(VerificationFailed) as failure:
            rdfc_canonicalize(document)
        assert failure.value.reason in ("malformed", "unknown-context")


def test_proof_set_needs_every_proof_to_verify(vectors: Load) -> None:
    first, second = Ed25519Signer.generate(), Ed25519Signer.generate()
    document = add_proof(vectors("unsigned.json"), first, created=NOW)
    document = add_proof(document, second, created=NOW, cryptosuite="eddsa-rdfc-2022")
    assert isinstance(document["proof"], list)
    verified = verify_proofs(document, resolver=DidResolver(), now=NOW)
    assert [first.controller, second.controller] == [p.controller for p in verified]
    # Each proof in a set signs the document alone: dropping one keeps the other valid.
    alone = {**document, "proof": document["proof"][1]}
    assert 1 == len(verify_proofs(alone, resolver=DidResolver(), now=NOW))
    document["proof"][1]["proofValue"] = document["proof"][0]["proofValue"]
    with pytest.raises(VerificationFailed):
        verify_proofs(document, resolver=DidResolver(), now=NOW)


def test_proof_chain_signs_the_previous_proof(vectors: Load) -> None:
    first, second = Ed25519Signer.generate(), Ed25519Signer.generate()
    document = add_proof(vectors("unsigned.json"), first, created=NOW, proof_id="urn:proof:1")
    document = add_proof(
        document, second, created=NOW, proof_id="urn:proof:2", previous_proof="urn:proof:1"
    )
    assert 2 == len(verify_proofs(document, resolver=DidResolver(), now=NOW))
    # Removing the first proof breaks the chain (the second names it).
    broken = {**document, "proof": [document["proof"][1]]}
    with pytest.raises(VerificationFailed) as failure:
        verify_proofs(broken, resolver=DidResolver(), now=NOW)
    assert "malformed" == failure.value.reason
    # Swapping in another valid first proof breaks the second signature.
    other = add_proof(vectors("unsigned.json"), first, created=CREATED, proof_id="urn:proof:1")
    swapped = {**document, "proof": [other["proof"], document["proof"][1]]}
    with pytest.raises(VerificationFailed) as failure:
        verify_proofs(swapped, resolver=DidResolver(), now=NOW)
    assert "invalid-signature" == failure.value.reason


def test_chain_to_unknown_proof_cannot_be_created(vectors: Load) -> None:
    with pytest.raises(VerificationFailed):
        add_proof(
            vectors("unsigned.json"), Ed25519Signer.generate(), created=NOW, previous_proof="urn:x"
        )


def test_challenge_domain_and_expiry_are_enforced(vectors: Load) -> None:
    signer = Ed25519Signer.generate()
    document = add_proof(
        vectors("unsigned.json"),
        signer,
        created=NOW,
        proof_purpose="authentication",
        challenge="n-0S6_WzA2Mj",
        domain="operator-b.example",
        expires=datetime(2026, 6, 2, tzinfo=UTC),
    )
    ok = verify_proofs(
        document,
        resolver=DidResolver(),
        now=NOW,
        proof_purpose="authentication",
        challenge="n-0S6_WzA2Mj",
        domain="operator-b.example",
    )
    assert 1 == len(ok)
    for kwargs, reason in [
        ({"challenge": "other"}, "challenge"),
        ({"domain": "other.example"}, "domain"),
        ({"proof_purpose": "assertionMethod"}, "proof-purpose"),
    ]:
        args: dict[str, Any] = {"proof_purpose": "authentication", **kwargs}
        with pytest.raises(VerificationFailed) as failure:
            verify_proofs(document, resolver=DidResolver(), now=NOW, **args)
        assert reason == failure.value.reason
    with pytest.raises(VerificationFailed) as failure:
        verify_proofs(
            document,
            resolver=DidResolver(),
            now=datetime(2026, 7, 1, tzinfo=UTC),
            proof_purpose="authentication",
        )
    assert "expired" == failure.value.reason
