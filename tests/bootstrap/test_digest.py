"""HTTP Digest: published RFC vectors, httpx's client as an independent peer, parser fuzzing."""

from __future__ import annotations

import contextlib
import hashlib

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.bootstrap import digest_response, format_challenge, format_credentials, parse_digest
from simtrust.errors import DecodeError


def test_rfc2617_md5_example() -> None:
    """RFC 2617 §3.5."""
    assert "6629fae49393a05397450978507c4ef1" == digest_response(
        algorithm="MD5", username="Mufasa", realm="testrealm@host.com",
        password=b"Circle Of Life", method="GET", uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", nc="00000001", cnonce="0a4f113b", qop="auth")


def test_rfc7616_sha256_example() -> None:
    """RFC 7616 §3.9.1."""
    assert "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1" == digest_response(
        algorithm="SHA-256", username="Mufasa", realm="http-auth@example.org",
        password=b"Circle of Life", method="GET", uri="/dir/index.html",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop="auth")


def test_auth_int_and_akav1_password_is_binary_res() -> None:
    res = bytes.fromhex("a54211d5e3ba50bf")
    body = b"<xml/>"
    def h(b: bytes) -> bytes:
        return hashlib.md5(b).hexdigest().encode()

    a1 = b"user@realm:bsf.example:" + res
    a2 = b"GET:/bsf:" + h(body)
    expected = h(h(a1) + b":n:00000001:c:auth-int:" + h(a2)).decode()
    assert expected == digest_response(
        algorithm="AKAv1-MD5", username="user@realm", realm="bsf.example", password=res,
        method="GET", uri="/bsf", nonce="n", nc="00000001", cnonce="c", qop="auth-int",
        body=body)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_httpx_client_agrees(algorithm: str) -> None:
    """httpx's DigestAuth answers our challenge with the response we compute."""
    challenge = format_challenge("3GPP-bootstrapping@naf.example", "bm9uY2U=",
                                 algorithm=algorithm, qop="auth")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if "authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    password = "c2VjcmV0LWtzLW5hZg=="
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        client.post("https://naf.example/.well-known/est/x/simpleenroll",
                    auth=httpx.DigestAuth("btid@bsf", password))
    params = parse_digest(seen[0])
    assert params["response"] == digest_response(
        algorithm=algorithm, username="btid@bsf", realm=params["realm"],
        password=password.encode(), method="POST", uri=params["uri"], nonce=params["nonce"],
        nc=params["nc"], cnonce=params["cnonce"], qop=params["qop"])


def test_parser_round_trip_and_errors() -> None:
    header = format_credentials({"username": 'a"b\\c', "realm": "r", "nc": "00000001",
                                 "qop": "auth"})
    assert {"username": 'a"b\\c', "realm": "r", "nc": "00000001", "qop": "auth"} == \
        parse_digest(header)
    for bad in ("Basic abc", "Digest", 'Digest a="1", a="2"', 'Digest a="1" b="2"',
                'Digest a="unterminated', "Digest " + "a=b," * 2000, "Digest =x"):
        with pytest.raises(DecodeError):
            parse_digest(bad)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(DecodeError):
        parse_digest("Digest " + text)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
                       st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                               max_size=40), min_size=1, max_size=8))
def test_format_then_parse_is_identity(params: dict[str, str]) -> None:
    assert params == parse_digest(format_credentials(params))
