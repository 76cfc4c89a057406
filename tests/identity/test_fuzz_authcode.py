"""Hypothesis: the authorization code flow's parsers refuse untrusted input only with
ProtocolError (an RFC 6749 error code), never another exception, and never grant.

Fuzzed: ``authorization_details`` (OpenID4VCI §5.1.1), the pushed authorization
request form (RFC 9126 §2.1), the authorization endpoint's ``client_id`` /
``request_uri`` and the token request form (RFC 6749 §4.1.3).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.crypto import Keyring
from simtrust.identity import (
    REQUEST_URI_PREFIX,
    CredentialConfiguration,
    CredentialIssuer,
    Minted,
    ProtocolError,
    parse_authorization_details,
)
from simtrust.identity._schema import MIGRATIONS
from simtrust.store import SqliteDatabase, apply_migrations

from .conftest import NOW

ERRORS = {
    "invalid_request", "invalid_scope", "invalid_authorization_details", "invalid_target",
    "unsupported_response_type", "request_not_supported", "invalid_grant",
    "invalid_request_uri",
}  # fmt: skip

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "credential_configuration_id", "locations", "format",
                         "claims", "x"]) | st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)  # fmt: skip
_text = st.text(max_size=60) | st.sampled_from(
    ["code", "S256", "plain", "Badge", "badge", "https://issuer.example", "https://w.example/cb",
     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", REQUEST_URI_PREFIX + "x"])  # fmt: skip
_names = st.sampled_from([
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
    "code_challenge_method", "authorization_details", "issuer_state", "resource", "request",
    "request_uri", "code", "code_verifier", "grant_type",
])  # fmt: skip
_forms = st.dictionaries(_names | st.text(max_size=10), _text, max_size=10)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = SqliteDatabase(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    apply_migrations(db, MIGRATIONS)
    config = CredentialConfiguration("Badge", {"format": "ldp_vc", "scope": "badge"},
                                     lambda claims: None)  # fmt: skip
    yield CredentialIssuer(
        db, Keyring.generate(), issuer_url="https://issuer.example",
        configurations={"Badge": config},
        mint=lambda c, claims, jwk, did: Minted({"c": c}, "urn:x"),
    )  # fmt: skip
    db.close()


@given(document=_json | st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_authorization_details_parser(document: Any) -> None:
    raw = document if isinstance(document, str) else json.dumps(document)
    outcome: str
    try:
        outcome = parse_authorization_details(raw, "https://issuer.example", {"Badge"})
    except ProtocolError as exc:
        outcome = exc.error
    assert outcome in ("Badge", "invalid_authorization_details")


@given(form=_forms)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_pushed_request_form(issuer: CredentialIssuer, form: dict[str, str]) -> None:
    try:
        answer = issuer.authorization.push(form, now=NOW)
    except ProtocolError as exc:
        answer = {"error": exc.error}
    if "error" in answer:
        assert answer["error"] in ERRORS
    else:
        # Accepted only with everything the flow needs.
        assert (form["response_type"], form["code_challenge_method"]) == ("code", "S256")
        assert answer["request_uri"].startswith(REQUEST_URI_PREFIX)


@given(client_id=_text, request_uri=_text)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_authorization_endpoint_parameters(
    issuer: CredentialIssuer, client_id: str, request_uri: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        issuer.authorization.decide(client_id, request_uri, tenant_id="acme", approve=True,
                                    now=NOW)  # fmt: skip
    assert refused.value.error in ERRORS


@given(form=_forms)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_token_request_form(issuer: CredentialIssuer, form: dict[str, str]) -> None:
    with pytest.raises(ProtocolError) as refused:
        issuer.redeem_code(form, now=NOW)
    assert refused.value.error in ERRORS
