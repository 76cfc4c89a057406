"""The wallet attestation challenge (draft-ietf-oauth-attestation-based-client-auth §8)
and the start-up check of the wallet providers file.

With ``SIMTRUST_WALLET_ATTESTATION_CHALLENGE`` on, the attestation PoP must carry
a ``challenge`` the server handed out: from ``POST /oauth2/challenge`` (advertised
as ``challenge_endpoint``) or the OpenID4VCI nonce endpoint's ``c_nonce``, each
spent once. A missing, unknown or spent challenge is 400
``use_attestation_challenge`` with a fresh one in ``OAuth-Client-Attestation-Challenge``.
A providers file that is missing, not JSON, or names a key that is not a public
P-256/Ed25519 JWK stops ``simtrust`` at start: one line, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from simtrust.config import load_settings
from simtrust.errors import ConfigError

from .test_oid4vc_interop import Server
from .test_wallet_attestation import FORM, _attestation
from .test_wallet_attestation import attested as attested  # noqa: PLC0414 - the fixture

CHALLENGE_HEADER = "OAuth-Client-Attestation-Challenge"


@pytest.fixture
def challenged(attested: tuple[Server, ECKey]) -> tuple[Server, ECKey]:
    server, provider = attested
    server.rt.settings = replace(server.rt.settings, wallet_attestation_challenge=True)
    return server, provider


def _pop(wallet: ECKey, audience: str, jti: str, challenge: str | None) -> str:
    payload: dict[str, Any] = {"iss": "wallet-att", "aud": audience, "iat": int(time.time()),
                               "jti": jti}
    if challenge is not None:
        payload["challenge"] = challenge
    return jws.serialize_compact({"alg": "ES256", "typ": "oauth-client-attestation-pop+jwt"},
                                 json.dumps(payload).encode(), wallet)


def test_the_pop_must_carry_a_challenge_of_this_server(
        challenged: tuple[Server, ECKey]) -> None:
    server, provider = challenged
    base = server.rt.settings.public_url
    metadata = server.http.get("/.well-known/oauth-authorization-server").json()
    assert f"{base}/oauth2/challenge" == metadata["challenge_endpoint"]
    wallet = ECKey.generate_key("P-256")
    attestation = _attestation(provider, wallet, "wallet-att")

    def par(jti: str, challenge: str | None) -> Any:
        return server.http.post("/oauth2/par", data=FORM, headers={
            "OAuth-Client-Attestation": attestation,
            "OAuth-Client-Attestation-PoP": _pop(wallet, base, jti, challenge)})

    for jti, challenge in (("a", None), ("b", "never-handed-out")):
        refused = par(jti, challenge)
        assert (400, "use_attestation_challenge") == (refused.status_code,
                                                      refused.json()["error"]), jti
        assert refused.headers[CHALLENGE_HEADER]
    got = server.http.post("/oauth2/challenge")
    assert 200 == got.status_code
    challenge = got.json()["attestation_challenge"]
    assert 201 == par("c", challenge).status_code
    spent = par("d", challenge)  # a challenge is single use
    assert (400, "use_attestation_challenge") == (spent.status_code, spent.json()["error"])
    # the fresh challenge of a refusal, and the issuer's c_nonce, serve as well
    assert 201 == par("e", spent.headers[CHALLENGE_HEADER]).status_code
    c_nonce = server.http.post("/oid4vci/nonce").json()["c_nonce"]
    assert 201 == par("f", c_nonce).status_code


def _bad_files(tmp_path: Path) -> dict[str, str]:
    good = ECKey.generate_key("P-256")
    private = good.as_dict(private=True)
    files = {
        "missing": None,
        "not json": "{not json",
        "not a map": "[]",
        "rsa key": json.dumps({"https://p.example": {"kty": "RSA", "n": "x", "e": "AQAB"}}),
        "no y": json.dumps({"https://p.example": {"kty": "EC", "crv": "P-256", "x": "x"}}),
        "private key": json.dumps({"https://p.example": private}),
    }
    paths = {}
    for name, text in files.items():
        path = tmp_path / f"{name.replace(' ', '-')}.json"
        if text is not None:
            path.write_text(text)
        paths[name] = str(path)
    return paths


def test_a_bad_providers_file_is_refused_at_load(tmp_path: Path) -> None:
    public = ECKey.generate_key("P-256").as_dict(private=False)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"https://p.example": public}))
    env = {"SIMTRUST_HOME": str(tmp_path / "home")}
    loaded = load_settings(env={**env, "SIMTRUST_WALLET_PROVIDERS": str(ok)})
    assert str(ok.resolve()) == loaded.wallet_providers
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(ConfigError, match="wallet_providers") as info:
            load_settings(env={**env, "SIMTRUST_WALLET_PROVIDERS": path})
        assert "\n" not in info.value.detail, name
        assert "private=" not in info.value.detail


def test_simtrust_stops_at_start_on_a_bad_providers_file(tmp_path: Path) -> None:
    path = _bad_files(tmp_path)["private key"]
    env = {**os.environ, "SIMTRUST_HOME": str(tmp_path / "home"),
           "SIMTRUST_WALLET_PROVIDERS": path}
    done = subprocess.run([sys.executable, "-m", "simtrust", "serve"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert 2 == done.returncode
    lines = done.stderr.strip().splitlines()
    assert 1 == len(lines), done.stderr
    assert "wallet_providers" in lines[0]
    assert "private key" in lines[0]
