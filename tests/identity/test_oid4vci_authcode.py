"""OpenID4VCI 1.0 authorization code flow (§3.4, §5, §6) on SQLite and PostgreSQL.

Written from the texts: a pushed authorization request (RFC 9126 §2.1) with
PKCE S256 (RFC 7636 §4.1-§4.3) and ``authorization_details`` of type
``openid_credential`` (OpenID4VCI §5.1.1) or a ``scope`` (§5.1.2), bound to an
offer by ``issuer_state`` (§4.1.1); the authorization response (RFC 6749
§4.1.2, RFC 9207); the token request (RFC 6749 §4.1.3, RFC 7636 §4.5, §4.6)
and its errors (RFC 6749 §5.2); the token response's ``credential_identifiers``
(OpenID4VCI §6.2) and their use in the credential request (§8.2). Codes are
single use and survive a new store object on the same database (a restart).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from simtrust.crypto import Keyring
from simtrust.errors import InvalidInput
from simtrust.identity import (
    AUTHORIZATION_CODE_GRANT,
    REQUEST_URI_PREFIX,
    CredentialConfiguration,
    CredentialIssuer,
    Ed25519Signer,
    Minted,
    ProtocolError,
    key_proof,
    pkce_challenge,
)
from simtrust.store import Database, PostgresDatabase, SqliteDatabase

from ..conftest import PG_URL
from .conftest import NOW

ISSUER = "https://issuer.example"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "https://wallet.example/cb"
DETAILS = json.dumps([{"type": "openid_credential", "credential_configuration_id": "Badge"}])


def _check(claims: dict[str, Any]) -> None:
    if not isinstance(claims.get("name"), str):
        raise InvalidInput("name is required")


def _mint(configuration: str, claims: dict[str, Any], jwk: dict[str, str], did: str) -> Minted:
    return Minted({"type": configuration, "holder": did, **claims}, f"urn:badge:{did}")


def _issuer(db: Database, keyring: Keyring) -> CredentialIssuer:
    config = CredentialConfiguration(
        "Badge",
        {"format": "ldp_vc", "scope": "badge", "proof_types_supported": {"jwt": {
            "proof_signing_alg_values_supported": ["EdDSA"]}}},
        _check,
    )  # fmt: skip
    return CredentialIssuer(db, keyring, issuer_url=ISSUER, configurations={"Badge": config},
                            mint=_mint)  # fmt: skip


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def issuer(identity_db: Database, keyring: Keyring) -> CredentialIssuer:
    return _issuer(identity_db, keyring)


def _offer(issuer: CredentialIssuer, tenant: str = "acme") -> str:
    made = issuer.create_offer("Badge", {"name": "Ada"}, now=NOW, tenant_id=tenant,
                               authorization_code=True)  # fmt: skip
    grant = made["credentialOffer"]["grants"]
    assert [AUTHORIZATION_CODE_GRANT] == list(grant)
    state: str = grant[AUTHORIZATION_CODE_GRANT]["issuer_state"]
    return state


def _push(issuer: CredentialIssuer, **extra: str) -> str:
    params = {
        "response_type": "code", "client_id": "wallet-1", "redirect_uri": REDIRECT,
        "code_challenge": CHALLENGE, "code_challenge_method": "S256",
        "authorization_details": DETAILS, "state": "xyz", **extra,
    }  # fmt: skip
    params = {k: v for k, v in params.items() if v != "-"}
    answer = issuer.authorization.push(params, now=NOW)
    assert answer["request_uri"].startswith(REQUEST_URI_PREFIX)
    assert 0 < answer["expires_in"] <= 600
    uri: str = answer["request_uri"]
    return uri


def _code(issuer: CredentialIssuer, tenant: str = "acme", **extra: str) -> str:
    request_uri = _push(issuer, **extra)
    location, granted = issuer.authorization.decide(
        "wallet-1", request_uri, tenant_id=tenant, approve=True, now=NOW
    )
    assert granted, location
    parts = urlsplit(location)
    assert REDIRECT == f"{parts.scheme}://{parts.netloc}{parts.path}"
    answer = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert ("xyz", ISSUER) == (answer["state"], answer["iss"])  # RFC 9207 §2
    return answer["code"]


def _token_request(the_code: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": the_code, "code_verifier": VERIFIER,
            "redirect_uri": REDIRECT, "client_id": "wallet-1", **extra}  # fmt: skip


def _credential_request(issuer: CredentialIssuer, holder: Ed25519Signer,
                        **naming: str) -> dict[str, Any]:  # fmt: skip
    proof = key_proof(holder, issuer_url=ISSUER, nonce=issuer.nonce(now=NOW)["c_nonce"], now=NOW)
    return {**naming, "proofs": {"jwt": [proof]}}


def test_authorization_details_flow_issues_with_credential_identifier(
    issuer: CredentialIssuer, holder_signer: Ed25519Signer
) -> None:
    state = _offer(issuer)
    code = _code(issuer, issuer_state=state)
    token = issuer.redeem_code(_token_request(code), now=NOW)
    assert [{"type": "openid_credential", "credential_configuration_id": "Badge",
             "credential_identifiers": ["Badge"]}] == token["authorization_details"]  # fmt: skip
    # §8.2: with identifiers returned, credential_configuration_id must not be used.
    with pytest.raises(ProtocolError, match="credential_identifier"):
        issuer.credential(token["access_token"], _credential_request(
            issuer, holder_signer, credential_configuration_id="Badge"), now=NOW)
    with pytest.raises(ProtocolError) as unknown:
        issuer.credential(token["access_token"], _credential_request(
            issuer, holder_signer, credential_identifier="Other"), now=NOW)
    assert "unknown_credential_identifier" == unknown.value.error
    issued = issuer.credential(token["access_token"], _credential_request(
        issuer, holder_signer, credential_identifier="Badge"), now=NOW)
    assert "Ada" == issued["credentials"][0]["credential"]["name"]


def test_scope_flow_without_issuer_state_finds_the_users_offer(
    issuer: CredentialIssuer, holder_signer: Ed25519Signer
) -> None:
    """A wallet-initiated request (§3.4 without an offer): the signed-in tenant's open offer."""
    _offer(issuer, tenant="other")
    _offer(issuer, tenant="acme")
    code = _code(issuer, authorization_details="-", scope="badge")
    token = issuer.redeem_code(_token_request(code), now=NOW)
    assert "authorization_details" not in token
    issued = issuer.credential(token["access_token"], _credential_request(
        issuer, holder_signer, credential_configuration_id="Badge"), now=NOW)
    assert "Badge" == issued["credentials"][0]["credential"]["type"]
    # The other tenant's offer is still open; acme has none left.
    location, granted = issuer.authorization.decide(
        "wallet-1", _push(issuer), tenant_id="acme", approve=True, now=NOW)
    assert not granted
    assert "access_denied" == parse_qs(urlsplit(location).query)["error"][0]


def test_another_tenant_or_a_refusal_gets_access_denied(issuer: CredentialIssuer) -> None:
    state = _offer(issuer, tenant="acme")
    for tenant, approve in (("intruder", True), ("acme", False), (None, True)):
        location, granted = issuer.authorization.decide(
            "wallet-1", _push(issuer, issuer_state=state), tenant_id=tenant, approve=approve,
            now=NOW)  # fmt: skip
        answer = parse_qs(urlsplit(location).query)
        assert (False, ["access_denied"], ["xyz"]) == (granted, answer["error"], answer["state"])
        assert "code" not in answer
    # The offer itself is untouched: its holder can still authorize it.
    assert _code(issuer, issuer_state=state)


def test_request_uri_is_single_use_and_bound_to_its_client(issuer: CredentialIssuer) -> None:
    _offer(issuer)
    request_uri = _push(issuer)
    with pytest.raises(ProtocolError, match="client_id"):
        issuer.authorization.pending("wallet-2", request_uri, now=NOW)
    with pytest.raises(ProtocolError) as expired:
        issuer.authorization.pending("wallet-1", request_uri, now=NOW + timedelta(minutes=5))
    assert "invalid_request_uri" == expired.value.error
    issuer.authorization.decide("wallet-1", request_uri, tenant_id="acme", approve=True, now=NOW)
    for uri in (request_uri, REQUEST_URI_PREFIX + "made-up", "https://evil.example/r"):
        with pytest.raises(ProtocolError) as used:
            issuer.authorization.decide("wallet-1", uri, tenant_id="acme", approve=True,
                                        now=NOW)  # fmt: skip
        assert "invalid_request_uri" == used.value.error


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_verifier": "x" * 43}, "invalid_grant"),  # RFC 7636 §4.6
        ({"redirect_uri": "https://wallet.example/other"}, "invalid_grant"),  # RFC 6749 §4.1.3
        ({"client_id": "wallet-2"}, "invalid_grant"),
        ({"code": "not-a-code"}, "invalid_grant"),
        ({"code_verifier": "short"}, "invalid_request"),
        ({"code_verifier": ""}, "invalid_request"),
        ({"redirect_uri": ""}, "invalid_request"),
        ({"client_id": ""}, "invalid_request"),
    ],
)
def test_token_request_errors(
    issuer: CredentialIssuer, change: dict[str, str], error: str
) -> None:
    _offer(issuer)
    code = _code(issuer)
    with pytest.raises(ProtocolError) as refused:
        issuer.redeem_code(_token_request(code, **change), now=NOW)
    assert (error, 400) == (refused.value.error, refused.value.http_status)


def test_a_failed_attempt_spends_the_code(issuer: CredentialIssuer) -> None:
    _offer(issuer)
    code = _code(issuer)
    with pytest.raises(ProtocolError, match="code_verifier"):
        issuer.redeem_code(_token_request(code, code_verifier="y" * 43), now=NOW)
    with pytest.raises(ProtocolError, match="already used"):
        issuer.redeem_code(_token_request(code), now=NOW)


def test_expired_code(issuer: CredentialIssuer) -> None:
    _offer(issuer)
    code = _code(issuer)
    with pytest.raises(ProtocolError, match="expired") as refused:
        issuer.redeem_code(_token_request(code), now=NOW + timedelta(minutes=11))
    assert "invalid_grant" == refused.value.error


def test_replayed_code_is_refused_and_revokes_its_token(
    issuer: CredentialIssuer, holder_signer: Ed25519Signer
) -> None:
    _offer(issuer)
    code = _code(issuer)
    token = issuer.redeem_code(_token_request(code), now=NOW)["access_token"]
    with pytest.raises(ProtocolError, match="already used") as replay:
        issuer.redeem_code(_token_request(code), now=NOW)
    assert "invalid_grant" == replay.value.error
    with pytest.raises(ProtocolError) as revoked:
        issuer.credential(token, _credential_request(
            issuer, holder_signer, credential_identifier="Badge"), now=NOW)
    assert ("invalid_token", 401) == (revoked.value.error, revoked.value.http_status)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),  # S256 only (HAIP)
        ({"code_challenge_method": "-"}, "invalid_request"),
        ({"code_challenge": "-"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"client_id": "-"}, "invalid_request"),
        ({"redirect_uri": "-"}, "invalid_request"),
        ({"redirect_uri": "https://wallet.example/cb#frag"}, "invalid_request"),
        ({"redirect_uri": "http://wallet.example/cb"}, "invalid_request"),
        ({"redirect_uri": "javascript:alert(1)"}, "invalid_request"),
        ({"redirect_uri": "/relative"}, "invalid_request"),
        ({"request_uri": REQUEST_URI_PREFIX + "x"}, "invalid_request"),  # RFC 9126 §2.1
        ({"request": "eyJ.e30."}, "request_not_supported"),
        ({"resource": "https://elsewhere.example"}, "invalid_target"),  # RFC 8707 §2
        ({"issuer_state": "unknown"}, "invalid_request"),
        ({"scope": "badge"}, "invalid_request"),  # both ways of asking
        ({"authorization_details": "-"}, "invalid_request"),  # neither
        ({"authorization_details": "-", "scope": "other"}, "invalid_scope"),
        ({"authorization_details": "-", "scope": "badge badge"}, "invalid_scope"),
        ({"authorization_details": "not json"}, "invalid_authorization_details"),
        ({"authorization_details": "{}"}, "invalid_authorization_details"),
        ({"authorization_details": "[]"}, "invalid_authorization_details"),
        ({"authorization_details": '[{"type": "payment_initiation"}]'},
         "invalid_authorization_details"),
        ({"authorization_details": '[{"type": "openid_credential"}]'},
         "invalid_authorization_details"),
        ({"authorization_details": '[{"type": "openid_credential", "format": "ldp_vc"}]'},
         "invalid_authorization_details"),
        ({"authorization_details": '[{"type": "openid_credential",'
          ' "credential_configuration_id": "Nope"}]'}, "invalid_authorization_details"),
        ({"authorization_details": '[{"type": "openid_credential", "credential_configuration_id":'
          ' "Badge", "locations": ["https://other.example"]}]'}, "invalid_authorization_details"),
        ({"state": "s" * 3000}, "invalid_request"),
    ],
)
def test_pushed_request_errors(
    issuer: CredentialIssuer, change: dict[str, str], error: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        _push(issuer, **change)
    assert error == refused.value.error


def test_pushed_request_accepts_locations_and_resource(issuer: CredentialIssuer) -> None:
    details = json.dumps([{"type": "openid_credential", "credential_configuration_id": "Badge",
                           "locations": [ISSUER]}])  # fmt: skip
    assert _push(issuer, authorization_details=details, resource=ISSUER)
    assert _push(issuer, redirect_uri="http://127.0.0.1:4711/cb")  # RFC 8252 §7.3 loopback
    assert _push(issuer, redirect_uri="eu.example.wallet:/cb")  # RFC 8252 §7.1 private-use


def test_issuer_state_of_another_configuration_or_a_redeemed_offer(
    issuer: CredentialIssuer,
) -> None:
    state = _offer(issuer)
    code = _code(issuer, issuer_state=state)
    issuer.redeem_code(_token_request(code), now=NOW)
    with pytest.raises(ProtocolError, match="issuer_state"):
        _push(issuer, issuer_state=state)


def test_offer_of_the_authorization_code_grant_takes_no_tx_code(issuer: CredentialIssuer) -> None:
    with pytest.raises(InvalidInput, match="tx_code"):
        issuer.create_offer("Badge", {"name": "Ada"}, now=NOW, tenant_id="acme", tx_code=True,
                            authorization_code=True)  # fmt: skip
    with pytest.raises(InvalidInput, match="tenantId"):
        issuer.create_offer("Badge", {"name": "Ada"}, now=NOW, authorization_code=True)


def _reopen(db: Database) -> Database:
    if isinstance(db, SqliteDatabase):
        return SqliteDatabase(db.path)
    assert isinstance(db, PostgresDatabase)
    return PostgresDatabase(PG_URL, schema=db.schema)


def test_codes_survive_a_restart_and_stay_single_use(
    identity_db: Database, keyring: Keyring, holder_signer: Ed25519Signer
) -> None:
    """A code handed to a wallet is durable; a second process sees it spent."""
    first = _issuer(identity_db, keyring)
    state = _offer(first)
    code = _code(first, issuer_state=state)
    pushed = _push(first)  # a pending request survives too
    reopened = _reopen(identity_db)
    try:
        second = _issuer(reopened, keyring)
        assert "Badge" == second.authorization.pending("wallet-1", pushed, now=NOW).configuration_id
        token = second.redeem_code(_token_request(code), now=NOW)["access_token"]
        with pytest.raises(ProtocolError, match="already used"):
            first.redeem_code(_token_request(code), now=NOW)
        with pytest.raises(ProtocolError, match=r"unknown or expired"):
            second.credential(token, _credential_request(
                second, holder_signer, credential_identifier="Badge"), now=NOW)
    finally:
        if reopened is not identity_db:
            reopened.close()


def test_pkce_challenge_is_rfc7636_appendix_b() -> None:
    assert CHALLENGE == pkce_challenge(VERIFIER)
