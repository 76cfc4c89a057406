"""Claim narrowing at consent (OpenID4VCI 1.0 §5): the holder deselects claims.

1. Service level, SQLite and PostgreSQL: the claims the user kept reach the
   minted credential, mandatory ones always, declined ones never; without a
   choice every claim is issued; a configuration without narrowing is whole.
2. End to end: Animo's oid4vc-ts wallet runs the authorization code flow, the
   user clears two KYC claims on the dashboard's consent page, and the
   ``dc+sd-jwt`` the wallet receives holds disclosures for the kept claims only
   (decoded here from the SD-JWT itself, RFC 9901 §4.2.1).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from simtrust.crypto import Keyring
from simtrust.errors import InvalidInput
from simtrust.identity import (
    AUTHORIZATION_CODE_GRANT,
    CredentialConfiguration,
    CredentialIssuer,
    Ed25519Signer,
    Minted,
    key_proof,
)
from simtrust.store import Database

from . import test_oid4vci_authcode_http as authcode
from .conftest import NOW
from .test_oid4vc_interop import KYC_CLAIMS, Server, _node
from .test_oid4vci_authcode_http import CSRF, LOGIN_CSRF, REDIRECT, _tenant_key

site_server = authcode.site_server
ISSUER = "https://issuer.example"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
CLAIM_BOX = re.compile(r'name="claim:([^"]+)"')


def _check(claims: dict[str, Any]) -> None:
    if "level" not in claims:
        raise InvalidInput("level is required")


def _mint(configuration: str, claims: dict[str, Any], jwk: dict[str, str], did: str) -> Minted:
    return Minted({"type": configuration, **claims}, f"urn:x:{did}")


def _issuer(db: Database) -> CredentialIssuer:
    proofs = {"jwt": {"proof_signing_alg_values_supported": ["EdDSA"]}}
    configs = {
        "Narrow": CredentialConfiguration("Narrow", {"format": "ldp_vc", "scope": "narrow",
                                                     "proof_types_supported": proofs},
                                          _check, mandatory=frozenset({"level"})),
        "Whole": CredentialConfiguration("Whole", {"format": "ldp_vc", "scope": "whole",
                                                   "proof_types_supported": proofs}, _check),
    }  # fmt: skip
    return CredentialIssuer(db, Keyring.generate(), issuer_url=ISSUER, configurations=configs,
                            mint=_mint)  # fmt: skip


def _issue(issuer: CredentialIssuer, configuration: str, kept: list[str] | None,
           holder: Ed25519Signer) -> dict[str, Any]:  # fmt: skip
    made = issuer.create_offer(configuration, {"level": "high", "a": 1, "b": 2, "c": 3},
                               now=NOW, tenant_id="acme", authorization_code=True)  # fmt: skip
    state = made["credentialOffer"]["grants"][AUTHORIZATION_CODE_GRANT]["issuer_state"]
    pushed = issuer.authorization.push({
        "response_type": "code", "client_id": "w", "redirect_uri": REDIRECT,
        "code_challenge": CHALLENGE, "code_challenge_method": "S256",
        "scope": configuration.lower(), "issuer_state": state}, now=NOW)  # fmt: skip
    uri = pushed["request_uri"]
    offered = issuer.consent("w", uri, tenant_id="acme", now=NOW)
    assert (["a", "b", "c"] if configuration == "Narrow" else []) == offered
    location, granted = issuer.authorization.decide("w", uri, tenant_id="acme", approve=True,
                                                    now=NOW, claims=kept)  # fmt: skip
    assert granted
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = issuer.redeem_code({"grant_type": "authorization_code", "code": code,
                                "code_verifier": VERIFIER, "redirect_uri": REDIRECT,
                                "client_id": "w"}, now=NOW)["access_token"]  # fmt: skip
    proof = key_proof(holder, issuer_url=ISSUER, nonce=issuer.nonce(now=NOW)["c_nonce"], now=NOW)
    answer = issuer.credential(token, {"credential_configuration_id": configuration,
                                       "proofs": {"jwt": [proof]}}, now=NOW)  # fmt: skip
    credential: dict[str, Any] = answer["credentials"][0]["credential"]
    return credential


@pytest.mark.parametrize(("configuration", "kept", "expected"), [
    ("Narrow", ["a"], {"level", "a"}),
    ("Narrow", [], {"level"}),
    ("Narrow", None, {"level", "a", "b", "c"}),
    ("Whole", ["a"], {"level", "a", "b", "c"}),
])  # fmt: skip
def test_the_credential_carries_the_kept_and_mandatory_claims(
    identity_db: Database, holder_signer: Ed25519Signer, configuration: str,
    kept: list[str] | None, expected: set[str],
) -> None:
    issued = _issue(_issuer(identity_db), configuration, kept, holder_signer)
    assert expected == set(issued) - {"type"}


def _disclosed(sd_jwt: str) -> set[str]:
    """The claim names of an SD-JWT's disclosures ([salt, name, value], RFC 9901 §4.2.1)."""
    names = set()
    for part in sd_jwt.split("~")[1:]:
        if part:
            decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            names.add(decoded[1])
    return names


def test_oid4vc_ts_wallet_gets_only_the_claims_the_user_kept(site_server: Server) -> None:
    node = _node()
    server = site_server
    api_key = _tenant_key(server.rt)
    made = server.http.post("/oid4vci/offers", headers=server.headers, json={
        "credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS,
        "grant": "authorization_code", "tenantId": "acme"})
    assert 201 == made.status_code, made.text
    offer = made.json()
    started = server.wallet(node, {"action": "authorize", "offerUrl": offer["offerUrl"],
                                   "clientId": "wallet-9", "redirectUri": REDIRECT})  # fmt: skip
    browser = httpx.Client(base_url=server.local, timeout=30, follow_redirects=False)
    parts = urlsplit(started["authorizationRequestUrl"])
    target = parts.path + "?" + parts.query
    login = browser.get(browser.get(target).headers["location"])
    token = LOGIN_CSRF.search(login.text)
    assert token is not None
    browser.post("/ui/login", data={"api_key": api_key, "login_csrf": token.group(1),
                                    "next": target})  # fmt: skip
    consent = browser.get(target)
    offered = CLAIM_BOX.findall(consent.text)
    attributes = sorted(k for k in KYC_CLAIMS if k != "kyc_level")
    assert attributes == offered  # the level is mandatory: not offered for deselection
    declined = {"family_name", "birthdate"} & set(offered)
    assert 2 == len(declined)
    csrf = CSRF.search(consent.text)
    assert csrf is not None
    fields = {k: v[0] for k, v in parse_qs(parts.query).items()}
    form = {"csrf": csrf.group(1), "client_id": fields["client_id"],
            "request_uri": fields["request_uri"], "decision": "allow", "narrowing": "1",
            **{f"claim:{name}": "on" for name in offered if name not in declined}}  # fmt: skip
    answer = browser.post("/ui/oid4vci/authorize", data=form)
    assert 303 == answer.status_code, answer.text
    done = server.wallet(node, {
        "action": "redeemCode", "offerUrl": offer["offerUrl"],
        "redirectUrl": answer.headers["location"], "pkceCodeVerifier": started["pkceCodeVerifier"],
        "redirectUri": REDIRECT, "privateJwk": started["privateJwk"]})  # fmt: skip
    assert set(offered) - declined == _disclosed(done["credential"])
    payload = done["credential"].split("~")[0].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert KYC_CLAIMS["kyc_level"] == claims["kyc_level"]  # mandatory, in the clear
    assert not declined & set(claims)
    audit = server.rt.audit.recent(action="oid4vci.authorize", limit=1)
    assert sorted(set(offered) - declined) == audit[0].details["claims"]
