"""Resolvable issuers: did:simtrust, did:key and did:web of the platform key; UR driver."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from simtrust.identity import DidResolver, verify_credential
from simtrust.identity._didkey import resolve_did_key
from simtrust.runtime import Runtime

from .conftest import credential_for

UR = 'application/ld+json;profile="https://w3id.org/did-resolution"'


def _unsigned() -> dict[str, Any]:
    return {k: v for k, v in credential_for("did:example:x").items() if k != "issuer"}


def _issue(api: Any, headers: dict[str, str], issuer: str | None) -> Any:
    credential = _unsigned()
    if issuer is not None:
        credential["issuer"] = issuer
    return api.post("/credentials/issue", json={"credential": credential}, headers=headers)


def test_did_web_document_and_issuer_aliases(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    default = _issue(api, operator_headers, None).json()["verifiableCredential"]
    service = sqlite_runtime.identity
    web = service.web_did()
    assert "did:web:localhost%3A8470" == web
    document = api.get("/.well-known/did.json")
    assert 200 == document.status_code
    assert document.headers["content-type"].startswith("application/did+json")
    body = document.json()
    assert web == body["id"]
    assert default["issuer"] in body["alsoKnownAs"]
    did_key = next(a for a in body["alsoKnownAs"] if a.startswith("did:key:"))
    # The did:key names the same key the did:web document holds.
    key_doc = resolve_did_key(did_key)
    assert (
        key_doc["verificationMethod"][0]["publicKeyMultibase"]
        == body["verificationMethod"][0]["publicKeyMultibase"]
    )
    for issuer in (web, did_key):
        response = _issue(api, operator_headers, issuer)
        assert 201 == response.status_code, response.text
        vc = response.json()["verifiableCredential"]
        assert issuer == vc["proof"]["verificationMethod"].split("#")[0]
        verified = api.post(
            "/credentials/verify", json={"verifiableCredential": vc}, headers=operator_headers
        )
        assert (200, True) == (verified.status_code, verified.json()["verified"]), verified.text
        if issuer == did_key:
            # An outside verifier needs nothing from simtrust for a did:key issuer.
            verify_credential(vc, resolver=DidResolver(), now=sqlite_runtime.clock())
    other = _issue(api, operator_headers, "did:web:elsewhere.example")
    assert 400 == other.status_code
    revocable = api.post(
        "/credentials/issue",
        json={
            "credential": {**_unsigned(), "issuer": web},
            "options": {"credentialStatus": {"type": "BitstringStatusListEntry"}},
        },
        headers=operator_headers,
    )
    assert 400 == revocable.status_code


def test_universal_resolver_driver(api: Any, operator_headers: dict[str, str]) -> None:
    issuer = _issue(api, operator_headers, None).json()["verifiableCredential"]["issuer"]
    response = api.get(f"/1.0/identifiers/{issuer}")
    assert 200 == response.status_code
    assert UR == response.headers["content-type"]
    body = response.json()
    assert issuer == body["didDocument"]["id"]
    assert "1" == body["didDocumentMetadata"]["versionId"]
    # The DID is percent-encoded in the path (its own %3A becomes %253A).
    web_response = api.get("/1.0/identifiers/" + quote("did:web:localhost%3A8470", safe=":"))
    web = web_response.json()
    assert web["didDocument"], web_response.text
    assert "did:web:localhost%3A8470" == web["didDocument"]["id"]
    as_sent = api.get("/1.0/identifiers/did:web:localhost%3A8470").json()
    assert "did:web:localhost%3A8470" == as_sent["didDocument"]["id"]
    for did, status, error in (
        ("did:simtrust:simtrust-local:1111111111111111", 404, "notFound"),
        ("not-a-did", 400, "invalidDid"),
        ("did:nope:abc", 501, "methodNotSupported"),
        ("did:web:elsewhere.example", 404, "notFound"),
    ):
        failed = api.get(f"/1.0/identifiers/{did}")
        assert (status, error) == (
            failed.status_code,
            failed.json()["didResolutionMetadata"]["error"],
        ), failed.text
        assert failed.json()["didDocument"] is None
