"""OpenID4VCI / OpenID4VP bad input: each refusal names the protocol's error, nothing issued."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.identity import (
    PRE_AUTHORIZED_GRANT,
    EcdsaP256Signer,
    Ed25519Signer,
    ProtocolError,
    VerificationFailed,
    capability_token,
    issue_sd_jwt,
    key_proof,
    present_sd_jwt,
    signer_jwk,
    validate_dcql_query,
    verify_sd_jwt,
)
from simtrust.runtime import Runtime

TOKEN = "/oauth2/token"


def capability_token_bytes(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def enforcer_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime.ephemeral(tmp_path_factory.mktemp("pep") / "home")
    try:
        yield rt
    finally:
        rt.close()


def _offer(api: Any, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = api.post(
        "/oid4vci/offers",
        json={"credential_configuration_id": "DeviceCredential",
              "claims": {"imei": "490154203237518", "model": "meter-x1"}, **extra},
        headers=headers,
    )  # fmt: skip
    assert 201 == response.status_code, response.text
    body: dict[str, Any] = response.json()
    return body


def test_token_and_credential_endpoint_errors(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    meta = api.get("/.well-known/openid-credential-issuer").json()
    assert {"SimtrustKyc", "DeviceCredential", "DeviceCredentialJwt"} == set(
        meta["credential_configurations_supported"])
    made = _offer(api, operator_headers, tx_code=True)
    code = made["credentialOffer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    assert made["credentialOffer"] == api.get(f"/oid4vci/offers/{made['offerId']}").json()
    form = {"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code}
    assert "invalid_request" == api.post(TOKEN, data=form).json()["error"]  # PIN missing
    wrong = api.post(TOKEN, data={**form, "tx_code": "000000" if made["txCode"] != "000000"
                                  else "111111"})  # fmt: skip
    assert (400, "invalid_grant") == (wrong.status_code, wrong.json()["error"])
    bogus = api.post(TOKEN, data={**form, "pre-authorized_code": "nope"})
    assert "invalid_grant" == bogus.json()["error"]
    access = api.post(TOKEN, data={**form, "tx_code": made["txCode"]}).json()["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    holder = Ed25519Signer.from_seed(bytes(range(5, 37)))
    now = sqlite_runtime.identity.now()

    def proof(nonce: str, aud: str = meta["credential_issuer"]) -> dict[str, Any]:
        jwt = key_proof(holder, issuer_url=aud, nonce=nonce, now=now)
        return {"credential_configuration_id": "DeviceCredential", "proofs": {"jwt": [jwt]}}

    nonce = api.post("/oid4vci/nonce").json()["c_nonce"]
    cases = [
        ({}, proof(nonce), 401, "invalid_token"),
        (bearer, {"credential_configuration_id": "Nope"}, 400,
         "unknown_credential_configuration"),
        (bearer, {"credential_configuration_id": "DeviceCredential"}, 400, "invalid_proof"),
        (bearer, proof(nonce, aud="https://elsewhere.example"), 400, "invalid_proof"),
        (bearer, proof("never-issued"), 400, "invalid_nonce"),
    ]  # fmt: skip
    for headers, body, status, error in cases:
        response = api.post("/oid4vci/credential", json=body, headers=headers)
        assert (status, error) == (response.status_code, response.json()["error"]), body
    issued = api.post("/oid4vci/credential", json=proof(nonce), headers=bearer)
    assert 200 == issued.status_code, issued.text
    credential = issued.json()["credentials"][0]["credential"]
    assert credential["credentialSubject"]["id"].startswith("did:key:z6Mk")
    verified = api.post("/credentials/verify", json={"verifiableCredential": credential},
                        headers=operator_headers)  # fmt: skip
    assert verified.json()["verified"] is True
    again_nonce = api.post("/oid4vci/nonce").json()["c_nonce"]
    replay = api.post("/oid4vci/credential", json=proof(again_nonce), headers=bearer)
    assert "invalid_credential_request" == replay.json()["error"]  # single use


def test_bad_offers_and_requests_are_refused(api: Any, operator_headers: dict[str, str]) -> None:
    bad_offer = api.post(
        "/oid4vci/offers",
        json={"credential_configuration_id": "DeviceCredential", "claims": {"shoeSize": 44}},
        headers=operator_headers,
    )
    assert 400 == bad_offer.status_code
    assert "shoeSize" in bad_offer.json()["detail"]
    assert bad_offer.json()["rule"].startswith("VCDM2")
    assert 400 == api.post(
        "/oid4vci/offers",
        json={"credential_configuration_id": "SimtrustKyc", "claims": {"given_name": "A"}},
        headers=operator_headers,
    ).status_code
    for query in ({}, {"credentials": []}, {"credentials": [{"id": "x", "format": "mso_mdoc",
                                                               "meta": {}}]}):  # fmt: skip
        response = api.post("/oid4vp/requests", json={"dcql_query": query},
                            headers=operator_headers)  # fmt: skip
        assert (400, "OpenID4VP 1.0 §6 DCQL") == (response.status_code, response.json()["rule"])
    made = api.post("/oid4vp/requests", headers=operator_headers, json={"dcql_query": {
        "credentials": [{"id": "kyc", "format": "dc+sd-jwt", "meta": {"vct_values": ["x"]}}]}})
    request_id = made.json()["id"]
    for form in ({"vp_token": "{}", "state": "wrong"}, {"vp_token": "not json"}):
        response = api.post(f"/oid4vp/responses/{request_id}", data=form)
        assert (400, "invalid_request") == (response.status_code, response.json()["error"])


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["credentials", "id", "format", "meta", "claims",
                                       "path", "vct_values", "credential_sets", "options"]),
                      children, max_size=5),
    max_leaves=20,
))  # fmt: skip
def test_dcql_validator_never_crashes(query: object) -> None:
    with contextlib.suppress(InvalidInput, ProtocolError):
        validate_dcql_query(query)


def test_statement_endpoint(api: Any, operator_headers: dict[str, str]) -> None:
    period = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z", "price": 50}
    response = api.get("/kyc/statements", params=period, headers=operator_headers)
    assert (200, "VerificationStatement", 0) == (
        response.status_code, response.json()["type"], response.json()["totalMinorUnits"]
    )  # fmt: skip
    backwards = {**period, "end": "2025-01-01T00:00:00Z"}
    assert 400 == api.get("/kyc/statements", params=backwards, headers=operator_headers).status_code


def test_p256_holder_keys_bind_sd_jwt(sqlite_runtime: Runtime) -> None:
    """An ES256 holder (HAIP wallets): cnf.jwk is EC P-256, the key binding JWT ES256."""
    service = sqlite_runtime.identity
    now = service.now()
    holder = EcdsaP256Signer.generate()
    token = issue_sd_jwt({"given_name": "Ada"}, service.issuer(), disclosable=["given_name"],
                         holder_key=signer_jwk(holder), now=now, vct="urn:x")  # fmt: skip
    shown = present_sd_jwt(token, disclose=["given_name"], holder=holder, nonce="n", audience="a",
                           now=now)  # fmt: skip
    result = verify_sd_jwt(shown, resolver=service.resolver, now=now, nonce="n", audience="a")
    assert ("Ada", "EC", holder.public_key) == (
        result.claims["given_name"], result.holder_jwk["kty"], result.holder_key
    )  # fmt: skip
    other = present_sd_jwt(token, disclose=["given_name"], holder=EcdsaP256Signer.generate(),
                           nonce="n", audience="a", now=now)  # fmt: skip
    with pytest.raises(VerificationFailed, match="key binding"):
        verify_sd_jwt(other, resolver=service.resolver, now=now, nonce="n", audience="a")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_capability_tokens_never_crash_the_enforcement_point(
    enforcer_runtime: Runtime, raw: bytes | str
) -> None:
    token = raw if isinstance(raw, str) else capability_token_bytes(raw)
    service = enforcer_runtime.identity
    decision = service.capabilities.check(token, action="read", resource="urn:x", now=service.now())
    assert not decision.permit


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["@context", "type", "issuer", "credentialSubject", "id",
                                       "resource", "actions", "delegationDepth", "proof",
                                       "verifiableCredential", "validFrom"]),
                      children, max_size=6),
    max_leaves=25,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_JSON, max_size=3) | st.dictionaries(st.text(max_size=5), _JSON, max_size=4))
def test_capability_chains_of_any_shape_are_denied_not_crashed(
    enforcer_runtime: Runtime, document: list[Any] | dict[str, Any]
) -> None:
    service = enforcer_runtime.identity
    decision = service.capabilities.check(
        capability_token(document), action="read", resource="urn:x", now=service.now()
    )
    assert not decision.permit


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.builds(
    lambda h, p, s: ".".join([capability_token_bytes(h), capability_token_bytes(p), s]),
    st.binary(max_size=60), st.binary(max_size=60), st.text(max_size=20)))  # fmt: skip
def test_key_proofs_of_any_shape_are_protocol_errors(enforcer_runtime: Runtime, proof: str) -> None:
    service = enforcer_runtime.identity
    now = service.now()
    made = service.oid4vci.create_offer("SimtrustKyc", {"kyc_level": "basic"}, now=now)
    code = made["credentialOffer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    token = service.oid4vci.redeem({"pre-authorized_code": code}, now=now)["access_token"]
    request = {"credential_configuration_id": "SimtrustKyc", "proofs": {"jwt": [proof]}}
    with pytest.raises(ProtocolError) as caught:
        service.oid4vci.credential(token, request, now=now)
    assert caught.value.error in ("invalid_proof", "invalid_nonce")


def test_another_tenants_presentation_request_answers_like_a_missing_one(
        api: Any, sqlite_runtime: Runtime) -> None:
    """The relying party's outcome route is tenant-scoped: a request another tenant
    made answers exactly like one that does not exist."""
    keys = {}
    for tenant in ("acme", "globex"):
        sqlite_runtime.tenants.create_tenant(tenant, tenant.title())
        key = sqlite_runtime.tenants.create_key("tenant-admin", tenant, tenant_id=tenant)
        keys[tenant] = {"Authorization": f"Bearer {key.secret}"}
    made = api.post("/oid4vp/requests", headers=keys["acme"], json={"dcql_query": {
        "credentials": [{"id": "kyc", "format": "dc+sd-jwt", "meta": {"vct_values": ["x"]}}]}})
    assert 201 == made.status_code, made.text
    request_id = made.json()["id"]
    assert 200 == api.get(f"/oid4vp/requests/{request_id}", headers=keys["acme"]).status_code
    foreign = api.get(f"/oid4vp/requests/{request_id}", headers=keys["globex"])
    missing = api.get(f"/oid4vp/requests/{'0' * len(request_id)}", headers=keys["globex"])
    assert (404, 404) == (foreign.status_code, missing.status_code)
    assert {**foreign.json(), "instance": "X"} == {**missing.json(), "instance": "X"}
