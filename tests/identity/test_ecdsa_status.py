"""Revocation of ECDSA credentials (W3C Bitstring Status List v1.0 with VC-DI-ECDSA 1.0).

A credential the platform signs with its P-256 key (as its did:web) gets an
entry in a list issued by that did:web and secured with ``ecdsa-rdfc-2019``
(§3.2 compares the list's issuer with the credential's), revoked through the
same VC-API status update and checked on verify, as for EdDSA credentials.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from simtrust.identity import decode_status_list, status_bit

from .conftest import credential_for

UNSIGNED = {k: v for k, v in credential_for("did:example:x").items() if k != "issuer"}
REVOCATION = {"type": "BitstringStatusListEntry", "statusPurpose": "revocation"}


def _issue(api: Any, headers: dict[str, str], **options: Any) -> dict[str, Any]:
    response = api.post("/credentials/issue", json={"credential": UNSIGNED, "options": options},
                        headers=headers)
    assert 201 == response.status_code, response.text
    vc: dict[str, Any] = response.json()["verifiableCredential"]
    return vc


def _verify(api: Any, headers: dict[str, str], vc: dict[str, Any]) -> Any:
    return api.post("/credentials/verify", json={"verifiableCredential": vc}, headers=headers)


@pytest.mark.parametrize("suite", ["ecdsa-rdfc-2019", "ecdsa-jcs-2019"])
def test_an_ecdsa_credential_is_revoked_like_an_eddsa_one(
    api: Any, operator_headers: dict[str, str], suite: str
) -> None:
    vc = _issue(api, operator_headers, cryptosuite=suite, credentialStatus=REVOCATION)
    entry = vc["credentialStatus"]
    assert vc["issuer"].startswith("did:web:")
    assert "/ecdsa/revocation/" in entry["statusListCredential"]
    ok = _verify(api, operator_headers, vc)
    assert (200, True) == (ok.status_code, ok.json()["verified"]), ok.text
    assert "credentialStatus" in ok.json()["checks"]
    listed = api.get(urlsplit(entry["statusListCredential"]).path).json()
    # the list is the credential issuer's, signed by the same P-256 key
    assert (vc["issuer"], "ecdsa-rdfc-2019", vc["proof"]["verificationMethod"]) == (
        listed["issuer"], listed["proof"]["cryptosuite"], listed["proof"]["verificationMethod"])
    index = int(entry["statusListIndex"])
    assert not status_bit(decode_status_list(listed["credentialSubject"]["encodedList"]), index)

    change = {"credentialId": vc["id"], "credentialStatus": [{**REVOCATION, "status": True}]}
    assert 200 == api.post("/credentials/status", json=change,
                           headers=operator_headers).status_code
    listed = api.get(urlsplit(entry["statusListCredential"]).path).json()
    assert status_bit(decode_status_list(listed["credentialSubject"]["encodedList"]), index)
    assert "ecdsa-rdfc-2019" == listed["proof"]["cryptosuite"]
    revoked = _verify(api, operator_headers, vc)
    assert (400, "revoked") == (revoked.status_code, revoked.json()["errors"][0]["reason"])


def test_eddsa_and_ecdsa_lists_are_kept_apart(api: Any, operator_headers: dict[str, str]) -> None:
    eddsa = _issue(api, operator_headers, credentialStatus=REVOCATION)["credentialStatus"]
    ecdsa = _issue(api, operator_headers, cryptosuite="ecdsa-rdfc-2019",
                   credentialStatus=REVOCATION)["credentialStatus"]
    assert eddsa["statusListCredential"] != ecdsa["statusListCredential"]
    # an ECDSA credential may not name the EdDSA issuer's list (another issuer's list)
    own = {**UNSIGNED, "id": "urn:uuid:6b3c1c4e-0d0b-4c89-9d55-5a5a5a5a5a5a",
           "credentialStatus": {**eddsa, "id": eddsa["statusListCredential"] + "#9",
                                "statusListIndex": "9"}}
    response = api.post("/credentials/issue", headers=operator_headers, json={
        "credential": own, "options": {"cryptosuite": "ecdsa-rdfc-2019"}})
    assert 400 == response.status_code, response.text
    assert "not a status list of this issuer" in response.json()["detail"]
