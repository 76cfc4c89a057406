"""Capability credentials: grant, delegate, enforce (cached), caveats and revocation."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simtrust.audit.receipts import verify_receipt
from simtrust.identity import (
    Ed25519Signer,
    capability_token,
    create_presentation,
    did_key,
    grant_capability,
)
from simtrust.runtime import Runtime

STREAM = "urn:simtrust:stream:meter-42"


def _check(api: Any, headers: dict[str, str], token: str, action: str = "read",
           resource: str = STREAM) -> Any:  # fmt: skip
    return api.post(
        "/capabilities/check",
        json={"capability": token, "action": action, "resource": resource},
        headers=headers,
    )


def test_grant_delegate_enforce_and_revoke(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    partner = Ed25519Signer.from_seed(bytes(range(2, 34)))
    contractor = Ed25519Signer.from_seed(bytes(range(3, 35)))
    partner_did, contractor_did = did_key(partner.public_key), did_key(contractor.public_key)
    granted = api.post(
        "/capabilities",
        json={"grantee": partner_did, "resource": STREAM, "actions": ["read", "subscribe"],
              "delegationDepth": 1},
        headers=operator_headers,
    )  # fmt: skip
    assert 201 == granted.status_code, granted.text
    root = granted.json()["verifiableCredential"]
    assert "BitstringStatusListEntry" == root["credentialStatus"]["type"]

    root_token = capability_token([root])
    first = _check(api, operator_headers, root_token)
    assert (200, "permit", False) == (
        first.status_code, first.json()["decision"], first.json()["cached"]
    )  # fmt: skip
    again = _check(api, operator_headers, root_token)
    assert (200, True) == (again.status_code, again.json()["cached"])
    wrote = _check(api, operator_headers, root_token, action="write")
    assert 403 == wrote.status_code, wrote.text
    assert 403 == _check(api, operator_headers, root_token, resource="urn:other").status_code

    now = sqlite_runtime.identity.now()
    # The partner delegates read only, to a contractor, with a rate caveat.
    child = grant_capability(
        partner, grantee=contractor_did, resource=STREAM, actions=["read"], now=now,
        valid_until=now + timedelta(days=1), rate_per_minute=2, parent=root,
    )  # fmt: skip
    chain = capability_token([root, child])
    assert contractor_did == _check(api, operator_headers, chain).json()["holder"]
    assert 200 == _check(api, operator_headers, chain).status_code
    limited = _check(api, operator_headers, chain)
    assert (403, "rate") == (limited.status_code, limited.json()["reason"].split(":")[0])
    # The contractor cannot delegate further (depth exhausted), nor widen its grant.
    grandchild = grant_capability(
        contractor, grantee=partner_did, resource=STREAM, actions=["read"], now=now,
    )  # fmt: skip
    grandchild["credentialSubject"]["parentCapability"] = child["id"]
    denied = _check(api, operator_headers, capability_token([root, child, grandchild]))
    assert 403 == denied.status_code
    # A presentation of the chain signed by the holder, for this enforcement point.
    vp = create_presentation(
        [root], partner, now=now, domain=sqlite_runtime.identity.public_url
    )
    assert 200 == _check(api, operator_headers, capability_token(vp)).status_code
    stolen = create_presentation(
        [root], contractor, now=now, domain=sqlite_runtime.identity.public_url,
    )  # fmt: skip
    assert 403 == _check(api, operator_headers, capability_token(stolen)).status_code

    # Revocation through the status list takes effect at once, cache or not.
    change = {"credentialId": root["id"], "credentialStatus": [
        {"type": "BitstringStatusListEntry", "statusPurpose": "revocation", "status": True}]}
    assert 200 == api.post("/credentials/status", json=change, headers=operator_headers).status_code
    for token in (root_token, chain):
        revoked = _check(api, operator_headers, token)
        assert (403, "revoked") == (revoked.status_code, revoked.json()["reason"].split(":")[0])
    audit = [r.action for r in sqlite_runtime.audit.iter_all()]
    assert audit.count("capability.access") >= 8


def test_bad_tokens_are_denied_with_the_rule(api: Any, operator_headers: dict[str, str]) -> None:
    for token in ("", "!!", capability_token([]), "eyJ4Ijox", capability_token([{"type": 1}])):
        response = _check(api, operator_headers, token)
        assert (403, "deny") == (response.status_code, response.json()["decision"])
        assert response.json()["reason"].startswith("malformed")


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "holder": self.headers.get(
            "X-Simtrust-Capability-Holder"), "auth": self.headers.get("Authorization")})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_reverse_proxy_forwards_only_what_the_capability_grants(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    try:
        port = upstream.server_address[1]
        sqlite_runtime.settings = replace(
            sqlite_runtime.settings, capability_datasets=f"meters=http://127.0.0.1:{port}/v1"
        )
        partner = Ed25519Signer.from_seed(bytes(range(4, 36)))
        base = sqlite_runtime.identity.public_url
        root = api.post(
            "/capabilities",
            json={"grantee": did_key(partner.public_key), "resource": f"{base}/datasets/meters",
                  "actions": ["read"]},
            headers=operator_headers,
        ).json()["verifiableCredential"]  # fmt: skip
        auth = {"Authorization": f"Capability {capability_token([root])}"}
        got = api.get("/datasets/meters/readings?day=1", headers=auth)
        assert 200 == got.status_code, got.text
        assert ("/v1/readings?day=1", did_key(partner.public_key), None) == (
            got.json()["path"], got.json()["holder"], got.json()["auth"]
        )  # fmt: skip
        assert verify_receipt(got.headers["Simtrust-Receipt"])["decision"] == "permit"
        refused = api.post("/datasets/meters/readings", headers=auth, json={})
        assert 403 == refused.status_code
        receipt = verify_receipt(refused.headers["Simtrust-Receipt"])  # denials receipted too
        assert ("deny", "write", refused.headers["Simtrust-Receipt-Id"]) == (
            receipt["decision"], receipt["action"], receipt["event_id"])
        assert 401 == api.get("/datasets/meters/readings").status_code
        assert 404 == api.get("/datasets/other/x", headers=auth).status_code
        change = {"credentialId": root["id"], "credentialStatus": [
            {"type": "BitstringStatusListEntry", "statusPurpose": "revocation", "status": True}]}
        api.post("/credentials/status", json=change, headers=operator_headers)
        assert 403 == api.get("/datasets/meters/readings", headers=auth).status_code
    finally:
        upstream.shutdown()
        upstream.server_close()
