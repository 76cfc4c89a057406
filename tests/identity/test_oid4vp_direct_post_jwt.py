"""OpenID4VP ``direct_post.jwt`` (§8.3): the wallet's response encrypted to the verifier.

The oid4vc-ts wallet reads the request object's ``client_metadata.jwks``,
encrypts its response (ECDH-ES with A128GCM, the JWE built by the wallet's
own node:crypto code, not by simtrust) and posts ``response=<JWE>``;
simtrust decrypts it with joserfc and verifies the presentation. A plain
``direct_post`` to such a request, a JWE for another key and garbage are
refused; the response decoder is fuzzed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwe
from joserfc.jwk import ECKey

from simtrust.identity import KYC_VCT, ProtocolError, open_request_object
from simtrust.identity._oid4vp_jwe import new_response_key, open_response

from . import test_oid4vc_interop as interop
from .test_oid4vc_interop import KYC_CLAIMS, Server, _node

server = interop.server
QUERY = {"credentials": [{"id": "kyc", "format": "dc+sd-jwt", "meta": {"vct_values": [KYC_VCT]},
                          "claims": [{"path": ["given_name"]}]}]}  # fmt: skip


def _request(server: Server) -> dict[str, Any]:
    asked = server.http.post("/oid4vp/requests", headers=server.headers, json={
        "dcql_query": QUERY, "relyingParty": "did:web:rp.example",
        "responseMode": "direct_post.jwt"})
    assert 201 == asked.status_code, asked.text
    body: dict[str, Any] = asked.json()
    return body


def test_oid4vc_ts_wallet_answers_with_an_encrypted_response(server: Server) -> None:
    node = _node()
    made = server.http.post("/oid4vci/offers", headers=server.headers, json={
        "credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS})
    received = server.wallet(node, {"action": "receive", "offerUrl": made.json()["offerUrl"]})
    request = _request(server)
    jwt = server.http.get(f"/oid4vp/requests/{request['id']}/object").text
    payload = open_request_object(jwt, server.rt.identity.resolver)
    assert "direct_post.jwt" == payload["response_mode"]
    [key] = payload["client_metadata"]["jwks"]["keys"]
    assert ("EC", "P-256", "enc", "ECDH-ES") == (key["kty"], key["crv"], key["use"], key["alg"])
    assert "d" not in key
    presented = server.wallet(node, {"action": "present", "requestUrl": request[
        "authorizationRequest"], "credential": received["credential"],
        "privateJwk": received["privateJwk"]})  # fmt: skip
    assert (200, "direct_post.jwt") == (presented["status"], presented["responseMode"])
    head = presented["encryptedResponse"].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert ("ECDH-ES", key["kid"]) == (header["alg"], header["kid"])
    assert header["enc"] in ("A128GCM", "A256GCM")
    outcome = server.http.get(f"/oid4vp/requests/{request['id']}", headers=server.headers).json()
    assert "verified" == outcome["status"], outcome
    assert "Ada" == outcome["credentials"]["kyc"][0]["claims"]["given_name"]


def test_plain_and_foreign_responses_are_refused(server: Server) -> None:
    request = _request(server)
    url = f"/oid4vp/responses/{request['id']}"
    plain = server.http.post(url, data={"vp_token": "{}", "state": "x"})
    assert (400, "invalid_request") == (plain.status_code, plain.json()["error"])
    foreign = jwe.encrypt_compact({"alg": "ECDH-ES", "enc": "A128GCM"}, b'{"state":"x"}',
                                  ECKey.generate_key("P-256"))  # fmt: skip
    for value in (foreign, "a.b.c.d.e", "not a jwe"):
        answer = server.http.post(url, data={"response": value})
        assert (400, "invalid_request") == (answer.status_code, answer.json()["error"]), value
    # Nothing was accepted: the request is still open.
    outcome = server.http.get(f"/oid4vp/requests/{request['id']}", headers=server.headers)
    assert "pending" == outcome.json()["status"]


def test_a_response_for_the_key_opens() -> None:
    private, public = new_response_key()
    key = ECKey.import_key({k: v for k, v in public.items() if k not in ("use", "alg")})
    for enc in ("A128GCM", "A256GCM"):
        token = jwe.encrypt_compact({"alg": "ECDH-ES", "enc": enc, "kid": public["kid"]},
                                    json.dumps({"vp_token": {"q": ["x"]}, "state": "s"}), key)
        assert {"vp_token": '{"q": ["x"]}', "state": "s"} == open_response(token, private)
    refused = jwe.encrypt_compact({"alg": "ECDH-ES+A128KW", "enc": "A128GCM"}, b"{}", key)
    with pytest.raises(ProtocolError):
        open_response(refused, private)


_KEY = new_response_key()[0]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.lists(st.text(max_size=40), min_size=5, max_size=5)
                 .map(".".join)))  # fmt: skip
def test_fuzz_responses_fail_only_as_protocol_errors(value: str) -> None:
    with pytest.raises(ProtocolError):
        open_response(value, _KEY)
