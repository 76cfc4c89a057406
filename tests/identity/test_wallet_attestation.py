"""Wallet attestation (OAuth 2.0 Attestation-Based Client Authentication) at PAR and token.

With ``SIMTRUST_WALLET_PROVIDERS`` set, the test plays the wallet provider:
joserfc signs an ``oauth-client-attestation+jwt`` for the wallet's P-256 key,
and Animo's oid4vc-ts wallet authenticates with it (``attest_jwt_client_auth``:
its own PoP JWT per request) through PAR, the user's consent and the token
endpoint. Without an attestation, with an untrusted provider or a replayed
PoP the server answers 401 ``invalid_client``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from . import test_oid4vci_authcode_http as authcode
from .test_oid4vc_interop import KYC_CLAIMS, Server, _node
from .test_oid4vci_authcode_http import REDIRECT, _browser_authorizes, _tenant_key

PROVIDER = "https://wallet-provider.example"
FORM = {"response_type": "code", "client_id": "wallet-att", "redirect_uri": REDIRECT,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "scope": "SimtrustKyc"}  # fmt: skip


@pytest.fixture
def attested(tmp_path: Path) -> Iterator[tuple[Server, ECKey]]:
    provider = ECKey.generate_key("P-256")
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({PROVIDER: provider.as_dict(private=False)}))
    for server in authcode.site_server.__wrapped__(tmp_path):  # type: ignore[attr-defined]
        server.rt.settings = replace(server.rt.settings, wallet_providers=str(path))
        yield server, provider


def _attestation(provider: ECKey, wallet: ECKey, client_id: str, iss: str = PROVIDER) -> str:
    now = int(time.time())
    payload = {"iss": iss, "sub": client_id, "iat": now, "exp": now + 3600,
               "cnf": {"jwk": wallet.as_dict(private=False)}}  # fmt: skip
    return jws.serialize_compact({"alg": "ES256", "typ": "oauth-client-attestation+jwt"},
                                 json.dumps(payload).encode(), provider)  # fmt: skip


def _pop(wallet: ECKey, client_id: str, audience: str, jti: str = "j1") -> str:
    payload = {"iss": client_id, "aud": audience, "iat": int(time.time()), "jti": jti}
    return jws.serialize_compact({"alg": "ES256", "typ": "oauth-client-attestation-pop+jwt"},
                                 json.dumps(payload).encode(), wallet)  # fmt: skip


def test_oid4vc_ts_wallet_authenticates_with_its_attestation(
    attested: tuple[Server, ECKey],
) -> None:
    node = _node()
    server, provider = attested
    metadata = server.http.get("/.well-known/oauth-authorization-server").json()
    assert "attest_jwt_client_auth" in metadata["token_endpoint_auth_methods_supported"]
    api_key = _tenant_key(server.rt)
    made = server.http.post("/oid4vci/offers", headers=server.headers, json={
        "credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS,
        "grant": "authorization_code", "tenantId": "acme"})
    offer = made.json()
    wallet = ECKey.generate_key("P-256")
    private: dict[str, Any] = dict(wallet.as_dict(private=True))
    attestation = _attestation(provider, wallet, "wallet-att")
    common = {"offerUrl": offer["offerUrl"], "redirectUri": REDIRECT, "alg": "ES256",
              "privateJwk": private, "clientAttestation": attestation}  # fmt: skip
    started = server.wallet(node, {"action": "authorize", "clientId": "wallet-att", **common})
    browser = httpx.Client(base_url=server.local, timeout=30, follow_redirects=False)
    location = _browser_authorizes(browser, started["authorizationRequestUrl"], api_key)
    done = server.wallet(node, {"action": "redeemCode", "redirectUrl": location,
                                "pkceCodeVerifier": started["pkceCodeVerifier"], **common})
    assert done["credential"].endswith("~")


def test_unattested_forged_and_replayed_requests_are_refused(
    attested: tuple[Server, ECKey],
) -> None:
    server, provider = attested
    base = server.rt.settings.public_url
    wallet, stranger = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    good = _attestation(provider, wallet, "wallet-att")
    cases = {
        "none": {},
        "untrusted provider": {"OAuth-Client-Attestation": _attestation(
            stranger, wallet, "wallet-att", iss="https://other.example"),
            "OAuth-Client-Attestation-PoP": _pop(wallet, "wallet-att", base, "a")},
        "forged attestation": {"OAuth-Client-Attestation": _attestation(
            stranger, wallet, "wallet-att"),
            "OAuth-Client-Attestation-PoP": _pop(wallet, "wallet-att", base, "b")},
        "pop by another key": {"OAuth-Client-Attestation": good,
                               "OAuth-Client-Attestation-PoP": _pop(stranger, "wallet-att",
                                                                    base, "c")},
        "other audience": {"OAuth-Client-Attestation": good,
                           "OAuth-Client-Attestation-PoP": _pop(wallet, "wallet-att",
                                                                "https://as.example", "d")},
        "other client": {"OAuth-Client-Attestation": _attestation(provider, wallet, "x"),
                         "OAuth-Client-Attestation-PoP": _pop(wallet, "x", base, "e")},
    }  # fmt: skip
    for name, headers in cases.items():
        answer = server.http.post("/oauth2/par", data=FORM, headers=headers)
        assert (401, "invalid_client") == (answer.status_code, answer.json()["error"]), name
    headers = {"OAuth-Client-Attestation": good,
               "OAuth-Client-Attestation-PoP": _pop(wallet, "wallet-att", base, "once")}
    first = server.http.post("/oauth2/par", data=FORM, headers=headers)
    assert 201 == first.status_code, first.text
    replay = server.http.post("/oauth2/par", data=FORM, headers=headers)
    assert (401, "invalid_client") == (replay.status_code, replay.json()["error"])


def _jar(key: ECKey, audience: str, **change: Any) -> str:
    claims: dict[str, Any] = {**FORM, "iss": "wallet-att", "aud": audience,
                              "exp": int(time.time()) + 60, **change}  # fmt: skip
    return jws.serialize_compact({"alg": "ES256", "typ": "oauth-authz-req+jwt"},
                                 json.dumps(claims).encode(), key)  # fmt: skip


def test_a_signed_request_object_is_pushed_with_the_attested_key(
    attested: tuple[Server, ECKey],
) -> None:
    server, provider = attested
    base = server.rt.settings.public_url
    wallet, stranger = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    good = _attestation(provider, wallet, "wallet-att")
    refusals = {
        "other signer": _jar(stranger, base),
        "other audience": _jar(wallet, "https://as.example"),
        "expired": _jar(wallet, base, exp=int(time.time()) - 10),
        "other iss": _jar(wallet, base, iss="x"),
    }
    for i, (name, jar) in enumerate(refusals.items()):
        headers = {"OAuth-Client-Attestation": good,
                   "OAuth-Client-Attestation-PoP": _pop(wallet, "wallet-att", base, f"r{i}")}
        answer = server.http.post("/oauth2/par", data={"client_id": "wallet-att",
                                                        "request": jar}, headers=headers)
        assert (400, "invalid_request_object") == (
            answer.status_code, answer.json()["error"]), name
    headers = {"OAuth-Client-Attestation": good,
               "OAuth-Client-Attestation-PoP": _pop(wallet, "wallet-att", base, "ok")}
    pushed = server.http.post("/oauth2/par", headers=headers,
                              data={"client_id": "wallet-att", "request": _jar(wallet, base)})
    assert 201 == pushed.status_code, pushed.text
    row = server.rt.db.query_one("SELECT client_id, redirect_uri, configuration_id"
                                 " FROM identity_oid4vci_authz")  # fmt: skip
    assert ("wallet-att", REDIRECT, "SimtrustKyc") == tuple(row or ())
