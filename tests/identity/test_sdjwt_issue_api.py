"""``POST /credentials/sd-jwt`` and ``simtrust vc issue-sd-jwt``: SD-JWT VC issuance outside
OpenID4VCI (IETF SD-JWT VC §3), bound to the holder's key, revocable, with bad input refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.identity import (
    EcdsaP256Signer,
    VerificationFailed,
    present_sd_jwt,
    signer_jwk,
    verify_sd_jwt,
)
from simtrust.runtime import Runtime

from .test_cli import simtrust

HOLDER = EcdsaP256Signer.generate()
REQUEST = {"vct": "https://credentials.example/employee", "claims": {
    "sub": "did:example:ada", "given_name": "Ada", "role": "engineer"},
    "disclosable": ["given_name", "role"], "holderJwk": signer_jwk(HOLDER)}  # fmt: skip


def test_issue_present_verify_revoke(api: Any, operator_headers: dict[str, str],
                                     sqlite_runtime: Runtime) -> None:  # fmt: skip
    response = api.post("/credentials/sd-jwt", json=REQUEST, headers=operator_headers)
    assert 201 == response.status_code, response.text
    body = response.json()
    assert ("dc+sd-jwt", True) == (body["format"], body["credential"].endswith("~"))
    service = sqlite_runtime.identity
    now = service.now()
    shown = present_sd_jwt(body["credential"], disclose=["role"], holder=HOLDER, nonce="n",
                           audience="did:web:rp.example", now=now)  # fmt: skip
    result = verify_sd_jwt(shown, resolver=service.resolver, now=now, nonce="n",
                           audience="did:web:rp.example", status=service.status_checker)  # fmt: skip
    assert ("engineer", None) == (result.claims["role"], result.claims.get("given_name"))
    service.set_status(body["credentialStatus"], True)
    with pytest.raises(VerificationFailed, match="revoked"):
        verify_sd_jwt(shown, resolver=service.resolver, now=now, nonce="n",
                      audience="did:web:rp.example", status=service.status_checker)  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"vct": "has space"},
        {"vct": ""},
        {"claims": {}},
        {"claims": {"iss": "did:example:me", "given_name": "Ada"}, "disclosable": []},
        {"claims": {"cnf": {}, "x": 1}, "disclosable": []},
        {"disclosable": ["missing"]},
        {"disclosable": ["sub"]},
        {"holderJwk": {"kty": "RSA", "n": "x", "e": "AQAB"}},
        {"holderJwk": {**signer_jwk(HOLDER), "d": "c2VjcmV0"}},
        {"claims": {**REQUEST["claims"], "credentialStatus": {}}},
    ],
)
def test_bad_input_is_a_problem_and_issues_nothing(
    api: Any, operator_headers: dict[str, str], change: dict[str, Any]
) -> None:
    response = api.post("/credentials/sd-jwt", json={**REQUEST, **change},
                        headers=operator_headers)  # fmt: skip
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_tenant_keys_cannot_issue(api: Any, sqlite_runtime: Runtime) -> None:
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    key = sqlite_runtime.tenants.create_key("tenant-admin", "t", tenant_id="acme").secret
    response = api.post("/credentials/sd-jwt", json=REQUEST,
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert 403 == response.status_code


def test_cli_issue_sd_jwt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert 0 == simtrust("init", home=home).returncode
    claims, jwk = tmp_path / "claims.json", tmp_path / "holder.jwk"
    claims.write_text(json.dumps(REQUEST["claims"]))
    jwk.write_text(json.dumps(REQUEST["holderJwk"]))
    done = simtrust("vc", "issue-sd-jwt", str(claims), "--vct", REQUEST["vct"], "--holder-jwk",
                    str(jwk), "--disclose", "given_name", "--disclose", "role", home=home)  # fmt: skip
    assert 0 == done.returncode, done.stderr
    assert json.loads(done.stdout)["credential"].count("~") == 3
    bad = simtrust("vc", "issue-sd-jwt", str(claims), "--vct", "a b", "--holder-jwk", str(jwk),
                   home=home)  # fmt: skip
    assert (2, 1) == (bad.returncode, len(bad.stderr.strip().splitlines()))
