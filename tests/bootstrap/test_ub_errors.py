"""Ub and NAF refusals: unknown IMPI, wrong realm, forged RES, reused nonce, replayed Digest."""

from __future__ import annotations

import base64
import ssl

import httpx
import pytest

from simtrust.bootstrap import (
    Bsf,
    EstRequest,
    digest_response,
    format_credentials,
    parse_digest,
)
from simtrust.errors import AuthenticationFailure, DecodeError, NotFound

from .conftest import LABEL, Env


def first(impi: str) -> str:
    return format_credentials({"username": impi, "realm": "", "nonce": "", "uri": "/bsf",
                               "response": ""})


def answer(env: Env, impi: str, challenge: str, password: bytes, **over: str) -> str:
    params = parse_digest(challenge)
    fields = {"username": impi, "realm": params["realm"], "nonce": params["nonce"],
              "uri": "/bsf", "qop": "auth-int", "nc": "00000001", "cnonce": "c",
              "algorithm": "AKAv1-MD5"}
    fields.update(over)
    fields["response"] = digest_response(
        algorithm="AKAv1-MD5", username=impi, realm=fields["realm"], password=password,
        method="GET", uri="/bsf", nonce=fields["nonce"], nc="00000001", cnonce="c",
        qop="auth-int")
    return format_credentials(fields)


def test_ub_refusals(env: Env) -> None:
    bsf = env.boot.bsf
    with pytest.raises(NotFound):
        bsf.respond(first("001019999999999@ims.mnc001.mcc001.3gppnetwork.org"), "GET", b"")
    with pytest.raises(DecodeError):
        bsf.respond(first("not-an-impi"), "GET", b"")
    with pytest.raises(DecodeError):
        bsf.respond("Basic Zm9vOmJhcg==", "GET", b"")
    applet = env.applet(1)
    status, challenge, _ = bsf.respond(first(applet.impi), "GET", b"")
    assert 401 == status
    raw = base64.b64decode(parse_digest(challenge)["nonce"])
    res = applet.aka(raw[:16], raw[16:32])
    with pytest.raises(AuthenticationFailure):
        bsf.respond(answer(env, applet.impi, challenge, res, realm="evil.example"), "GET", b"")
    _, challenge, _ = bsf.respond(first(applet.impi), "GET", b"")
    with pytest.raises(AuthenticationFailure):
        bsf.respond(answer(env, applet.impi, challenge, b"\x00" * 8), "GET", b"")
    # The nonce was used up by the failed attempt: the right RES cannot reuse it.
    raw = base64.b64decode(parse_digest(challenge)["nonce"])
    res = applet.aka(raw[:16], raw[16:32])
    with pytest.raises(AuthenticationFailure):
        bsf.respond(answer(env, applet.impi, challenge, res), "GET", b"")
    failures = [e for e in env.rt.audit.query(limit=1000) if e.action == "gba.bootstrap"]
    assert all("failure" == e.outcome for e in failures)


def test_naf_refuses_replayed_digest_credentials(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
    server = env.boot.server
    path = f"/.well-known/est/{LABEL}/serverkeygen"
    challenge = parse_digest(server.challenge())
    now = env.clock()
    params = {"username": applet.naf_username("gba", server.naf_id, now),
              "realm": challenge["realm"], "nonce": challenge["nonce"], "uri": path,
              "algorithm": "SHA-256", "qop": "auth", "nc": "00000001", "cnonce": "abc"}
    params["response"] = applet.naf_digest("gba", server.naf_id, now, algorithm="SHA-256",
                                           realm=challenge["realm"], method="POST", uri=path,
                                           nonce=challenge["nonce"], nc="00000001",
                                           cnonce="abc", qop="auth")
    request = EstRequest("POST", path, {"authorization": format_credentials(params)})
    assert 200 == server.handle(request).status
    replay = server.handle(request)
    assert 401 == replay.status
    assert b"replayed" in replay.body
    moved = EstRequest("POST", f"/.well-known/est/{LABEL}/simpleenroll",
                       {"authorization": format_credentials(params)})
    assert 401 == server.handle(moved).status  # the Digest uri names another resource
    env.clock.advance(minutes=10)
    stale = server.handle(EstRequest("POST", path, {"authorization": format_credentials(
        {**params, "nc": "00000002"})}))
    assert 401 == stale.status
    assert any("stale=true" in v for h, v in stale.headers if h == "WWW-Authenticate")
    assert 1 == len(env.boot.cas.certificates())


def test_listener_answers_bad_http_with_4xx(env: Env) -> None:
    ctx = ssl.create_default_context(cadata=env.listener.trust_pem.decode())
    with httpx.Client(verify=ctx) as http:
        base = env.listener.base_url
        assert 400 == http.get(f"{base}/bsf").status_code
        assert 400 == http.get(f"{base}/bsf", headers={"Authorization": "Digest =="}).status_code
        assert 404 == http.get(f"{base}/nothing").status_code
        assert 404 == http.get(f"{base}/crl/unknown.crl").status_code
        bad_ocsp = http.post(f"{base}/ocsp", content=b"\x30\x00")
        assert 200 == bad_ocsp.status_code  # an OCSP malformedRequest answer
        assert "application/ocsp-response" == bad_ocsp.headers["content-type"]
        big = http.post(f"{base}/.well-known/est/{LABEL}/simpleenroll", content=b"x" * 70_000)
        assert 413 == big.status_code


def test_a_challenge_serves_one_successful_response(env: Env,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The challenge is read outside the transaction that stores the B-TID and used up
    inside it: a second response with the same nonce is refused, and so is one whose
    challenge another request took between its read and its commit."""
    bsf = env.boot.bsf
    applet = env.applet(1)
    _, challenge, _ = bsf.respond(first(applet.impi), "GET", b"")
    raw = base64.b64decode(parse_digest(challenge)["nonce"])
    res = applet.aka(raw[:16], raw[16:32])
    assert 200 == bsf.respond(answer(env, applet.impi, challenge, res), "GET", b"")[0]
    with pytest.raises(AuthenticationFailure, match="already used"):
        bsf.respond(answer(env, applet.impi, challenge, res), "GET", b"")
    contexts = env.rt.db.query("SELECT b_tid FROM boot_gba_contexts WHERE impi = ?",
                               (applet.impi,))
    # A concurrent request takes the next challenge after this one has read it.
    _, challenge, _ = bsf.respond(first(applet.impi), "GET", b"")
    nonce = parse_digest(challenge)["nonce"]
    raw = base64.b64decode(nonce)
    res = applet.aka(raw[:16], raw[16:32])
    read = Bsf._read_challenge

    def read_then_lose(self: Bsf, nonce_value: str, impi: str) -> tuple[object, ...]:
        found = read(self, nonce_value, impi)
        with env.rt.db.transaction():
            self._consume(nonce_value, found[-1])  # type: ignore[arg-type]
        return found

    monkeypatch.setattr(Bsf, "_read_challenge", read_then_lose)
    with pytest.raises(AuthenticationFailure, match="already used"):
        bsf.respond(answer(env, applet.impi, challenge, res), "GET", b"")
    # Nothing of the refused response was stored: the earlier B-TID still stands.
    assert contexts == env.rt.db.query("SELECT b_tid FROM boot_gba_contexts WHERE impi = ?",
                                       (applet.impi,))


def test_the_401_stores_nothing_and_a_forged_nonce_is_refused(env: Env) -> None:
    """The challenge lives sealed in its nonce: the 401 writes no row, and a nonce
    altered, moved to another IMPI or past its expiry is refused without a write."""
    bsf = env.boot.bsf
    applet, other = env.applet(1), env.applet(2)
    before = env.rt.db.query_one("SELECT count(*) FROM boot_gba_used_nonces")
    _, challenge, _ = bsf.respond(first(applet.impi), "GET", b"")
    assert before == env.rt.db.query_one("SELECT count(*) FROM boot_gba_used_nonces")
    nonce = parse_digest(challenge)["nonce"]
    raw = base64.b64decode(nonce)
    res = applet.aka(raw[:16], raw[16:32])
    flipped = base64.b64encode(raw[:-1] + bytes((raw[-1] ^ 1,))).decode()
    with pytest.raises(AuthenticationFailure, match="unknown nonce"):
        bsf.respond(answer(env, applet.impi, challenge, res, nonce=flipped), "GET", b"")
    with pytest.raises(AuthenticationFailure, match="unknown nonce"):
        bsf.respond(answer(env, applet.impi, challenge, res, nonce=base64.b64encode(
            raw[:32]).decode()), "GET", b"")
    with pytest.raises(AuthenticationFailure, match="another IMPI"):
        bsf.respond(answer(env, other.impi, challenge, res), "GET", b"")
    assert before == env.rt.db.query_one("SELECT count(*) FROM boot_gba_used_nonces")
    env.clock.advance(minutes=3)
    with pytest.raises(AuthenticationFailure, match="expired"):
        bsf.respond(answer(env, applet.impi, challenge, res), "GET", b"")
    # A fresh challenge still works, once; its used entry outlives the answer.
    _, challenge, _ = bsf.respond(first(applet.impi), "GET", b"")
    raw = base64.b64decode(parse_digest(challenge)["nonce"])
    res = applet.aka(raw[:16], raw[16:32])
    assert 200 == bsf.respond(answer(env, applet.impi, challenge, res), "GET", b"")[0]
    assert 1 == env.rt.db.query_one(
        "SELECT count(*) FROM boot_gba_used_nonces")[0] - before[0]  # type: ignore[index]
    with pytest.raises(AuthenticationFailure, match="already used"):
        bsf.respond(answer(env, applet.impi, challenge, res), "GET", b"")
