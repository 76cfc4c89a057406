"""Hypothesis: verifiers report failures as VerificationFailed, never as other exceptions."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    add_proof,
    issue_credential,
    verification_report,
    verify_credential,
    verify_presentation,
)

from .conftest import NOW, credential_for

_SIGNER = Ed25519Signer.from_seed(bytes(range(7, 39)))
_VC = issue_credential(credential_for(_SIGNER.controller), _SIGNER, now=NOW)
_RDFC = add_proof(
    credential_for(_SIGNER.controller), _SIGNER, created=NOW, cryptosuite="eddsa-rdfc-2022"
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
_keys = st.sampled_from(
    [
        "@context",
        "type",
        "issuer",
        "credentialSubject",
        "validFrom",
        "validUntil",
        "proof",
        "credentialStatus",
        "id",
    ]
)
_proof_keys = st.sampled_from(
    [
        "type",
        "cryptosuite",
        "proofValue",
        "verificationMethod",
        "proofPurpose",
        "created",
        "@context",
        "previousProof",
        "expires",
    ]
)


@settings(max_examples=300)
@given(_json)
def test_arbitrary_json_is_refused_with_a_reason(document: Any) -> None:
    report = verification_report(
        lambda: verify_credential(document, resolver=DidResolver(), now=NOW)
    )
    assert report["verified"] is False
    report = verification_report(
        lambda: verify_presentation(document, resolver=DidResolver(), now=NOW)
    )
    assert report["verified"] is False


@settings(max_examples=150)
@given(st.sampled_from([_VC, _VC, _VC, _RDFC]), _keys, _proof_keys, _json, st.booleans())
def test_mutated_credentials_never_verify_or_crash(
    original: dict[str, Any], key: str, proof_key: str, value: Any, in_proof: bool
) -> None:
    document = copy.deepcopy(original)
    if in_proof:
        document["proof"][proof_key] = value
    else:
        document[key] = value
    if document == original:
        return
    report = verification_report(
        lambda: verify_credential(document, resolver=DidResolver(), now=NOW)
    )
    if not report["verified"]:
        assert report["errors"][0]["reason"]
    else:
        # eddsa-rdfc-2022 signs the proof options under the document's @context
        # (VC-DI-EdDSA §3.2.2), so the proof's own @context is not covered.
        assert (in_proof, proof_key, original is _RDFC) == (True, "@context", True)
