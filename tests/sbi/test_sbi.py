"""Nudm_UEAuthentication over HTTP/2: h2c and TLS (ALPN h2, mutual TLS), tokens, the OpenAPI.

httpx (``http2=True``) and curl (``--http2-prior-knowledge``) are the clients;
answers are validated against the official TS 29.503 OpenAPI and the vectors
against the tests' own MILENAGE and key derivations.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey
from referencing import Registry

from simtrust.errors import ConfigError
from simtrust.runtime import Runtime
from simtrust.sbi import SbiServer, create_sbi_app
from simtrust.subscriber import SubscriberServices

from ..diameter.reference import check_5g_he_av
from ..subscriber.conftest import imsi
from ..subscriber.test_nudm import check, registry  # noqa: F401 - the fixture is used by name
from .conftest import NRF_ID, UDM_ID, Udm, make_cert

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
AUSF = "6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"
UEAU = "TS29503_Nudm_UEAU.yaml"
COMMON = "TS29571_CommonData.yaml"


def h2(base: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base, http1=False, http2=True, timeout=15, **kwargs)


def supi(n: int = 1) -> str:
    return imsi(n).supi


def auth_event(**extra: Any) -> dict[str, Any]:
    return {"nfInstanceId": AUSF, "success": True, "authType": "5G_AKA",
            "servingNetworkName": SNN,
            "timeStamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), **extra}


def test_generate_auth_data_over_h2c(udm: Udm, registry: Registry) -> None:  # noqa: F811
    with h2(udm.base) as client:
        r = client.post(f"/nudm-ueau/v1/{supi()}/security-information/generate-auth-data",
                        json={"servingNetworkName": SNN, "ausfInstanceId": AUSF})
    assert "HTTP/2" == r.http_version
    assert 200 == r.status_code
    body = r.json()
    check(registry, UEAU, "AuthenticationInfoResult", body)
    av = body["authenticationVector"]
    check_5g_he_av(bytes.fromhex(av["rand"]), bytes.fromhex(av["xresStar"]),
                   bytes.fromhex(av["autn"]), bytes.fromhex(av["kausf"]), SNN)


def test_auth_events_confirm_and_remove(udm: Udm, registry: Registry) -> None:  # noqa: F811
    with h2(udm.base) as client:
        created = client.post(f"/nudm-ueau/v1/{supi()}/auth-events", json=auth_event())
        assert 201 == created.status_code
        check(registry, UEAU, "AuthEvent", created.json())
        location = created.headers["location"]
        assert location.startswith(f"{udm.base}/nudm-ueau/v1/{supi()}/auth-events/")
        assert 1 == len(udm.subs.udm.auth_events(supi()))
        path = httpx.URL(location).path
        removed = client.put(path, json=auth_event(authRemovalInd=True))
        assert 204 == removed.status_code
        assert [] == udm.subs.udm.auth_events(supi())
        again = client.put(path, json=auth_event(authRemovalInd=True))
        assert 404 == again.status_code
        assert "DATA_NOT_FOUND" == again.json()["cause"]
    actions = [e.action for e in udm.rt.audit.iter_all()]
    assert ["udm.auth-event", "udm.auth-event-removed"] == [
        a for a in actions if a.startswith("udm.")]


@pytest.mark.parametrize(("path", "body", "status", "cause"), [
    ("/nudm-ueau/v1/imsi-001019999999999/security-information/generate-auth-data",
     {"servingNetworkName": SNN, "ausfInstanceId": AUSF}, 404, "USER_NOT_FOUND"),
    ("/nudm-ueau/v1/not-a-supi/security-information/generate-auth-data",
     {"servingNetworkName": SNN, "ausfInstanceId": AUSF}, 400, "MANDATORY_IE_INCORRECT"),
    ("/nudm-ueau/v1/suci-0-001-01-0000-9-9-00/security-information/generate-auth-data",
     {"servingNetworkName": SNN, "ausfInstanceId": AUSF}, 501, "UNSUPPORTED_PROTECTION_SCHEME"),
    ("/nudm-ueau/v1/{supi}/security-information/generate-auth-data",
     {"servingNetworkName": "4G:nowhere", "ausfInstanceId": AUSF}, 400,
     "MANDATORY_IE_INCORRECT"),
    ("/nudm-ueau/v1/{supi}/security-information/generate-auth-data",
     {"ausfInstanceId": AUSF}, 400, "MANDATORY_IE_MISSING"),
    ("/nudm-ueau/v1/{supi}/auth-events", {"success": True}, 400, "MANDATORY_IE_MISSING"),
    ("/nudm-ueau/v1/imsi-001019999999999/auth-events", auth_event(), 404, "USER_NOT_FOUND"),
])
def test_problem_details_follow_ts29503(
    udm: Udm, registry: Registry, path: str, body: dict[str, Any], status: int,  # noqa: F811
    cause: str,
) -> None:
    with h2(udm.base) as client:
        r = client.post(path.format(supi=supi()), json=body)
    assert status == r.status_code
    assert "application/problem+json" == r.headers["content-type"]
    check(registry, COMMON, "ProblemDetails", r.json())
    assert cause == r.json()["cause"]


def test_bad_media_type_and_json(udm: Udm) -> None:
    url = f"/nudm-ueau/v1/{supi()}/security-information/generate-auth-data"
    with h2(udm.base) as client:
        r = client.post(url, content=b"x", headers={"content-type": "text/plain"})
        assert 415 == r.status_code
        r = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
        assert 400 == r.status_code
        assert "INVALID_MSG_FORMAT" == r.json()["cause"]


def test_body_over_the_limit_is_413(subs: SubscriberServices) -> None:
    server = SbiServer(create_sbi_app(subs.udm, None, max_body_bytes=1_000), "127.0.0.1", 0,
                       lab_mode=True)
    _, port = server.start()
    try:
        with h2(f"http://127.0.0.1:{port}") as client:
            r = client.post(f"/nudm-ueau/v1/{supi()}/auth-events", content=b" " * 2_000,
                            headers={"content-type": "application/json"})
        assert 413 == r.status_code
        assert "MSG_TOO_LARGE" == r.json()["cause"]
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_prior_knowledge(udm: Udm) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-o", "-", "-w", "\n%{http_version}",
         "-H", "content-type: application/json",
         "-d", json.dumps({"servingNetworkName": SNN, "ausfInstanceId": AUSF}),
         f"{udm.base}/nudm-ueau/v1/{supi()}/security-information/generate-auth-data"],
        check=True, capture_output=True, text=True, timeout=60).stdout
    body, version = out.rsplit("\n", 1)
    assert "2" == version
    assert "5G_AKA" == json.loads(body)["authType"]


def _token(key: ec.EllipticCurvePrivateKey, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": NRF_ID, "sub": AUSF, "aud": "UDM", "scope": "nudm-ueau",
               "exp": now + 60, "iat": now, **claims}
    jwk = ECKey.import_key(key)
    return jwt.encode({"alg": "ES256"}, payload, jwk)


@pytest.mark.parametrize(("claims", "status"), [
    ({}, 200),
    ({"aud": [UDM_ID]}, 200),
    ({"exp": int(time.time()) - 5}, 401),
    ({"aud": "AMF"}, 401),
    ({"iss": "someone-else"}, 401),
    ({"scope": "nudm-sdm"}, 403),
])
def test_oauth2_tokens(secured: Udm, nrf_key: ec.EllipticCurvePrivateKey,
                       claims: dict[str, Any], status: int) -> None:
    url = f"/nudm-ueau/v1/{supi()}/security-information/generate-auth-data"
    with h2(secured.base) as client:
        r = client.post(url, json={"servingNetworkName": SNN, "ausfInstanceId": AUSF},
                        headers={"Authorization": f"Bearer {_token(nrf_key, **claims)}"})
    assert status == r.status_code
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_missing_or_forged_token_is_401(secured: Udm) -> None:
    url = f"/nudm-ueau/v1/{supi()}/security-information/generate-auth-data"
    forged = _token(ec.generate_private_key(ec.SECP256R1()))
    with h2(secured.base) as client:
        body = {"servingNetworkName": SNN, "ausfInstanceId": AUSF}
        assert 401 == client.post(url, json=body).status_code
        assert 401 == client.post(url, json=body,
                                  headers={"Authorization": f"Bearer {forged}"}).status_code


def test_lab_mode_refuses_a_public_bind(subs: SubscriberServices) -> None:

    with pytest.raises(ConfigError):
        SbiServer(create_sbi_app(subs.udm, None), "0.0.0.0", 0, lab_mode=True)


def test_tls_alpn_h2_and_mutual_tls(sqlite_runtime: Runtime, subs: SubscriberServices,
                                    tmp_path: Path) -> None:
    ca = make_cert(tmp_path, "ca", ca=True)
    make_cert(tmp_path, "udm", ca)
    make_cert(tmp_path, "ausf", ca)
    server = SbiServer(create_sbi_app(subs.udm, None), "127.0.0.1", 0, lab_mode=True,
                       cert=tmp_path / "udm.crt", key=tmp_path / "udm.key",
                       client_ca=tmp_path / "ca.crt")
    _, port = server.start()
    url = (f"https://127.0.0.1:{port}/nudm-ueau/v1/{supi()}/security-information/"
           "generate-auth-data")
    body = {"servingNetworkName": SNN, "ausfInstanceId": AUSF}
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        ctx.load_cert_chain(tmp_path / "ausf.crt", tmp_path / "ausf.key")
        with httpx.Client(http2=True, verify=ctx, timeout=15) as client:
            r = client.post(url, json=body)
        assert "HTTP/2" == r.http_version
        assert 200 == r.status_code
        anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        with (pytest.raises(httpx.HTTPError),
              httpx.Client(http2=True, verify=anonymous, timeout=15) as client):
            client.post(url, json=body)
    finally:
        server.stop()
    assert uuid.UUID(AUSF)


def test_unknown_paths_and_methods_are_problems_and_keep_the_connection(udm: Udm) -> None:
    body = {"servingNetworkName": SNN, "ausfInstanceId": AUSF}
    with h2(udm.base) as client:
        r = client.post("/nudm-ueau/v1/nowhere", json=body)
        assert 404 == r.status_code
        assert "RESOURCE_URI_STRUCTURE_NOT_FOUND" == r.json()["cause"]
        r = client.put(f"/nudm-ueau/v1/{supi()}/security-information/generate-auth-data",
                       json=body)
        assert 405 == r.status_code
        assert "POST" == r.headers["allow"]
        # The same HTTP/2 connection still serves.
        r = client.post(f"/nudm-ueau/v1/{supi()}/security-information/generate-auth-data",
                        json=body)
        assert 200 == r.status_code
