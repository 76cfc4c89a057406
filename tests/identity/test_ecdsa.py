"""ecdsa-rdfc-2019 / ecdsa-jcs-2019 with P-256 (W3C VC-DI-ECDSA 1.0) and P-256 did:key."""

from __future__ import annotations

import json

import pytest

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    VerificationFailed,
    issue_credential,
    verify_credential,
)
from simtrust.identity._dataintegrity import add_proof, verify_proofs
from simtrust.identity._ecdsa import EcdsaP256Signer, decode_p256_multikey

from .conftest import NOW, credential_for

# VC-DI-ECDSA 1.0 §A.1: key pair (Example 5) and the signed credential (Example 15).
PUBLIC = "zDnaepBuvsQ8cpsWrVKw8fbpGpvPeNSjVPTWoq6cRqaYzBKVP"
SECRET = "z42twTcNeSYcnqg1FLuSFs2bsGH3ZqbRHFmvS9XMsYhjxvHN"
SIGNED = json.loads("""{
  "@context": [
    "https://www.w3.org/ns/credentials/v2",
    "https://www.w3.org/ns/credentials/examples/v2"
  ],
  "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
  "type": ["VerifiableCredential", "AlumniCredential"],
  "name": "Alumni Credential",
  "description": "A minimum viable example of an Alumni Credential.",
  "issuer": "https://vc.example/issuers/5678",
  "validFrom": "2023-01-01T00:00:00Z",
  "credentialSubject": {
    "id": "did:example:abcdefgh",
    "alumniOf": "The School of Examples"
  },
  "proof": {
    "type": "DataIntegrityProof",
    "cryptosuite": "ecdsa-rdfc-2019",
    "created": "2023-02-24T23:36:38Z",
    "verificationMethod": "did:key:zDnaepBuvsQ8cpsWrVKw8fbpGpvPeNSjVPTWoq6cRqaYzBKVP#zDnaepBuvsQ8cpsWrVKw8fbpGpvPeNSjVPTWoq6cRqaYzBKVP",
    "proofPurpose": "assertionMethod",
    "proofValue": "zaHXrr7AQdydBk3ahpCDpWbxfLokDqmCToYm2dyWvpcFVyWooC2he63w1f7UNQoAMKdhaRtcnaE2KTo5o5vTCcfw"
  }
}""")


def test_vector_key_pair() -> None:
    signer = EcdsaP256Signer.from_multibase(SECRET)
    assert decode_p256_multikey(PUBLIC) == signer.public_key
    assert f"did:key:{PUBLIC}" == signer.controller


def test_published_ecdsa_rdfc_2019_vector_verifies() -> None:
    proofs = verify_proofs(SIGNED, resolver=DidResolver(), now=NOW)
    assert "ecdsa-rdfc-2019" == proofs[0].cryptosuite
    tampered = {**SIGNED, "name": "Other"}
    with pytest.raises(VerificationFailed) as failure:
        verify_proofs(tampered, resolver=DidResolver(), now=NOW)
    assert "invalid-signature" == failure.value.reason


@pytest.mark.parametrize("suite", ["ecdsa-rdfc-2019", "ecdsa-jcs-2019"])
def test_issue_and_verify_with_p256(suite: str) -> None:
    signer = EcdsaP256Signer.generate()
    signed = issue_credential(credential_for(signer.controller), signer, now=NOW, cryptosuite=suite)
    assert suite == verify_credential(signed, resolver=DidResolver(), now=NOW).proofs[0].cryptosuite


def test_proof_set_mixing_ed25519_and_p256() -> None:

    p256 = EcdsaP256Signer.from_multibase(SECRET)
    first = add_proof(credential_for(p256.controller), p256, created=NOW,
                      cryptosuite="ecdsa-rdfc-2019", proof_id="urn:uuid:p1")  # fmt: skip
    endorser = Ed25519Signer.generate()
    chained = add_proof(first, endorser, created=NOW, previous_proof="urn:uuid:p1")
    assert 2 == len(verify_proofs(chained, resolver=DidResolver(), now=NOW))


def test_suite_and_key_must_match() -> None:
    signer = EcdsaP256Signer.generate()
    with pytest.raises(VerificationFailed):
        issue_credential(credential_for(signer.controller), signer, now=NOW)
