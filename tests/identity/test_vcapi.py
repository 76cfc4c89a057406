"""VC-API endpoints over the real app: issue, verify, presentations, status, DID resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from simtrust.config import load_settings
from simtrust.errors import ConfigError
from simtrust.identity import Ed25519Signer, add_proof, create_presentation
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
    url = vc["credentialStatus"]["statusListCredential"]
    assert url.startswith("https://")
    assert "/credentials/status/" in url
    listed = api.get(urlsplit(url).path)
    assert url == listed.json()["id"]
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


def test_issue_refuses_what_the_data_model_forbids(
    api: Any, operator_headers: dict[str, str]
) -> None:
    for credential, rule in (
        ({**UNSIGNED, "issuer": None}, "§4.7"),
        ({**UNSIGNED, "id": ["urn:uuid:1", "urn:uuid:2"]}, "§4.4"),
        ({**UNSIGNED, "credentialSubject": {}}, "§4.8"),
        ({**UNSIGNED, "credentialStatus": {"id": "https://example.com/s/1"}}, "§4.10"),
        (
            {
                **UNSIGNED,
                "@context": [*UNSIGNED["@context"], {"type": "https://example.org/t"}],
            },
            "§5.2",
        ),
    ):
        response = api.post(
            "/credentials/issue", json={"credential": credential}, headers=operator_headers
        )
        assert 400 == response.status_code, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert rule in response.json()["rule"]


def test_issue_validates_caller_status_entries(api: Any, operator_headers: dict[str, str]) -> None:
    first = _issue(api, operator_headers, credentialStatus={"type": "BitstringStatusListEntry"})
    entry = first["credentialStatus"]
    reused = {**UNSIGNED, "id": "urn:uuid:other", "credentialStatus": entry}
    response = api.post("/credentials/issue", json={"credential": reused}, headers=operator_headers)
    assert 409 == response.status_code
    for bad in (
        {**entry, "statusListIndex": 5},
        {**entry, "statusListCredential": "https://elsewhere.example/list"},
        {**entry, "statusListIndex": str(10**9)},
        {**entry, "statusPurpose": "suspension"},
    ):
        response = api.post(
            "/credentials/issue",
            json={"credential": {**UNSIGNED, "credentialStatus": bad}},
            headers=operator_headers,
        )
        assert 400 == response.status_code, (bad, response.text)
    fresh = {**entry, "statusListIndex": str((int(entry["statusListIndex"]) + 1) % 131072)}
    response = api.post(
        "/credentials/issue",
        json={"credential": {**UNSIGNED, "credentialStatus": fresh}},
        headers=operator_headers,
    )
    assert 201 == response.status_code, response.text


def test_presentation_without_holder_verifies(api: Any, operator_headers: dict[str, str]) -> None:


    vc = _issue(api, operator_headers)
    signer = Ed25519Signer.generate()
    vp = add_proof(
        {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiablePresentation"],
            "verifiableCredential": [vc],
        },
        signer,
        created=datetime.now(UTC),
        proof_purpose="authentication",
        challenge="n-1",
    )
    body = {"verifiablePresentation": vp, "options": {"checks": ["proof"], "challenge": "n-1"}}
    ok = api.post("/presentations/verify", json=body, headers=operator_headers)
    assert (200, True) == (ok.status_code, ok.json()["verified"]), ok.text
    body["options"]["holderBinding"] = True
    bound = api.post("/presentations/verify", json=body, headers=operator_headers)
    assert (400, "holder-binding") == (bound.status_code, bound.json()["errors"][0]["reason"])


def test_public_base_url_setting(tmp_path: Any) -> None:


    env = {"SIMTRUST_PUBLIC_BASE_URL": "https://trust.example.net/"}
    assert "https://trust.example.net" == load_settings(env, home=tmp_path).public_url
    assert "https://localhost:8470" == load_settings({}, home=tmp_path).public_url
    for bad in ("http://trust.example.net", "https://", "https://a.example/?q=1", "urn:x"):
        with pytest.raises(ConfigError):
            load_settings({"SIMTRUST_PUBLIC_BASE_URL": bad}, home=tmp_path)


def test_status_messages_with_status_size_2(api: Any, operator_headers: dict[str, str]) -> None:
    messages = [
        {"status": "0x0", "message": "pending"},
        {"status": "0x1", "message": "accepted"},
        {"status": "0x2", "message": "rejected"},
        {"status": "0x3", "message": "withdrawn"},
    ]
    vc = _issue(
        api,
        operator_headers,
        credentialStatus={
            "type": "BitstringStatusListEntry",
            "statusPurpose": "message",
            "statusSize": 2,
            "statusMessage": messages,
        },
    )
    entry = vc["credentialStatus"]
    assert (2, messages) == (entry["statusSize"], entry["statusMessage"])

    def status() -> dict[str, Any]:
        response = api.post(
            "/credentials/verify", json={"verifiableCredential": vc}, headers=operator_headers
        )
        assert 200 == response.status_code, response.text
        result: dict[str, Any] = response.json()["status"][0]
        return result

    assert ("0x0", "pending") == (status()["status"], status()["message"])
    change = {
        "credentialId": vc["id"],
        "credentialStatus": [
            {"type": "BitstringStatusListEntry", "statusPurpose": "message", "status": "0x2"}
        ],
    }
    assert 200 == api.post("/credentials/status", json=change, headers=operator_headers).status_code
    assert ("0x2", "rejected") == (status()["status"], status()["message"])
    change["credentialStatus"][0]["status"] = "0x4"
    assert 400 == api.post("/credentials/status", json=change, headers=operator_headers).status_code


def test_issue_options(api: Any, operator_headers: dict[str, str]) -> None:
    vc = _issue(
        api,
        operator_headers,
        created="2026-05-01T10:00:00Z",
        challenge="c-42",
        domain="rp.example",
        cryptosuite="eddsa-rdfc-2022",
    )
    proof = vc["proof"]
    assert ("2026-05-01T10:00:00Z", "c-42", "rp.example", "eddsa-rdfc-2022") == (
        proof["created"],
        proof["challenge"],
        proof["domain"],
        proof["cryptosuite"],
    )
    for options in (
        {"created": "yesterday"},
        {"bogus": 1},
        {"mandatoryPointers": ["/issuer"]},
        {"challenge": ""},
        {"cryptosuite": "bbs-2023"},
    ):
        response = api.post(
            "/credentials/issue",
            json={"credential": UNSIGNED, "options": options},
            headers=operator_headers,
        )
        assert 400 == response.status_code, (options, response.text)


def test_issue_vc_jwt_enveloped_verify_and_revoke(
    api: Any, operator_headers: dict[str, str]
) -> None:
    """VC-JOSE-COSE §3.1.1: a vc+jwt, returned as an EnvelopedVerifiableCredential
    (VCDM 2.0 §4.13.1), verifies at /credentials/verify and follows its status entry."""
    vc = _issue(api, operator_headers, securingMechanism="vc+jwt",
                credentialStatus={"type": "BitstringStatusListEntry"})  # fmt: skip
    assert "EnvelopedVerifiableCredential" == vc["type"]
    assert vc["id"].startswith("data:application/vc+jwt,ey")
    assert "proof" not in vc
    verified = api.post("/credentials/verify", json={"verifiableCredential": vc},
                        headers=operator_headers)  # fmt: skip
    assert (200, True) == (verified.status_code, verified.json()["verified"]), verified.text
    change = {"credentialId": UNSIGNED["id"], "credentialStatus": [
        {"type": "BitstringStatusListEntry", "statusPurpose": "revocation", "status": True}]}
    assert 200 == api.post("/credentials/status", json=change, headers=operator_headers).status_code
    revoked = api.post("/credentials/verify", json={"verifiableCredential": vc},
                       headers=operator_headers)  # fmt: skip
    assert (400, "revoked") == (revoked.status_code, revoked.json()["errors"][0]["reason"])


@pytest.mark.parametrize(
    "options",
    [
        {"securingMechanism": "cose"},
        {"securingMechanism": "vc+jwt", "cryptosuite": "eddsa-jcs-2022"},
        {"securingMechanism": "vc+jwt", "challenge": "c"},
    ],
)
def test_issue_vc_jwt_option_errors(
    api: Any, operator_headers: dict[str, str], options: dict[str, Any]
) -> None:
    response = api.post("/credentials/issue", json={"credential": UNSIGNED, "options": options},
                        headers=operator_headers)  # fmt: skip
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "securingMechanism" in response.text or "Data Integrity" in response.text


@pytest.mark.parametrize("suite", ["ecdsa-rdfc-2019", "ecdsa-jcs-2019"])
def test_issue_ecdsa_as_the_did_web_p256_key(
    api: Any, operator_headers: dict[str, str], suite: str
) -> None:
    """Data Integrity ECDSA §3 with P-256: signed as the platform's did:web, whose document
    (served at /.well-known/did.json) holds the P-256 Multikey in assertionMethod."""
    vc = _issue(api, operator_headers, cryptosuite=suite)
    assert vc["issuer"].startswith("did:web:")
    assert (suite, vc["issuer"] + "#key-p256") == (
        vc["proof"]["cryptosuite"], vc["proof"]["verificationMethod"])  # fmt: skip
    document = api.get("/.well-known/did.json").json()
    method = next(m for m in document["verificationMethod"] if m["id"].endswith("#key-p256"))
    assert method["publicKeyMultibase"].startswith("zDn")  # P-256 Multikey
    assert method["id"] in document["assertionMethod"]
    verified = api.post("/credentials/verify", json={"verifiableCredential": vc},
                        headers=operator_headers)  # fmt: skip
    assert (200, True) == (verified.status_code, verified.json()["verified"]), verified.text
    vc["credentialSubject"]["imeiTac"] = "00000000"
    tampered = api.post("/credentials/verify", json={"verifiableCredential": vc},
                        headers=operator_headers)  # fmt: skip
    assert 400 == tampered.status_code


def test_ecdsa_issue_as_another_identifier_is_refused(
    api: Any, operator_headers: dict[str, str]
) -> None:
    did = _issue(api, operator_headers)["issuer"]  # the did:simtrust (Ed25519 only)
    response = api.post("/credentials/issue", headers=operator_headers, json={
        "credential": {**UNSIGNED, "issuer": did}, "options": {"cryptosuite": "ecdsa-rdfc-2019"}})
    assert 400 == response.status_code
    assert "did:web" in response.json()["detail"]
