"""VC-API endpoints over the real app: issue, verify, presentations, status, DID resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from simtrust.identity import Ed25519Signer, create_presentation
from simtrust.runtime import Runtime

from .conftest import credential_for

UNSIGNED = {k: v for k, v in credential_for("did:example:x").items() if k != "issuer"}


def _issue(api: Any, headers: dict[str, str], **options: Any) -> dict[str, Any]:
    response = api.post(
        "/credentials/issue", json={"credential": UNSIGNED, "options": options}, headers=headers
    )
    assert 201 == response.status_code, response.text
    vc: dict[str, Any] = response.json()["verifiableCredential"]
    return vc


def test_issue_verify_revoke(api: Any, operator_headers: dict[str, str]) -> None:
    vc = _issue(api, operator_headers, credentialStatus={"type": "BitstringStatusListEntry"})
    assert vc["issuer"].startswith("did:simtrust:")
    response = api.post(
        "/credentials/verify", json={"verifiableCredential": vc}, headers=operator_headers
    )
    assert (200, True, []) == (
        response.status_code,
        response.json()["verified"],
        response.json()["problemDetails"],
    )
    assert "credentialStatus" in response.json()["checks"]
    listed = api.get(f"/credentials/status/{vc['credentialStatus']['statusListCredential']}")
    assert ["VerifiableCredential", "BitstringStatusListCredential"] == listed.json()["type"]
    change = {
        "credentialId": vc["id"],
        "credentialStatus": [
            {"type": "BitstringStatusListEntry", "statusPurpose": "revocation", "status": True}
        ],
    }
    assert 200 == api.post("/credentials/status", json=change, headers=operator_headers).status_code
    response = api.post(
        "/credentials/verify", json={"verifiableCredential": vc}, headers=operator_headers
    )
    body = response.json()
    assert (400, False, "revoked") == (
        response.status_code,
        body["verified"],
        body["errors"][0]["reason"],
    )
    assert (
        vc["credentialStatus"]["statusListCredential"] == body["errors"][0]["statusListCredential"]
    )


def test_verify_bad_input_is_a_result_not_a_crash(
    api: Any, operator_headers: dict[str, str]
) -> None:
    vc = _issue(api, operator_headers)
    vc["credentialSubject"]["imeiTac"] = "1"
    for document in (
        vc,
        {"@context": 5},
        "not.a.jwt",
        {**vc, "proof": {**vc["proof"], "cryptosuite": "bbs-2023"}},
    ):
        response = api.post(
            "/credentials/verify", json={"verifiableCredential": document}, headers=operator_headers
        )
        assert 400 == response.status_code
        assert response.json()["verified"] is False
        assert response.json()["problemDetails"][0]["detail"]


def test_presentation_verify_with_challenge(api: Any, operator_headers: dict[str, str]) -> None:
    holder = Ed25519Signer.generate()
    credential = {**UNSIGNED, "credentialSubject": {"id": holder.controller, "imeiTac": "35209900"}}
    vc = api.post(
        "/credentials/issue", json={"credential": credential}, headers=operator_headers
    ).json()["verifiableCredential"]

    vp = create_presentation(
        [vc], holder, now=datetime.now(UTC), challenge="abc", domain="op-b.example"
    )
    ok = api.post(
        "/presentations/verify",
        json={
            "verifiablePresentation": vp,
            "options": {"challenge": "abc", "domain": "op-b.example"},
        },
        headers=operator_headers,
    )
    assert (200, True) == (ok.status_code, ok.json()["verified"])
    bad = api.post(
        "/presentations/verify",
        json={"verifiablePresentation": vp, "options": {"challenge": "zzz"}},
        headers=operator_headers,
    )
    assert (400, "challenge") == (bad.status_code, bad.json()["errors"][0]["reason"])


def test_auth_and_roles(api: Any, sqlite_runtime: Runtime) -> None:
    assert 401 == api.post("/credentials/issue", json={"credential": UNSIGNED}).status_code
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    viewer = sqlite_runtime.tenants.create_key("tenant-viewer", "v", tenant_id="acme")
    response = api.post(
        "/credentials/issue",
        json={"credential": UNSIGNED},
        headers={"Authorization": f"Bearer {viewer.secret}"},
    )
    assert 403 == response.status_code


def test_did_resolution_endpoint(api: Any, operator_headers: dict[str, str]) -> None:
    issuer = _issue(api, operator_headers)["issuer"]
    body = api.get(f"/identifiers/{issuer}").json()
    assert issuer == body["didDocument"]["id"]
    assert "1" == body["didDocumentMetadata"]["versionId"]
    assert 404 == api.get("/identifiers/did:simtrust:simtrust-local:1111111111111111").status_code
    assert 400 == api.get("/identifiers/did:nope").status_code
    assert 404 == api.get(f"/identifiers/{issuer}", params={"versionId": "7"}).status_code
