"""DPoP (RFC 9449) and refresh tokens (RFC 6749 §6) at the OpenID4VCI token and credential endpoints.

Independent peers: Animo's oid4vc-ts wallet (tests/identity/wallet) makes its
own DPoP proofs (ES256 and EdDSA), follows the server's ``use_dpop_nonce``
challenges at the token endpoint (400) and the credential endpoint (401
``WWW-Authenticate: DPoP``), refreshes its access token with a proof of the
same key and receives a credential with the refreshed token; it also pushes
its authorization request with a DPoP proof (the code is bound to that key).
The bad-proof and refresh-rotation cases use proofs and RFC 7638 thumbprints
made by joserfc, not by simtrust's own JOSE code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

from simtrust.api import create_app
from simtrust.identity import Ed25519Signer, ProtocolError, key_proof
from simtrust.identity._dpop import access_token_hash
from simtrust.runtime import Runtime

from ..conftest import close_runtime, make_runtime
from . import test_oid4vc_interop as interop
from . import test_oid4vci_authcode_http as authcode
from .test_oid4vc_interop import KYC_CLAIMS, Server, _node
from .test_oid4vci_authcode_http import REDIRECT, _browser_authorizes, _tenant_key

#: The real servers of the interop tests (uvicorn on a free port).
server = interop.server
site_server = authcode.site_server

PRE = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _sd_jwt_cnf(credential: str) -> dict[str, Any]:
    payload = credential.split("~", maxsplit=1)[0].split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return dict(claims["cnf"]["jwk"])


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_oid4vc_ts_wallet_uses_dpop_and_a_refreshed_token(server: Server, alg: str) -> None:
    node = _node()
    metadata = server.http.get("/.well-known/oauth-authorization-server").json()
    assert ["ES256", "EdDSA"] == metadata["dpop_signing_alg_values_supported"]
    assert "refresh_token" in metadata["grant_types_supported"]
    made = server.http.post("/oid4vci/offers", headers=server.headers, json={
        "credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS, "tx_code": True})
    assert 201 == made.status_code, made.text
    offer = made.json()
    got = server.wallet(node, {"action": "receiveDpop", "offerUrl": offer["offerUrl"],
                               "txCode": offer["txCode"], "alg": alg})  # fmt: skip
    first, refreshed = got["first"], got["refreshed"]
    assert ("DPoP", "DPoP") == (first["token_type"], refreshed["token_type"])
    assert first["refresh_token"] != refreshed["refresh_token"]  # rotated
    assert first["access_token"] != refreshed["access_token"]
    assert got["tokenNonce"]  # the DPoP-Nonce headers reached it
    assert got["credentialNonce"]
    assert got["publicJwk"] == _sd_jwt_cnf(got["credential"])

    # The first access token was replaced by the refresh.
    token = first["access_token"]
    stale = server.http.post("/oid4vci/credential", json={},
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert 401 == stale.status_code
    # Reusing the first refresh token is refused and revokes the grant (RFC 9700 §4.14.2).
    reuse = server.http.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": "simtrust-test-wallet"})
    assert (400, "invalid_grant") == (reuse.status_code, reuse.json()["error"])
    after = server.http.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"],
        "client_id": "simtrust-test-wallet"})
    assert (400, "invalid_grant") == (after.status_code, after.json()["error"])
    assert "already used" in after.json()["error_description"]


def test_oid4vc_ts_wallet_binds_the_code_to_its_dpop_key_at_par(site_server: Server) -> None:
    node = _node()
    server = site_server
    api_key = _tenant_key(server.rt)
    made = server.http.post("/oid4vci/offers", headers=server.headers, json={
        "credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS,
        "grant": "authorization_code", "tenantId": "acme"})
    assert 201 == made.status_code, made.text
    offer = made.json()
    started = server.wallet(node, {"action": "authorize", "offerUrl": offer["offerUrl"],
                                   "clientId": "wallet-dpop", "redirectUri": REDIRECT,
                                   "dpop": True, "alg": "ES256"})  # fmt: skip
    row = server.rt.db.query_one("SELECT dpop_jkt FROM identity_oid4vci_authz")
    assert row is not None
    expected = ECKey.import_key({**started["privateJwk"], "kty": "EC"}).thumbprint()
    assert expected == row[0]
    browser = httpx.Client(base_url=server.local, timeout=30, follow_redirects=False)
    location = _browser_authorizes(browser, started["authorizationRequestUrl"], api_key)
    done = server.wallet(node, {
        "action": "redeemCode", "offerUrl": offer["offerUrl"], "redirectUrl": location,
        "pkceCodeVerifier": started["pkceCodeVerifier"], "redirectUri": REDIRECT,
        "privateJwk": started["privateJwk"], "alg": "ES256", "dpop": True})  # fmt: skip
    assert "DPoP" == done["tokenType"]
    assert done["credential"].endswith("~")


# -- proofs made by joserfc against an in-process app


class Wallet:
    """A DPoP client made of joserfc: its own key, proofs and thumbprint."""

    def __init__(self, http: TestClient, base: str, key: ECKey | OKPKey | None = None) -> None:
        self.http = http
        self.base = base
        self.key = key or ECKey.generate_key("P-256")
        self.nonce: str | None = None

    @property
    def alg(self) -> str:
        return "ES256" if isinstance(self.key, ECKey) else "EdDSA"

    def proof(self, method: str, path: str, *, token: str | None = None,
              **change: Any) -> str:  # fmt: skip
        claims: dict[str, Any] = {"jti": secrets.token_urlsafe(12), "htm": method,
                                  "htu": self.base + path, "iat": int(time.time())}  # fmt: skip
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        if token is not None:
            claims["ath"] = access_token_hash(token)
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        header.update(change.pop("header", {}))
        claims.update(change)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jws.serialize_compact(header, json.dumps(claims).encode(), self.key,
                                     algorithms=[self.alg])  # fmt: skip

    def token(self, form: dict[str, str], proof: str | None = None) -> httpx.Response:
        headers = {} if proof is None else {"DPoP": proof}
        response: httpx.Response = self.http.post("/oauth2/token", data=form, headers=headers)
        self.nonce = response.headers.get("dpop-nonce", self.nonce)
        return response


@pytest.fixture
def app(store_kind: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    """An in-process API on SQLite and on PostgreSQL."""
    rt = make_runtime(store_kind, tmp_path / "home")
    try:
        yield TestClient(create_app(rt)), rt
    finally:
        close_runtime(rt)


def _offer(http: TestClient, rt: Runtime) -> str:
    key = rt.tenants.create_key("operator-admin", "dpop test")
    made = http.post("/oid4vci/offers", headers={"Authorization": f"Bearer {key.secret}"},
                     json={"credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS})
    assert 201 == made.status_code, made.text
    return str(made.json()["credentialOffer"]["grants"][PRE]["pre-authorized_code"])


def _bound(http: TestClient, rt: Runtime) -> tuple[Wallet, dict[str, Any]]:
    wallet = Wallet(http, rt.settings.public_url)
    form = {"grant_type": PRE, "pre-authorized_code": _offer(http, rt), "client_id": "w"}
    challenge = wallet.token(form, wallet.proof("POST", "/oauth2/token"))
    assert (400, "use_dpop_nonce") == (challenge.status_code, challenge.json()["error"])
    granted = wallet.token(form, wallet.proof("POST", "/oauth2/token"))
    assert 200 == granted.status_code, granted.text
    body: dict[str, Any] = granted.json()
    assert "DPoP" == body["token_type"]
    digest = hashlib.sha256(body["access_token"].encode()).hexdigest()
    row = rt.db.query_one("SELECT token_jkt FROM identity_oid4vci_offer WHERE token_hash = ?",
                          (digest,))  # fmt: skip
    assert row is not None
    assert wallet.key.thumbprint() == row[0]  # RFC 7638, by joserfc
    return wallet, body


def _credential(wallet: Wallet, rt: Runtime, token: str, proof: str | None,
                scheme: str = "DPoP") -> httpx.Response:  # fmt: skip
    nonce = wallet.http.post("/oid4vci/nonce").json()["c_nonce"]
    signer = Ed25519Signer.generate()
    body = {"credential_configuration_id": "SimtrustKyc", "proofs": {"jwt": [key_proof(
        signer, issuer_url=rt.settings.public_url, nonce=nonce, now=rt.identity.now())]}}
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    answer: httpx.Response = wallet.http.post("/oid4vci/credential", json=body, headers=headers)
    return answer


def _stranger(wallet: Wallet) -> Wallet:
    """Another key, with the server's current nonce."""
    other = Wallet(wallet.http, wallet.base)
    other.nonce = wallet.nonce
    return other


def test_a_dpop_bound_token_needs_a_proof_of_its_key(app: tuple[TestClient, Runtime]) -> None:
    http, rt = app
    wallet, body = _bound(http, rt)
    token = body["access_token"]
    path = "/oid4vci/credential"
    refusals = {
        "bearer scheme": (None, "Bearer", "invalid_token"),
        "no proof": (None, "DPoP", "invalid_dpop_proof"),
        "no ath": (wallet.proof("POST", path), "DPoP", "invalid_dpop_proof"),
        "wrong ath": (wallet.proof("POST", path, token="other"), "DPoP", "invalid_dpop_proof"),
        "wrong htm": (wallet.proof("GET", path, token=token), "DPoP", "invalid_dpop_proof"),
        "wrong htu": (wallet.proof("POST", "/oid4vci/nonce", token=token), "DPoP",
                      "invalid_dpop_proof"),
        "stale nonce": (wallet.proof("POST", path, token=token, nonce="x"), "DPoP",
                        "use_dpop_nonce"),
        "old iat": (wallet.proof("POST", path, token=token, iat=int(time.time()) - 3600),
                    "DPoP", "invalid_dpop_proof"),
        "other key": (_stranger(wallet).proof("POST", path, token=token), "DPoP",
                      "invalid_dpop_proof"),
        "typ": (wallet.proof("POST", path, token=token, header={"typ": "JWT"}), "DPoP",
                "invalid_dpop_proof"),
        "private key": (wallet.proof("POST", path, token=token,
                                     header={"jwk": wallet.key.as_dict(private=True)}),
                        "DPoP", "invalid_dpop_proof"),
    }  # fmt: skip
    for name, (proof, scheme, error) in refusals.items():
        answer = _credential(wallet, rt, token, proof, scheme)
        assert 401 == answer.status_code, (name, answer.text)
        assert error == answer.json()["error"], name
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("DPoP" if error != "invalid_token" else "Bearer"), name
        assert answer.headers["dpop-nonce"]
    good = wallet.proof("POST", path, token=token)
    issued = _credential(wallet, rt, token, good)
    assert 200 == issued.status_code, issued.text
    # The same proof again is a replay (jti), whatever else it carries.
    replay = _credential(wallet, rt, token, good)
    assert (401, "invalid_dpop_proof") == (replay.status_code, replay.json()["error"])
    assert "already used" in replay.json()["error_description"]


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_an_eddsa_proof_from_joserfc_binds_too(app: tuple[TestClient, Runtime]) -> None:
    http, rt = app
    wallet = Wallet(http, rt.settings.public_url, OKPKey.generate_key("Ed25519"))
    form = {"grant_type": PRE, "pre-authorized_code": _offer(http, rt)}
    wallet.token(form, wallet.proof("POST", "/oauth2/token"))
    granted = wallet.token(form, wallet.proof("POST", "/oauth2/token"))
    assert ("DPoP", 200) == (granted.json()["token_type"], granted.status_code)
    token = granted.json()["access_token"]
    issued = _credential(wallet, rt, token, wallet.proof("POST", "/oid4vci/credential",
                                                         token=token))  # fmt: skip
    assert 200 == issued.status_code, issued.text


def test_refresh_rotates_and_stays_bound_to_the_key(app: tuple[TestClient, Runtime]) -> None:
    http, rt = app
    wallet, body = _bound(http, rt)
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
            "client_id": "w"}  # fmt: skip
    # Without a proof, or with another key's: refused (RFC 9449 §5), and the token is spent.
    unproven = wallet.token(form)
    assert (400, "invalid_dpop_proof") == (unproven.status_code, unproven.json()["error"])
    wallet2, body2 = _bound(http, rt)
    form2 = {**form, "refresh_token": body2["refresh_token"]}
    other = Wallet(http, wallet.base)
    other.nonce = wallet2.nonce
    stolen = other.token(form2, other.proof("POST", "/oauth2/token"))
    assert (400, "invalid_dpop_proof") == (stolen.status_code, stolen.json()["error"])
    # A fresh grant: rotation, and the old access token ends.
    wallet3, body3 = _bound(http, rt)
    form3 = {**form, "refresh_token": body3["refresh_token"]}
    wrong_client = wallet3.token({**form3, "client_id": "x"},
                                 wallet3.proof("POST", "/oauth2/token"))  # fmt: skip
    assert (400, "invalid_grant") == (wrong_client.status_code, wrong_client.json()["error"])
    wallet4, body4 = _bound(http, rt)
    form4 = {**form, "refresh_token": body4["refresh_token"]}
    fresh = wallet4.token(form4, wallet4.proof("POST", "/oauth2/token"))
    assert 200 == fresh.status_code, fresh.text
    new = fresh.json()
    assert ("DPoP", 600) == (new["token_type"], new["expires_in"])
    assert new["refresh_token"] != body4["refresh_token"]
    old = _credential(wallet4, rt, body4["access_token"], wallet4.proof(
        "POST", "/oid4vci/credential", token=body4["access_token"]))
    assert (401, "invalid_token") == (old.status_code, old.json()["error"])
    issued = _credential(wallet4, rt, new["access_token"], wallet4.proof(
        "POST", "/oid4vci/credential", token=new["access_token"]))
    assert 200 == issued.status_code, issued.text
    # Reuse of the rotated-out refresh token revokes the grant's live refresh token.
    reused = wallet4.token(form4, wallet4.proof("POST", "/oauth2/token"))
    assert (400, "invalid_grant") == (reused.status_code, reused.json()["error"])
    dead = wallet4.token({**form, "refresh_token": new["refresh_token"]},
                         wallet4.proof("POST", "/oauth2/token"))  # fmt: skip
    assert (400, "invalid_grant") == (dead.status_code, dead.json()["error"])


def test_bearer_tokens_get_refresh_tokens_too(app: tuple[TestClient, Runtime]) -> None:
    http, rt = app
    form = {"grant_type": PRE, "pre-authorized_code": _offer(http, rt)}
    granted = http.post("/oauth2/token", data=form)
    assert ("Bearer", 200) == (granted.json()["token_type"], granted.status_code)
    refreshed = http.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": granted.json()["refresh_token"]})
    assert ("Bearer", 200) == (refreshed.json()["token_type"], refreshed.status_code)
    wallet = Wallet(http, rt.settings.public_url)
    token = refreshed.json()["access_token"]
    # An unbound token is never accepted under the DPoP scheme.
    answer = _credential(wallet, rt, token, wallet.proof("POST", "/oid4vci/credential",
                                                         token=token), "DPoP")  # fmt: skip
    assert (401, "invalid_token") == (answer.status_code, answer.json()["error"])
    assert 200 == _credential(wallet, rt, token, None, "Bearer").status_code


def test_refresh_tokens_survive_a_restart(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path / "home")
    http = TestClient(create_app(rt))
    granted = http.post("/oauth2/token", data={"grant_type": PRE,
                                                "pre-authorized_code": _offer(http, rt)})
    refresh = granted.json()["refresh_token"]
    rt.close()
    again = Runtime.open(rt.settings)
    try:
        answer = TestClient(create_app(again)).post(
            "/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
        assert 200 == answer.status_code, answer.text
    finally:
        again.close()


def test_par_binds_the_code_to_a_dpop_key(app: tuple[TestClient, Runtime]) -> None:
    http, rt = app
    wallet = Wallet(http, rt.settings.public_url)
    form = {"response_type": "code", "client_id": "w", "redirect_uri": REDIRECT,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", "scope": "SimtrustKyc"}  # fmt: skip
    other = Wallet(http, wallet.base).key.thumbprint()
    mismatch = http.post("/oauth2/par", data={**form, "dpop_jkt": other},
                         headers={"DPoP": wallet.proof("POST", "/oauth2/par")})  # fmt: skip
    assert (400, "invalid_dpop_proof") == (mismatch.status_code, mismatch.json()["error"])
    pushed = http.post("/oauth2/par", data=form,
                       headers={"DPoP": wallet.proof("POST", "/oauth2/par")})  # fmt: skip
    assert 201 == pushed.status_code, pushed.text
    row = rt.db.query_one("SELECT dpop_jkt FROM identity_oid4vci_authz")
    assert row is not None
    assert wallet.key.thumbprint() == row[0]


@pytest.fixture(scope="module")
def fuzz_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime.ephemeral(tmp_path_factory.mktemp("fuzz") / "home")
    yield rt
    rt.close()


def _segments(raw: bytes) -> str:
    part = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{part}.{part}.{part}"


@settings(max_examples=300, deadline=None)
@given(proof=st.one_of(st.text(max_size=400), st.binary(max_size=300).map(_segments)))
def test_fuzz_dpop_proofs_fail_only_as_protocol_errors(proof: str, fuzz_rt: Runtime) -> None:
    with pytest.raises(ProtocolError):
        fuzz_rt.identity.oid4vci_tokens.dpop.check(proof, method="POST", url="https://x/t",
                                                   now=fuzz_rt.identity.now())  # fmt: skip
