"""Hypothesis: the data-model validator, access tokens and the token endpoint on hostile input.

Whatever the JSON, the validator answers VerificationFailed (with a rule) or
accepts; an access token that was not minted is AuthenticationRequired; the
token endpoint answers an RFC 6749 error, never a crash.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.api._oauth import ACCESS_TOKEN_PREFIX, redeem
from simtrust.crypto import Keyring
from simtrust.errors import AuthenticationRequired
from simtrust.identity import VerificationFailed
from simtrust.identity._datamodel import validate_credential_model, validate_presentation_model

V2 = "https://www.w3.org/ns/credentials/v2"
EX = "https://www.w3.org/ns/credentials/examples/v2"

_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=16)
_json = st.recursive(
    _scalars | st.sampled_from([V2, EX, "did:example:a", "VerifiableCredential", "@value"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["@context", "id", "type", "issuer", "credentialSubject", "validFrom", "validUntil",
             "name", "description", "@value", "@language", "credentialStatus", "relatedResource",
             "digestSRI", "proof", "holder", "verifiableCredential", "evidence", "x", "@vocab"]
        ),
        inner,
        max_size=5,
    ),
    max_leaves=20,
)  # fmt: skip


def _document(extra: dict[str, Any], context: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": context,
        "type": ["VerifiableCredential"],
        "issuer": "did:example:issuer",
        "credentialSubject": {"id": "did:example:s"},
    }
    document.update(extra)
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    extra=st.dictionaries(st.text(max_size=10) | st.sampled_from(["name", "proof"]), _json,
                          max_size=4),
    context=st.sampled_from([[V2], [V2, EX], V2]) | _json,
)  # fmt: skip
def test_validator_answers_with_a_rule(extra: dict[str, Any], context: Any) -> None:
    for validate in (validate_credential_model, validate_presentation_model):
        failure: VerificationFailed | None = None
        try:
            validate(_document(extra, context))
        except VerificationFailed as exc:
            failure = exc
        if failure is not None:
            assert failure.reason in ("malformed", "unknown-context")
            assert failure.detail


@settings(max_examples=100, deadline=None)
@given(token=st.text(max_size=120))
def test_unminted_access_tokens_are_refused(token: str) -> None:
    keyring = Keyring.generate()
    for presented in (token, ACCESS_TOKEN_PREFIX + token):
        try:
            redeem(keyring, None, presented)  # type: ignore[arg-type]
        except AuthenticationRequired:
            continue
        raise AssertionError("an unminted token was accepted")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_token_endpoint_never_crashes(api: Any, body: bytes) -> None:
    response = api.post(
        "/oauth2/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] in (
        "invalid_request",
        "invalid_client",
        "unsupported_grant_type",
    )
