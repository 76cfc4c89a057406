"""VC-API authentication: OAuth 2.0 client credentials tokens and the public verifier.

The token request and response go through oauthlib's client (an independent
RFC 6749 implementation): it builds the client-credentials body and parses
and checks the token response (token_type, expires_in, scope rules).
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from simtrust.runtime import Runtime

from .conftest import credential_for

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UNSIGNED = {k: v for k, v in credential_for("did:example:x").items() if k != "issuer"}


def _basic(client_id: str, secret: str) -> dict[str, str]:
    value = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {**FORM, "Authorization": f"Basic {value}"}


def test_client_credentials_token_is_a_bearer_for_vc_api(api: Any, sqlite_runtime: Runtime) -> None:
    key = sqlite_runtime.tenants.create_key("operator-admin", "rp")
    client = BackendApplicationClient(client_id=key.key.id)
    body = client.prepare_request_body()
    response = api.post("/oauth2/token", content=body, headers=_basic(key.key.id, key.secret))
    assert 200 == response.status_code, response.text
    assert "no-store" == response.headers["cache-control"]
    token = client.parse_request_body_response(response.text)
    assert "Bearer" == token["token_type"]
    assert token["expires_in"] > 0
    assert key.secret not in response.text
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    issued = api.post("/credentials/issue", json={"credential": UNSIGNED}, headers=bearer)
    assert 201 == issued.status_code, issued.text
    # client_secret_post works too; the API key itself stays a valid bearer.
    posted = api.post(
        "/oauth2/token",
        content=f"grant_type=client_credentials&client_id={key.key.id}&client_secret={key.secret}",
        headers=FORM,
    )
    assert 200 == posted.status_code
    sqlite_runtime.tenants.revoke_key(key.key.id)
    assert (
        401
        == api.post("/credentials/issue", json={"credential": UNSIGNED}, headers=bearer).status_code
    )


def test_token_endpoint_errors(api: Any, sqlite_runtime: Runtime) -> None:
    key = sqlite_runtime.tenants.create_key("operator-admin", "rp")
    client = BackendApplicationClient(client_id=key.key.id)
    cases = [
        ("grant_type=password", _basic(key.key.id, key.secret), 400, "unsupported_grant_type"),
        ("", _basic(key.key.id, key.secret), 400, "invalid_request"),
        ("grant_type=client_credentials", _basic(key.key.id, "stk_wrong"), 401, "invalid_client"),
        ("grant_type=client_credentials", _basic("0000000000000000", key.secret), 401,
         "invalid_client"),
        ("grant_type=client_credentials", FORM, 401, "invalid_client"),
        ("grant_type=client_credentials&grant_type=client_credentials",
         _basic(key.key.id, key.secret), 400, "invalid_request"),
    ]  # fmt: skip
    for body, headers, status, error in cases:
        response = api.post("/oauth2/token", content=body, headers=headers)
        assert (status, error) == (response.status_code, response.json()["error"]), body
        with pytest.raises(OAuth2Error):
            client.parse_request_body_response(response.text)
    forged = {"Authorization": "Bearer sta_" + "A" * 80}
    assert (
        401
        == api.post("/credentials/issue", json={"credential": UNSIGNED}, headers=forged).status_code
    )
    meta = api.get("/.well-known/oauth-authorization-server").json()
    assert meta["token_endpoint"].endswith("/oauth2/token")
    assert ["client_credentials", "authorization_code",
            "urn:ietf:params:oauth:grant-type:pre-authorized_code", "refresh_token"] == (
        meta["grant_types_supported"]
    )  # fmt: skip


def test_public_verifier_is_off_by_default_then_rate_limited(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    vc = api.post(
        "/credentials/issue", json={"credential": UNSIGNED}, headers=operator_headers
    ).json()["verifiableCredential"]
    body = {"verifiableCredential": vc}
    assert 401 == api.post("/credentials/verify", json=body).status_code
    sqlite_runtime.settings = dataclasses.replace(
        sqlite_runtime.settings, vc_public_verify=True, vc_public_verify_per_minute=3
    )
    answers = [api.post("/credentials/verify", json=body) for _ in range(4)]
    assert [200, 200, 200, 429] == [a.status_code for a in answers]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].headers["content-type"].startswith("application/problem+json")
    # Authenticated callers are not limited; issuing still needs a key.
    assert 200 == api.post("/credentials/verify", json=body, headers=operator_headers).status_code
    assert 401 == api.post("/credentials/issue", json={"credential": UNSIGNED}).status_code
