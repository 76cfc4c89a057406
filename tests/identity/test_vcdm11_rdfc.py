"""VC Data Model 1.1 credentials secured with eddsa-rdfc-2022 (VC Data Integrity 1.0 §2.1).

A 1.1 credential names the Data Integrity v2 context after the 1.1 context so
that ``DataIntegrityProof`` and its properties are defined for RDF
canonicalization; without it the proof's terms are undefined and refused.
"""

from __future__ import annotations

import copy
from typing import Any

from simtrust.identity import DATA_INTEGRITY_V2

V11 = "https://www.w3.org/2018/credentials/v1"


def _credential(*contexts: str) -> dict[str, Any]:
    return {
        "@context": [V11, *contexts],
        "id": "urn:uuid:2f8d1e0c-7b21-4c59-9a43-6a1c4f8e0b7d",
        "type": ["VerifiableCredential"],
        "issuanceDate": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:meter-7"},
    }


def test_vcdm11_issued_and_verified_with_rdfc(api: Any, operator_headers: dict[str, str]) -> None:
    issued = api.post(
        "/credentials/issue",
        json={"credential": _credential(DATA_INTEGRITY_V2),
              "options": {"cryptosuite": "eddsa-rdfc-2022"}},
        headers=operator_headers,
    )  # fmt: skip
    assert 201 == issued.status_code, issued.text
    vc = issued.json()["verifiableCredential"]
    assert ("eddsa-rdfc-2022", [V11, DATA_INTEGRITY_V2]) == (
        vc["proof"]["cryptosuite"], vc["@context"]
    )  # fmt: skip
    assert "validFrom" not in vc  # issued under 1.1's rules, not 2.0's
    verified = api.post("/credentials/verify", json={"verifiableCredential": vc},
                        headers=operator_headers)  # fmt: skip
    assert (200, True) == (verified.status_code, verified.json()["verified"]), verified.text
    tampered = copy.deepcopy(vc)
    tampered["credentialSubject"]["id"] = "did:example:meter-8"
    refused = api.post("/credentials/verify", json={"verifiableCredential": tampered},
                       headers=operator_headers)  # fmt: skip
    assert "invalid-signature" == refused.json()["errors"][0]["reason"]


def test_vcdm11_rdfc_without_the_data_integrity_context_is_refused(
    api: Any, operator_headers: dict[str, str]
) -> None:
    response = api.post(
        "/credentials/issue",
        json={"credential": _credential(), "options": {"cryptosuite": "eddsa-rdfc-2022"}},
        headers=operator_headers,
    )
    assert 400 == response.status_code
    assert "DataIntegrityProof" in response.json()["detail"]
