"""The OpenID4VCI authorization code flow over HTTP, with independent OAuth 2.0 peers.

1. Animo's oid4vc-ts wallet (tests/identity/wallet) against a real server: it
   resolves an offer carrying ``issuer_state``, reads the RFC 8414 metadata, pushes
   its authorization request (RFC 9126, because the metadata requires it) with a
   PKCE S256 challenge it makes itself, then - after the user signed in to the
   dashboard and allowed it - checks the redirect's ``iss`` (RFC 9207), redeems
   the code with its verifier and receives the credential.
2. oauthlib's ``WebApplicationClient`` (an independent RFC 6749/7636 client) builds
   the PKCE pair, the authorization request (with ``authorization_details``) and
   the token request, and parses the redirect and the token response.
3. Bad input at the HTTP edge answers RFC 6749 §5.2 error JSON (token, PAR) or an
   error page that does not redirect (authorization endpoint, §4.1.2.1).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from oauthlib.oauth2 import WebApplicationClient

from simtrust.identity import KYC_VCT, Ed25519Signer, key_proof
from simtrust.runtime import Runtime
from simtrust.web import create_site

from .test_oid4vc_interop import KYC_CLAIMS, Server, _node

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REDIRECT = "https://wallet.example/cb"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


@pytest.fixture
def site_server(tmp_path: Path) -> Iterator[Server]:
    """A real server with the dashboard mounted (where the user authorizes)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    rt = Runtime.ephemeral(tmp_path / "home")
    rt.settings = replace(rt.settings, public_base_url=f"https://localhost:{port}")
    config = uvicorn.Config(create_site(rt), log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not instance.started:
            if not thread.is_alive():
                raise RuntimeError("server did not start")
            threading.Event().wait(0.01)
        yield Server(rt, port)
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
        sock.close()
        rt.close()


def _tenant_key(rt: Runtime, tenant: str = "acme") -> str:
    rt.tenants.create_tenant(tenant, tenant.title())
    return rt.tenants.create_key("tenant-admin", f"{tenant} user", tenant_id=tenant).secret


def _browser_authorizes(http: httpx.Client | TestClient, url: str, api_key: str,
                        decision: str = "allow") -> str:  # fmt: skip
    """What the user's browser does: sign in when asked, allow, follow to the wallet."""
    parts = urlsplit(url)
    target = parts.path + "?" + parts.query
    page = http.get(target)
    assert 303 == page.status_code  # not signed in: to the dashboard's sign-in
    login = http.get(page.headers["location"])
    token = LOGIN_CSRF.search(login.text)
    assert token is not None
    signed = http.post("/ui/login", data={"api_key": api_key, "login_csrf": token.group(1),
                                          "next": target})  # fmt: skip
    assert (303, target) == (signed.status_code, signed.headers["location"])
    consent = http.get(target)
    assert 200 == consent.status_code, consent.text
    csrf = CSRF.search(consent.text)
    assert csrf is not None
    fields = dict(parse_qs(parts.query))
    answer = http.post("/ui/oid4vci/authorize", data={
        "csrf": csrf.group(1), "client_id": fields["client_id"][0],
        "request_uri": fields["request_uri"][0], "decision": decision})  # fmt: skip
    assert 303 == answer.status_code, answer.text
    assert "no-store" == answer.headers["cache-control"]
    location: str = answer.headers["location"]
    return location


def test_oid4vc_ts_wallet_runs_the_authorization_code_flow(site_server: Server) -> None:
    node = _node()
    server = site_server
    api_key = _tenant_key(server.rt)
    made = server.http.post(
        "/oid4vci/offers",
        json={"credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS,
              "grant": "authorization_code", "tenantId": "acme"},
        headers=server.headers,
    )  # fmt: skip
    assert 201 == made.status_code, made.text
    offer = made.json()
    assert ["authorization_code"] == list(offer["credentialOffer"]["grants"])
    metadata = server.http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["require_pushed_authorization_requests"] is True
    assert ["S256"] == metadata["code_challenge_methods_supported"]
    assert "authorization_code" in metadata["grant_types_supported"]

    started = server.wallet(node, {"action": "authorize", "offerUrl": offer["offerUrl"],
                                   "clientId": "ts-wallet", "redirectUri": REDIRECT})  # fmt: skip
    assert ("Oauth2Redirect", "S256") == (
        started["authorizationFlow"], started["codeChallengeMethod"])  # fmt: skip
    request_url = urlsplit(started["authorizationRequestUrl"])
    assert f"{server.public}/ui/oid4vci/authorize" == (
        f"{request_url.scheme}://{request_url.netloc}{request_url.path}")  # fmt: skip
    # PAR: only client_id and request_uri travel through the browser (RFC 9126 §4).
    assert {"client_id", "request_uri"} == set(parse_qs(request_url.query))

    with httpx.Client(base_url=server.local, timeout=30) as browser:
        redirect = _browser_authorizes(browser, started["authorizationRequestUrl"], api_key)
    assert redirect.startswith(REDIRECT + "?")
    received = server.wallet(node, {
        "action": "redeemCode", "offerUrl": offer["offerUrl"], "redirectUrl": redirect,
        "redirectUri": REDIRECT, "pkceCodeVerifier": started["pkceCodeVerifier"]})  # fmt: skip
    token = received["credential"]
    assert isinstance(token, str)
    assert token.endswith("~")  # dc+sd-jwt with disclosures
    payload = json.loads(_b64(token.split("~")[0].split(".")[1]))
    assert (KYC_VCT, "jwk") == (payload["vct"], next(iter(payload["cnf"])))

    # The code is spent: the same redemption again is invalid_grant (RFC 6749 §5.2).
    again = server.http.post("/oauth2/token", headers=FORM, data={
        "grant_type": "authorization_code", "code": received["code"], "client_id": "ts-wallet",
        "redirect_uri": REDIRECT, "code_verifier": started["pkceCodeVerifier"]})  # fmt: skip
    assert (400, "invalid_grant") == (again.status_code, again.json()["error"])
    actions = [e.action for e in server.rt.audit.recent(limit=20)]
    assert {"oid4vci.authorize", "oid4vci.credential", "oid4vci.token"} <= set(actions)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture
def site(sqlite_runtime: Runtime) -> Iterator[TestClient]:
    sqlite_runtime.settings = replace(sqlite_runtime.settings,
                                      public_base_url="https://testserver")  # fmt: skip
    with TestClient(create_site(sqlite_runtime), base_url="https://testserver",
                    follow_redirects=False) as client:  # fmt: skip
        yield client


def _offer(site: TestClient, rt: Runtime) -> dict[str, Any]:
    operator = rt.tenants.create_key("operator-admin", "operator").secret
    made = site.post("/oid4vci/offers", headers={"Authorization": f"Bearer {operator}"}, json={
        "credential_configuration_id": "DeviceCredential", "tenantId": "acme",
        "grant": "authorization_code",
        "claims": {"imei": "490154203237518", "model": "meter-x1"}})  # fmt: skip
    assert 201 == made.status_code, made.text
    offer: dict[str, Any] = made.json()
    return offer


def test_oauthlib_client_with_authorization_details(site: TestClient,
                                                    sqlite_runtime: Runtime) -> None:  # fmt: skip
    rt = sqlite_runtime
    api_key = _tenant_key(rt)
    offer = _offer(site, rt)
    state_of_offer = offer["credentialOffer"]["grants"]["authorization_code"]["issuer_state"]
    metadata = site.get("/.well-known/oauth-authorization-server").json()
    client = WebApplicationClient("oauthlib-wallet")
    verifier = client.create_code_verifier(64)
    challenge = client.create_code_challenge(verifier, "S256")
    details = json.dumps([{"type": "openid_credential",
                           "credential_configuration_id": "DeviceCredential"}])  # fmt: skip
    # The parameters of RFC 6749 §4.1.1 / RFC 7636 §4.3 as oauthlib builds them, pushed.
    built = client.prepare_request_uri(
        metadata["authorization_endpoint"], redirect_uri=REDIRECT, state="st-1",
        code_challenge=challenge, code_challenge_method="S256",
        authorization_details=details, issuer_state=state_of_offer,
    )  # fmt: skip
    pushed = site.post(urlsplit(metadata["pushed_authorization_request_endpoint"]).path,
                       content=urlsplit(built).query, headers=FORM)  # fmt: skip
    assert 201 == pushed.status_code, pushed.text
    assert "no-store" == pushed.headers["cache-control"]
    authorize = client.prepare_request_uri(metadata["authorization_endpoint"],
                                           request_uri=pushed.json()["request_uri"])  # fmt: skip
    location = _browser_authorizes(site, authorize, api_key)
    answer = client.parse_request_uri_response(location, state="st-1")
    assert "https://testserver" == answer["iss"]
    body = client.prepare_request_body(code=answer["code"], redirect_uri=REDIRECT,
                                       code_verifier=verifier, include_client_id=True)  # fmt: skip
    response = site.post("/oauth2/token", content=body, headers=FORM)
    assert 200 == response.status_code, response.text
    token = client.parse_request_body_response(response.text)
    assert ["DeviceCredential"] == token["authorization_details"][0]["credential_identifiers"]

    holder = Ed25519Signer.generate()
    nonce = site.post("/oid4vci/nonce").json()["c_nonce"]
    proof = key_proof(holder, issuer_url="https://testserver", nonce=nonce, now=rt.clock())
    issued = site.post("/oid4vci/credential", headers={
        "Authorization": f"Bearer {token['access_token']}"}, json={
        "credential_identifier": "DeviceCredential", "proofs": {"jwt": [proof]}})  # fmt: skip
    assert 200 == issued.status_code, issued.text
    credential = issued.json()["credentials"][0]["credential"]
    assert "meter-x1" == credential["credentialSubject"]["model"]


def test_declining_redirects_access_denied(site: TestClient, sqlite_runtime: Runtime) -> None:
    api_key = _tenant_key(sqlite_runtime)
    _offer(site, sqlite_runtime)
    client = WebApplicationClient("w")
    verifier = client.create_code_verifier(64)
    built = client.prepare_request_uri(
        "https://testserver/ui/oid4vci/authorize", redirect_uri=REDIRECT, state="s",
        scope="DeviceCredential", code_challenge=client.create_code_challenge(verifier, "S256"),
        code_challenge_method="S256")  # fmt: skip
    pushed = site.post("/oauth2/par", content=urlsplit(built).query, headers=FORM).json()
    location = _browser_authorizes(site, client.prepare_request_uri(
        "https://testserver/ui/oid4vci/authorize", request_uri=pushed["request_uri"]),
        api_key, decision="deny")  # fmt: skip
    answer = parse_qs(urlsplit(location).query)
    assert (["access_denied"], ["s"]) == (answer["error"], answer["state"])


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("grant_type=authorization_code&code=x&client_id=w&redirect_uri=https%3A%2F%2Fw%2Fcb"
         "&code_verifier=" + "v" * 43, 400, "invalid_grant"),
        ("grant_type=authorization_code&code=x&client_id=w&redirect_uri=https%3A%2F%2Fw%2Fcb",
         400, "invalid_request"),
        ("grant_type=authorization_code&code=x&client_id=w&client_secret=s&redirect_uri=r"
         "&code_verifier=" + "v" * 43, 401, "invalid_client"),
        ("grant_type=implicit", 400, "unsupported_grant_type"),
        ("grant_type=authorization_code&code=a&code=b", 400, "invalid_request"),
    ],
)
def test_token_endpoint_errors_are_rfc6749_json(
    api: TestClient, body: str, status: int, error: str
) -> None:
    response = api.post("/oauth2/token", content=body, headers=FORM)
    assert (status, error) == (response.status_code, response.json()["error"])
    assert "no-store" == response.headers["cache-control"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("response_type=code&client_id=w&redirect_uri=https%3A%2F%2Fw%2Fcb&scope=SimtrustKyc"
         "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
         "invalid_request"),
        ("response_type=code&client_id=w&redirect_uri=https%3A%2F%2Fw%2Fcb&scope=nope"
         "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
         "invalid_scope"),
        ("response_type=code&client_id=w&redirect_uri=https%3A%2F%2Fw%2Fcb"
         "&authorization_details=%5B%7B%22type%22%3A%22x%22%7D%5D"
         "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
         "invalid_authorization_details"),
        ("%ff%fe", "invalid_request"),
    ],
)
def test_par_errors_are_rfc6749_json(api: TestClient, body: str, error: str) -> None:
    response = api.post("/oauth2/par", content=body, headers=FORM)
    assert (400, error) == (response.status_code, response.json()["error"])


def test_authorization_endpoint_never_redirects_a_bad_request_uri(
    site: TestClient, sqlite_runtime: Runtime
) -> None:
    api_key = _tenant_key(sqlite_runtime)
    target = "/ui/oid4vci/authorize?client_id=w&request_uri=urn%3Aietf%3Aparams%3Aoauth%3A" \
             "request_uri%3Amadeup"  # fmt: skip
    login = site.get("/ui/login")
    token = LOGIN_CSRF.search(login.text)
    assert token is not None
    site.post("/ui/login", data={"api_key": api_key, "login_csrf": token.group(1), "next": "/ui/"})
    page = site.get(target)
    assert 400 == page.status_code
    assert "request_uri" in page.text
    assert "location" not in page.headers
