"""EST details in process: csrattrs (read by openssl), serverkeygen, method/path errors, fuzzing."""

from __future__ import annotations

import base64
import email
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.bootstrap import EstRequest, parse_certs_only

from .conftest import EST_LABEL, LABEL, Env

PREFIX = "/.well-known/est"


def test_csrattrs_is_der_openssl_reads(env: Env, tmp_path: Path) -> None:
    answer = env.boot.server.handle(EstRequest("GET", f"{PREFIX}/{LABEL}/csrattrs", {}))
    assert 200 == answer.status
    assert ("Content-Type", "application/csrattrs") in answer.headers
    der = base64.b64decode(answer.body)
    if shutil.which("openssl") is None:
        if os.environ.get("SIMTRUST_REQUIRE_SERVICES", "") not in ("", "0"):
            pytest.fail("openssl is needed and SIMTRUST_REQUIRE_SERVICES is set")
        pytest.skip("openssl is needed")
    (tmp_path / "attrs.der").write_bytes(der)
    out = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in",
                          str(tmp_path / "attrs.der")], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    for name in ("challengePassword", "id-ecPublicKey", "prime256v1", "ED25519",
                 "ecdsa-with-SHA256", "Extension Request"):
        assert name in out, out


def test_serverkeygen_returns_key_and_certificate(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        response = client._digest_post(f"{PREFIX}/{LABEL}/serverkeygen", "gba", b"",
                                       {"Content-Type": "application/pkcs10"})
    assert 200 == response.status_code, response.text
    message = email.message_from_bytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n"
        + response.content)
    parts = {p.get_content_type(): p.get_payload(decode=True) for p in message.walk()
             if not p.is_multipart()}
    key = serialization.load_der_private_key(parts["application/pkcs8"], None)
    cert = parse_certs_only(base64.b64encode(parts["application/pkcs7-mime"]))[0]
    assert key.public_key() == cert.public_key()


def test_methods_paths_and_sizes(env: Env) -> None:
    handle = env.boot.server.handle
    assert 404 == handle(EstRequest("GET", f"{PREFIX}/cacerts", {})).status
    assert 404 == handle(EstRequest("GET", f"{PREFIX}/{LABEL}/fullcmc", {})).status
    assert 404 == handle(EstRequest("GET", f"{PREFIX}/a/b/cacerts", {})).status
    assert 404 == handle(EstRequest("GET", f"{PREFIX}/operator-tier1/cacerts", {})).status
    assert 405 == handle(EstRequest("GET", f"{PREFIX}/{LABEL}/simpleenroll", {})).status
    unauth = handle(EstRequest("POST", f"{PREFIX}/{LABEL}/simpleenroll", {}, b"x"))
    assert 401 == unauth.status
    assert any(h == "WWW-Authenticate" and v.startswith("Digest ") for h, v in unauth.headers)
    big = handle(EstRequest("POST", f"{PREFIX}/{LABEL}/simpleenroll", {}, b"x" * 20_000))
    assert 413 == big.status
    ca = parse_certs_only(handle(EstRequest("GET", f"{PREFIX}/{EST_LABEL}/cacerts", {})).body)[0]
    assert env.boot.cas.get(EST_LABEL).certificate == ca
    assert isinstance(ca, x509.Certificate)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT"]),
       op=st.sampled_from(["cacerts", "simpleenroll", "simplereenroll", "csrattrs",
                           "serverkeygen", "x"]),
       authorization=st.one_of(st.none(), st.text(max_size=200),
                               st.builds(lambda s: "Digest " + s, st.text(max_size=200))),
       ctype=st.sampled_from(["application/pkcs10", "text/plain", ""]),
       body=st.binary(max_size=400))
def test_est_handler_never_crashes_nor_issues(env: Env, method: str, op: str,
                                              authorization: str | None, ctype: str,
                                              body: bytes) -> None:
    headers = {"content-type": ctype}
    if authorization is not None:
        headers["authorization"] = authorization
    answer = env.boot.server.handle(EstRequest(method, f"{PREFIX}/{LABEL}/{op}", headers, body))
    assert answer.status in (200, 400, 401, 403, 404, 405, 413)
    if op not in ("cacerts", "csrattrs"):
        assert 200 != answer.status
    assert [] == env.boot.cas.certificates()
