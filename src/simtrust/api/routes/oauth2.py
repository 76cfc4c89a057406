"""OAuth 2.0 token endpoint, client credentials grant (RFC 6749 §4.4, §5; RFC 8414 metadata),
and the OpenID4VCI 1.0 pre-authorized code grant (§6.1) wallets redeem offers with.

``POST /oauth2/token`` (``application/x-www-form-urlencoded``,
``grant_type=client_credentials``), client authentication by HTTP Basic
(§2.3.1) or ``client_id``/``client_secret`` in the body; the client id is an
API key's id and the secret the API key. Success: 200 ``{"access_token",
"token_type": "Bearer", "expires_in"}`` with ``Cache-Control: no-store``;
errors per §5.2 (``invalid_request``, ``invalid_client`` 401 with
``WWW-Authenticate``, ``unsupported_grant_type``). The form is parsed with
the standard library (one flat form; no multipart dependency for it).

The OpenID4VCI authorization code flow (§3.4, §5, §6): ``POST /oauth2/par``
takes a wallet's pushed authorization request (RFC 9126 §2.1; public client,
PKCE S256, ``authorization_details`` or ``scope``, ``issuer_state``) and
answers 201 ``{"request_uri", "expires_in"}``; the user then authorizes at
the dashboard's ``/ui/oid4vci/authorize`` (signed in, see
docs/decisions/identity-oid4vci-authorization-code.md); the wallet redeems
the code here with ``grant_type=authorization_code`` and its
``code_verifier`` (RFC 6749 §4.1.3, RFC 7636 §4.5). All three are listed in
the RFC 8414 metadata.

The wallet grants answer with a refresh token, redeemed with
``grant_type=refresh_token`` (RFC 6749 §6; rotated, a reused one revokes the
grant), and take a ``DPoP`` proof (RFC 9449 §5) that binds the tokens to the
wallet's key; a DPoP proof at PAR binds the code (§10). Each answer carries a
fresh ``DPoP-Nonce`` (§8). The logic is identity/_tokens.py and _dpop.py.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simtrust.api._oauth import mint
from simtrust.api._ratelimit import RATE_LIMITED, client_address, oid4vci_limiter
from simtrust.api.deps import CurrentRuntime
from simtrust.errors import AuthenticationRequired
from simtrust.identity import (
    ATTESTATION_CHALLENGE_HEADER,
    ATTESTATION_HEADER,
    ATTESTATION_POP_HEADER,
    AUTHORIZATION_CODE_GRANT,
    DPOP_ALGS,
    PRE_AUTHORIZED_GRANT,
    REFRESH_GRANT,
    ProtocolError,
    check_client_attestation,
    open_pushed_request,
)
from simtrust.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["oauth2"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FORM = 16384
#: The dashboard's authorization endpoint (the user signs in there), under the public URL.
AUTHORIZE_PATH = "/ui/oid4vci/authorize"


def _error(status: int, error: str, description: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**_NO_STORE, **headers},
    )


def _basic(header: str | None) -> tuple[str, str] | None:
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    # §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


@router.post(
    "/oauth2/token",
    summary="OAuth 2.0 token endpoint (client credentials with an API key)",
    responses={
        400: {"description": "invalid_request or unsupported_grant_type (RFC 6749 §5.2)",
              "content": {"application/json": {}}},
        401: {"description": "invalid_client", "content": {"application/json": {}}},
    },
)
async def token(request: Request, rt: CurrentRuntime) -> JSONResponse:
    params = await _form(request)
    if isinstance(params, JSONResponse):
        return params
    grant = params.get("grant_type")
    if grant is None:
        return _error(400, "invalid_request", "grant_type is required")
    if grant in (PRE_AUTHORIZED_GRANT, AUTHORIZATION_CODE_GRANT, REFRESH_GRANT):
        return _wallet_token(request, rt, params)
    if grant != "client_credentials":
        return _error(400, "unsupported_grant_type", "client_credentials, authorization_code,"
                      " refresh_token and the pre-authorized code grant are supported")  # fmt: skip
    basic = _basic(request.headers.get("authorization"))
    in_body = "client_secret" in params
    if basic is not None and in_body:
        return _error(400, "invalid_request", "use one client authentication method")
    client_id, secret = (
        basic
        if basic is not None
        else (params.get("client_id", ""), params.get("client_secret", ""))
    )
    challenge = {"WWW-Authenticate": 'Basic realm="simtrust"'}
    try:
        key = rt.tenants.authenticate(secret)
    except AuthenticationRequired:
        return _error(401, "invalid_client", "client authentication failed", **challenge)
    if key.id != client_id:
        return _error(401, "invalid_client", "client authentication failed", **challenge)
    issued = mint(rt.keyring, key)
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    }
    rt.audit.append(
        actor=f"apikey:{key.id}", action="oauth2.token", subject=key.id, outcome="success",
        details={"grant_type": grant},
    )  # fmt: skip
    return JSONResponse(body, headers=_NO_STORE)


def _attested(request: Request, rt: Runtime, params: dict[str, str]) -> JSONResponse | None:
    """With trusted wallet providers configured, the wallet's attestation (client auth of
    draft-ietf-oauth-attestation-based-client-auth) is required; the error, or None.
    A signed request object (``request``) is opened with the attested key (RFC 9126 §3)."""
    if not rt.settings.wallet_providers:
        return None
    providers = json.loads(Path(rt.settings.wallet_providers).read_text(encoding="utf-8"))
    service = rt.identity
    try:
        client_id, key = check_client_attestation(
            request.headers.get(ATTESTATION_HEADER), request.headers.get(ATTESTATION_POP_HEADER),
            client_id=params.get("client_id", ""), audience=rt.settings.public_url,
            providers=providers, now=service.now(),
            spend_jti=service.oid4vci_tokens.dpop.spend_jti,
            take_challenge=(service.oid4vci.take_nonce
                            if rt.settings.wallet_attestation_challenge else None),
        )  # fmt: skip
        params["client_id"] = client_id
        if "request" in params and request.url.path.endswith("/par"):
            opened = open_pushed_request(params["request"], key=key, client_id=client_id,
                                         audience=rt.settings.public_url, now=service.now())
            params.clear()
            params.update(opened)
    except ProtocolError as exc:
        if exc.error == "use_attestation_challenge":  # §8: a fresh one with the refusal
            return _error(exc.http_status, exc.error, exc.detail,
                          **{ATTESTATION_CHALLENGE_HEADER: _challenge(rt)})
        return _error(exc.http_status, exc.error, exc.detail)
    return None


def _challenge(rt: Runtime) -> str:
    value: str = rt.identity.oid4vci.nonce(now=rt.identity.now())["c_nonce"]
    return value


@router.post(
    "/oauth2/challenge",
    summary="A wallet attestation challenge (draft-ietf-oauth-attestation-based-client-auth"
            " §8), for the PoP's challenge claim",
    responses={429: RATE_LIMITED},
)
def attestation_challenge(request: Request, rt: CurrentRuntime) -> JSONResponse:
    # Unauthenticated and each answer is a stored row: charged per address like the nonce.
    oid4vci_limiter(request, rt).take(client_address(request))
    return JSONResponse({"attestation_challenge": _challenge(rt)}, headers=_NO_STORE)


def _wallet_token(request: Request, rt: Runtime, params: dict[str, str]) -> JSONResponse:
    """OpenID4VCI 1.0 §6 grants and their refresh (RFC 6749 §6), public clients, with an
    optional DPoP proof binding the tokens (RFC 9449 §5); a fresh ``DPoP-Nonce`` each time."""
    grant = params["grant_type"]
    if grant != PRE_AUTHORIZED_GRANT and (
        "client_secret" in params or request.headers.get("authorization")
    ):
        return _error(401, "invalid_client", "wallets are public clients (method none)")
    if grant != PRE_AUTHORIZED_GRANT and (refused := _attested(request, rt, params)):
        return refused
    proofs = request.headers.getlist("dpop")
    if len(proofs) > 1:
        return _error(400, "invalid_dpop_proof", "one DPoP header (RFC 9449 §4.3)")
    service = rt.identity
    now = service.now()
    nonce = {"DPoP-Nonce": service.oid4vci_tokens.dpop.nonce(now=now)}
    try:
        response = service.oid4vci_tokens.token(
            params, dpop_proof=proofs[0] if proofs else None,
            url=f"{rt.settings.public_url}/oauth2/token", now=now,
        )  # fmt: skip
    except ProtocolError as exc:
        if grant != PRE_AUTHORIZED_GRANT:
            rt.audit.append(actor=f"oauth2:{params.get('client_id', '')[:100]}",
                            action="oid4vci.token", subject=grant, outcome="failure",
                            details={"error": exc.error})  # fmt: skip
        return _error(exc.http_status, exc.error, exc.detail, **nonce)
    return JSONResponse(response, headers={**_NO_STORE, **nonce})


async def _form(request: Request) -> dict[str, str] | JSONResponse:
    """One flat ``application/x-www-form-urlencoded`` form, or the RFC 6749 §5.2 error."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
    raw = await request.body()
    if len(raw) > _MAX_FORM:
        return _error(400, "invalid_request", "the form is too large")
    try:
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return _error(400, "invalid_request", "the form does not decode")
    if any(len(values) > 1 for values in form.values()):
        return _error(400, "invalid_request", "a parameter is repeated")
    return {k: v[0] for k, v in form.items()}


@router.post(
    "/oauth2/par",
    status_code=201,
    summary="Pushed authorization request of a wallet (RFC 9126, OpenID4VCI §5.1)",
    responses={
        201: {"description": "request_uri and expires_in (RFC 9126 §2.2)",
              "content": {"application/json": {}}},
        400: {"description": "RFC 6749 §4.1.2.1 / RFC 9126 §2.3 error",
              "content": {"application/json": {}}},
        401: {"description": "invalid_client", "content": {"application/json": {}}},
        429: RATE_LIMITED,
    },
)
async def pushed_authorization_request(request: Request, rt: CurrentRuntime) -> JSONResponse:
    # RFC 9126 §7.4 (PAR is unauthenticated for public clients): the address is charged
    # before the body is read, the claimed client_id once the form parses.
    limiter = oid4vci_limiter(request, rt)
    address = client_address(request)
    limiter.take(address)
    params = await _form(request)
    if isinstance(params, JSONResponse):
        return params
    limiter.take("client_id:" + params.get("client_id", "")[:200])
    if "client_secret" in params or request.headers.get("authorization"):
        return _error(401, "invalid_client", "wallets are public clients (method none)")
    if refused := _attested(request, rt, params):
        return refused
    service = rt.identity
    proofs = request.headers.getlist("dpop")
    try:
        if len(proofs) > 1:
            raise ProtocolError("invalid_dpop_proof", "one DPoP header (RFC 9449 §4.3)")
        if proofs:
            # RFC 9449 §10.1: the proof's key is the one the code will be redeemed with.
            jkt = service.oid4vci_tokens.dpop.check(
                proofs[0], method="POST", url=f"{rt.settings.public_url}/oauth2/par",
                now=service.now(), require_nonce=False,
            )  # fmt: skip
            if params.setdefault("dpop_jkt", jkt) != jkt:
                raise ProtocolError("invalid_dpop_proof", "dpop_jkt is not the proof's key")
        response = service.oid4vci.authorization.push(params, now=service.now())
    except ProtocolError as exc:
        return _error(exc.http_status, exc.error, exc.detail)
    return JSONResponse(response, status_code=201, headers=_NO_STORE)


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="OAuth 2.0 authorization server metadata (RFC 8414)",
)
def metadata(rt: CurrentRuntime) -> dict[str, Any]:
    base = rt.settings.public_url
    return {
        "issuer": base,
        "token_endpoint": f"{base}/oauth2/token",
        "authorization_endpoint": f"{base}{AUTHORIZE_PATH}",
        "pushed_authorization_request_endpoint": f"{base}/oauth2/par",
        "challenge_endpoint": f"{base}/oauth2/challenge",
        "require_pushed_authorization_requests": True,
        "grant_types_supported": ["client_credentials", AUTHORIZATION_CODE_GRANT,
                                  PRE_AUTHORIZED_GRANT, REFRESH_GRANT],
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "pre-authorized_grant_anonymous_access_supported": True,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none", "attest_jwt_client_auth"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_details_types_supported": ["openid_credential"],
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": rt.identity.oid4vci.authorization.scopes(),
    }
