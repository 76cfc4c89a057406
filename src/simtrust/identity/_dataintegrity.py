"""Data Integrity proofs with the EdDSA cryptosuites (W3C VC-DI-EdDSA 1.0).

``eddsa-jcs-2022`` (§3.3: JCS transformation, SHA-256 of proof config and of
document, Ed25519 over their concatenation) and ``eddsa-rdfc-2022`` (§3.2: the
same over RDF Dataset Canonicalization, ``_rdfc``: native JSON-LD to RDF and
RDFC-1.0 over the bundled contexts only). Proof sets and proof chains follow W3C
VC Data Integrity 1.0 §4.1
(Add Proof, ``previousProof``) and §4.5 (Verify Proof Sets and Chains): every
proof must verify, and a chained proof signs the document together with the
proofs it names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.errors import DecodeError, InvalidSignature
from simtrust.identity._ecdsa import EcdsaP256Signer, verify_p256
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jcs import canonicalize
from simtrust.identity._keys import Signer, verify_ed25519
from simtrust.identity._multibase import b58decode, b58encode
from simtrust.identity._rdfc import rdfc_canonicalize
from simtrust.identity._resolver import DidResolver
from simtrust.identity._time import format_datetime, parse_datetime

__all__ = [
    "CRYPTOSUITES",
    "VerifiedProof",
    "add_proof",
    "proof_hash",
    "proofs_of",
    "verify_proofs",
]

CRYPTOSUITES = ("eddsa-jcs-2022", "eddsa-rdfc-2022", "ecdsa-jcs-2019", "ecdsa-rdfc-2019")
_JCS = ("eddsa-jcs-2022", "ecdsa-jcs-2019")
_ECDSA = ("ecdsa-jcs-2019", "ecdsa-rdfc-2019")
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """One proof that verified: who signed, with what, for what."""

    verification_method: str
    controller: str
    cryptosuite: str
    proof_purpose: str
    created: str | None


def proofs_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's proofs as a list (a single proof or a proof set)."""
    proof = document.get("proof")
    if proof is None:
        return []
    items = proof if isinstance(proof, list) else [proof]
    if not items or not all(isinstance(item, dict) for item in items):
        raise VerificationFailed("malformed", "proof must be an object or a list of objects")
    return items


def proof_hash(cryptosuite: str, proof_config: dict[str, Any], document: dict[str, Any]) -> bytes:
    """SHA-256(canonical proof config) ‖ SHA-256(canonical document) (§3.2.4, §3.3.4)."""
    if cryptosuite in _JCS:
        canon_proof, canon_doc = canonicalize(proof_config), canonicalize(document)
    elif cryptosuite in ("eddsa-rdfc-2022", "ecdsa-rdfc-2019"):
        canon_proof, canon_doc = rdfc_canonicalize(proof_config), rdfc_canonicalize(document)
    else:
        raise VerificationFailed(
            "unsupported-cryptosuite", f"cryptosuite {cryptosuite!r} is not supported"
        )
    return hashlib.sha256(canon_proof).digest() + hashlib.sha256(canon_doc).digest()


def add_proof(
    document: dict[str, Any],
    signer: Signer,
    *,
    created: datetime,
    cryptosuite: str = "eddsa-jcs-2022",
    proof_purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
    expires: datetime | None = None,
    proof_id: str | None = None,
    previous_proof: str | list[str] | None = None,
) -> dict[str, Any]:
    """Return a copy of ``document`` with one more proof (DI §4.1 Add Proof)."""
    if cryptosuite not in CRYPTOSUITES:
        raise VerificationFailed(
            "unsupported-cryptosuite", f"cryptosuite {cryptosuite!r} is not supported"
        )

    if (cryptosuite in _ECDSA) != isinstance(signer, EcdsaP256Signer):
        raise VerificationFailed(
            "unsupported-cryptosuite",
            f"{cryptosuite} needs {'a P-256' if cryptosuite in _ECDSA else 'an Ed25519'} key",
        )
    existing = proofs_of(document)
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": cryptosuite,
        "created": format_datetime(created),
        "verificationMethod": signer.verification_method,
        "proofPurpose": proof_purpose,
    }
    if proof_id is not None:
        options["id"] = proof_id
    if expires is not None:
        options["expires"] = format_datetime(expires)
    if challenge is not None:
        options["challenge"] = challenge
    if domain is not None:
        options["domain"] = domain
    if previous_proof is not None:
        options["previousProof"] = previous_proof
    input_document = dict(unsecured)
    if previous_proof is not None:
        input_document["proof"] = _matching_proofs(existing, previous_proof)
    config = dict(options)
    if "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    signature = signer.sign(proof_hash(cryptosuite, config, input_document))
    proof = dict(config) if cryptosuite in _JCS else dict(options)
    proof["proofValue"] = "z" + b58encode(signature)
    secured = dict(unsecured)
    secured["proof"] = [*existing, proof] if existing else proof
    return secured


def _matching_proofs(proofs: list[dict[str, Any]], previous: object) -> list[dict[str, Any]]:
    wanted = [previous] if isinstance(previous, str) else previous
    if not isinstance(wanted, list) or not wanted or not all(isinstance(w, str) for w in wanted):
        raise VerificationFailed("malformed", "previousProof must be a proof id or a list of ids")
    by_id = {p.get("id"): p for p in proofs if isinstance(p.get("id"), str)}
    missing = [w for w in wanted if w not in by_id]
    if missing:
        raise VerificationFailed("malformed", f"previousProof names unknown proofs {missing}")
    return [by_id[w] for w in wanted]


def verify_proofs(
    document: dict[str, Any],
    *,
    resolver: DidResolver,
    now: datetime,
    proof_purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
    key_for: Callable[[str, str], bytes] | None = None,
) -> list[VerifiedProof]:
    """Verify every proof of ``document`` (a set, possibly chained); raise on the first failure.

    ``key_for(verification_method, purpose)`` overrides how keys are found
    (the DID registry uses it to check an operation against the current state).
    """
    if not isinstance(document, dict):
        raise VerificationFailed("malformed", "a secured document is a JSON object")
    proofs = proofs_of(document)
    if not proofs:
        raise VerificationFailed("malformed", "document has no proof")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    verified = []
    for proof in proofs:
        input_document = unsecured
        if "previousProof" in proof:
            input_document = dict(unsecured)
            input_document["proof"] = _matching_proofs(proofs, proof["previousProof"])
        verified.append(
            _verify_one(
                input_document,
                proof,
                now=now,
                proof_purpose=proof_purpose,
                challenge=challenge,
                domain=domain,
                key_for=key_for or resolver.verification_key,
                p256_key_for=None if key_for else resolver.verification_p256_key,
            )
        )
    return verified


def _verify_one(
    unsecured: dict[str, Any],
    proof: dict[str, Any],
    *,
    now: datetime,
    proof_purpose: str,
    challenge: str | None,
    domain: str | None,
    key_for: Callable[[str, str], bytes],
    p256_key_for: Callable[[str, str], bytes] | None = None,
) -> VerifiedProof:
    if proof.get("type") != "DataIntegrityProof":
        raise VerificationFailed("unsupported-cryptosuite", "proof type must be DataIntegrityProof")
    suite = proof.get("cryptosuite")
    if suite not in CRYPTOSUITES:
        raise VerificationFailed(
            "unsupported-cryptosuite", f"cryptosuite {suite!r} is not supported"
        )
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise VerificationFailed("malformed", "proofValue must be base58btc multibase")
    try:
        signature = b58decode(value[1:])
    except DecodeError as exc:
        raise VerificationFailed("malformed", "proofValue does not decode") from exc
    if proof.get("proofPurpose") != proof_purpose:
        raise VerificationFailed(
            "proof-purpose",
            f"proofPurpose is {proof.get('proofPurpose')!r}, expected {proof_purpose!r}",
        )
    created = proof.get("created")
    if created is not None:
        parse_datetime(created, "proof.created")
    if "expires" in proof and parse_datetime(proof["expires"], "proof.expires") < now:
        raise VerificationFailed("expired", "the proof has expired")
    if challenge is not None and proof.get("challenge") != challenge:
        raise VerificationFailed("challenge", "proof challenge does not match")
    if domain is not None:
        domains = proof.get("domain")
        listed = domains if isinstance(domains, list) else [domains]
        if domain not in listed:
            raise VerificationFailed("domain", "proof domain does not match")
    vm = proof.get("verificationMethod")
    if not isinstance(vm, str):
        raise VerificationFailed("malformed", "verificationMethod must be a DID URL")
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if suite in _JCS:
        if "@context" in config:
            context = config["@context"]
            doc_context = unsecured.get("@context")
            if not _starts_with(doc_context, context):
                raise VerificationFailed("malformed", "proof @context does not match the document")
            unsecured = dict(unsecured)
            unsecured["@context"] = context
    else:
        if "@context" not in unsecured:
            raise VerificationFailed("malformed", f"{suite} needs a JSON-LD @context")
        config["@context"] = unsecured["@context"]
    try:
        if suite in _ECDSA:

            p256 = p256_key_for(vm, proof_purpose) if p256_key_for else None
            if p256 is None:
                raise VerificationFailed("unsupported-cryptosuite", f"{suite} is not accepted here")
            verify_p256(p256, signature, proof_hash(str(suite), config, unsecured))
        else:
            key = key_for(vm, proof_purpose)
            verify_ed25519(key, signature, proof_hash(str(suite), config, unsecured))
    except InvalidSignature as exc:
        raise VerificationFailed(
            "invalid-signature", "proof signature does not verify", verificationMethod=vm
        ) from exc
    return VerifiedProof(
        verification_method=vm,
        controller=vm.split("#", 1)[0],
        cryptosuite=str(suite),
        proof_purpose=proof_purpose,
        created=created if isinstance(created, str) else None,
    )


def _starts_with(document_context: object, proof_context: object) -> bool:
    doc = document_context if isinstance(document_context, list) else [document_context]
    prf = proof_context if isinstance(proof_context, list) else [proof_context]
    return len(prf) <= len(doc) and doc[: len(prf)] == prf
