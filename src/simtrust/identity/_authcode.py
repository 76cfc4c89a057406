"""OpenID4VCI 1.0 authorization code flow: pushed requests, codes and their redemption.

Covered: the authorization request of OpenID4VCI 1.0 §5.1 with
``authorization_details`` of type ``openid_credential`` (§5.1.1, RFC 9396 §2)
or a credential configuration's ``scope`` (§5.1.2), ``issuer_state`` from a
credential offer (§4.1.1, §5.1.3) and the ``resource`` indicator (RFC 8707
§2); Pushed Authorization Requests (RFC 9126 §2.1-§2.3, required as HAIP
1.0 §5 expects: the authorization endpoint takes only a ``request_uri``);
PKCE (RFC 7636 §4.1-§4.6) with ``S256`` only; the authorization response
(RFC 6749 §4.1.2, ``iss`` per RFC 9207 §2) and its errors (§4.1.2.1); the
token request of the ``authorization_code`` grant (RFC 6749 §4.1.3, OpenID4VCI
§6.1) with its errors (RFC 6749 §5.2) and the token response's
``authorization_details`` with ``credential_identifiers`` (OpenID4VCI §6.2).

Who the end user is, and how they authenticate at the authorization endpoint,
is the caller's: the dashboard passes the tenant of its signed-in session
(docs/decisions/identity-oid4vci-authorization-code.md). An offer with the
authorization code grant names the tenant that may authorize it. Wallets are
public clients (RFC 6749 §2.1, ``token_endpoint_auth_method`` ``none``): the
code is bound to the ``client_id``, the ``redirect_uri`` and the PKCE
challenge of the pushed request.

Pushed requests and codes are rows of ``identity_oid4vci_authz`` (request
URIs and codes as SHA-256 digests), written in durable transactions: a code
handed to a wallet survives a restart, and every request URI and code is
single use across workers (a conditional ``UPDATE``, not a read-then-write).
A replayed code is refused and the access token issued from it revoked
(RFC 6749 §4.1.2, §10.5).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from simtrust.identity._errors import ProtocolError
from simtrust.identity._multibase import b64url_encode
from simtrust.identity._time import format_datetime, parse_datetime
from simtrust.store import Database

__all__ = [
    "AUTHORIZATION_CODE_GRANT",
    "REQUEST_URI_PREFIX",
    "AuthorizationCodeFlow",
    "PendingAuthorization",
    "parse_authorization_details",
    "pkce_challenge",
]

AUTHORIZATION_CODE_GRANT = "authorization_code"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
_REQUEST_LIFETIME = timedelta(seconds=90)  # RFC 9126 §2.2: short-lived
_CODE_LIFETIME = timedelta(minutes=2)  # RFC 6749 §4.1.2: "a maximum ... of 10 minutes"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")  # base64url of SHA-256, no padding
_MAX_PARAM = 2048
_MAX_DETAILS = 8192


def pkce_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(code_verifier)))`` (RFC 7636 §4.2, S256)."""
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_authorization_details(raw: str, issuer_url: str, known: set[str]) -> str:
    """The one credential configuration an ``authorization_details`` value asks for.

    OpenID4VCI §5.1.1: a JSON array of objects with ``type`` ``openid_credential``
    and ``credential_configuration_id``; ``locations``, when present, names this
    issuer. Raises ProtocolError ``invalid_authorization_details`` (RFC 9396 §5).
    """

    def bad(detail: str) -> ProtocolError:
        return ProtocolError("invalid_authorization_details", detail)

    if len(raw) > _MAX_DETAILS:
        raise bad("authorization_details is too long")
    try:
        details = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad("authorization_details is not JSON") from exc
    if not isinstance(details, list) or not details:
        raise bad("authorization_details is a non-empty JSON array (RFC 9396 §2)")
    if len(details) != 1:
        raise bad("this issuer grants one credential configuration per authorization")
    entry = details[0]
    if not isinstance(entry, dict):
        raise bad("each authorization_details entry is a JSON object")
    if entry.get("type") != "openid_credential":
        raise bad("the authorization_details type must be openid_credential (§5.1.1)")
    if "format" in entry:
        raise bad("format in authorization_details is from drafts; use"
                  " credential_configuration_id (§5.1.1)")  # fmt: skip
    wanted = entry.get("credential_configuration_id")
    if not isinstance(wanted, str) or not wanted:
        raise bad("credential_configuration_id is required (§5.1.1)")
    if wanted not in known:
        raise bad(f"unknown credential_configuration_id {wanted[:100]!r}")
    locations = entry.get("locations")
    if locations is not None and (
        not isinstance(locations, list) or issuer_url not in locations
    ):
        raise bad("locations must be an array naming this credential issuer (§5.1.1)")
    if "claims" in entry and not isinstance(entry["claims"], list):
        raise bad("claims in authorization_details is an array of claims path queries")
    return wanted


def _redirect_uri(value: str) -> str:
    """An absolute redirect URI without fragment (RFC 6749 §3.1.2); https, loopback
    http or a private-use scheme as native wallets register (RFC 8252 §7)."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ProtocolError("invalid_request", "redirect_uri is not a URI") from exc
    if not parts.scheme or parts.fragment or "#" in value:
        raise ProtocolError("invalid_request", "redirect_uri is absolute and has no fragment")
    scheme = parts.scheme.lower()
    if scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ProtocolError("invalid_request", "an http redirect_uri must be a loopback one")
    if scheme in ("https", "http") and not parts.hostname:
        raise ProtocolError("invalid_request", "redirect_uri names no host")
    if scheme in ("javascript", "data", "file", "vbscript"):
        raise ProtocolError("invalid_request", f"redirect_uri scheme {scheme} is not allowed")
    return value


class PendingAuthorization:
    """A pushed request the end user is asked about (shown on the consent page)."""

    __slots__ = ("client_id", "configuration_id", "redirect_uri", "state")

    def __init__(self, client_id: str, configuration_id: str, redirect_uri: str,
                 state: str | None) -> None:  # fmt: skip
        self.client_id = client_id
        self.configuration_id = configuration_id
        self.redirect_uri = redirect_uri
        self.state = state

    def __repr__(self) -> str:
        return f"PendingAuthorization(client_id={self.client_id!r}, {self.configuration_id})"


class AuthorizationCodeFlow:
    """PAR, authorization and code redemption for one credential issuer (its own AS)."""

    __slots__ = ("_db", "_scopes", "issuer_url")

    def __init__(self, db: Database, *, issuer_url: str, scopes: Mapping[str, str]) -> None:
        self._db = db
        self.issuer_url = issuer_url.rstrip("/")
        #: scope value → credential configuration id (OpenID4VCI §5.1.2)
        self._scopes = dict(scopes)

    def scopes(self) -> list[str]:
        """The scope values wallets may ask for (RFC 8414 ``scopes_supported``)."""
        return sorted(self._scopes)

    # -- pushed authorization request (RFC 9126 §2)

    def push(self, params: Mapping[str, str], *, now: datetime) -> dict[str, Any]:
        """Validate a pushed authorization request; answer ``request_uri``/``expires_in``."""
        for name, value in params.items():
            limit = _MAX_DETAILS if name == "authorization_details" else _MAX_PARAM
            if len(value) > limit:
                raise ProtocolError("invalid_request", f"{name[:40]} is too long")
        if "request_uri" in params:
            raise ProtocolError("invalid_request", "a pushed request carries no request_uri"
                                " (RFC 9126 §2.1)")  # fmt: skip
        if "request" in params:
            raise ProtocolError("request_not_supported", "signed request objects are not"
                                " supported; push the parameters")  # fmt: skip
        if "response_type" not in params:
            raise ProtocolError("invalid_request", "response_type is required")
        if params["response_type"] != "code":
            raise ProtocolError("unsupported_response_type", "response_type must be code")
        client_id = params.get("client_id", "")
        if not client_id:
            raise ProtocolError("invalid_request", "client_id is required")
        redirect = params.get("redirect_uri")
        if not redirect:
            raise ProtocolError("invalid_request", "redirect_uri is required")
        _redirect_uri(redirect)
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        if not challenge:
            raise ProtocolError("invalid_request", "code_challenge is required (PKCE)")
        if method != "S256":
            raise ProtocolError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise ProtocolError("invalid_request", "code_challenge is not a base64url SHA-256")
        resource = params.get("resource")
        if resource is not None and resource.rstrip("/") != self.issuer_url:
            raise ProtocolError("invalid_target", "resource must be this credential issuer")
        configuration, details = self._requested(params)
        issuer_state = params.get("issuer_state")
        if issuer_state is not None:
            row = self._db.query_one(
                "SELECT configuration_id, expires, token_hash FROM identity_oid4vci_offer"
                " WHERE issuer_state_hash = ?",
                (_digest(issuer_state),),
            )
            if row is None or row[2] is not None or parse_datetime(str(row[1]), "expires") < now:
                raise ProtocolError("invalid_request", "issuer_state names no open offer")
            if str(row[0]) != configuration:
                raise ProtocolError(
                    "invalid_request", "the offer of issuer_state is for another credential"
                )
        state = params.get("state")
        jkt = params.get("dpop_jkt")
        if jkt is not None and not _CHALLENGE.fullmatch(jkt):
            raise ProtocolError("invalid_request", "dpop_jkt is a base64url SHA-256 thumbprint")
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
        with self._db.transaction(durable=True):
            self._db.execute(
                "DELETE FROM identity_oid4vci_authz"
                " WHERE code_hash IS NULL AND request_expires < ?",
                (format_datetime(now),),
            )
            self._db.execute(
                "INSERT INTO identity_oid4vci_authz (request_hash, client_id, redirect_uri,"
                " code_challenge, state, configuration_id, details, issuer_state_hash,"
                " request_expires, created, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _digest(request_uri), client_id, redirect, challenge, state, configuration,
                    details, None if issuer_state is None else _digest(issuer_state),
                    format_datetime(now + _REQUEST_LIFETIME), format_datetime(now), jkt,
                ),
            )  # fmt: skip
        return {"request_uri": request_uri, "expires_in": int(_REQUEST_LIFETIME.total_seconds())}

    def _requested(self, params: Mapping[str, str]) -> tuple[str, str]:
        """The configuration asked for, and ``details`` or ``scope`` (how it was asked)."""
        raw_details, scope = params.get("authorization_details"), params.get("scope")
        if raw_details is not None and scope is not None:
            raise ProtocolError("invalid_request", "ask by authorization_details or by scope")
        if raw_details is not None:
            known = set(self._scopes.values())
            return parse_authorization_details(raw_details, self.issuer_url, known), "details"
        if scope is None:
            raise ProtocolError("invalid_request", "authorization_details or scope is required"
                                " (OpenID4VCI §5.1)")  # fmt: skip
        values = scope.split()
        unknown = [v for v in values if v not in self._scopes]
        if unknown or len(values) != 1:
            raise ProtocolError("invalid_scope", "scope names one credential configuration's"
                                f" scope; known: {sorted(self._scopes)}")  # fmt: skip
        return self._scopes[values[0]], "scope"

    # -- authorization endpoint (RFC 6749 §4.1.1, RFC 9126 §4)

    def pending(self, client_id: str, request_uri: str, *, now: datetime) -> PendingAuthorization:
        """The pushed request behind ``request_uri``; ProtocolError if it cannot be used.

        These errors are shown to the user, never redirected (RFC 6749 §4.1.2.1):
        without a valid request the redirect URI is not trustworthy.
        """
        if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
            raise ProtocolError("invalid_request_uri", "request_uri is not one this server made")
        row = self._db.query_one(
            "SELECT client_id, configuration_id, redirect_uri, state, request_expires, code_hash"
            " FROM identity_oid4vci_authz WHERE request_hash = ?",
            (_digest(request_uri),),
        )
        if row is None or row[5] is not None:
            raise ProtocolError("invalid_request_uri", "request_uri is unknown or was used")
        if parse_datetime(str(row[4]), "request_expires") < now:
            raise ProtocolError("invalid_request_uri", "request_uri has expired")
        if not hmac.compare_digest(str(row[0]).encode(), client_id.encode()):
            raise ProtocolError("invalid_request", "client_id does not match the pushed request")
        return PendingAuthorization(str(row[0]), str(row[1]), str(row[2]),
                                    None if row[3] is None else str(row[3]))  # fmt: skip

    def offer_for_request(self, request_uri: str, tenant_id: str | None, *,
                          now: datetime) -> str | None:  # fmt: skip
        """The open offer a user of ``tenant_id`` would authorize with this request."""
        row = self._db.query_one("SELECT issuer_state_hash, configuration_id FROM"
                                 " identity_oid4vci_authz WHERE request_hash = ?",
                                 (_digest(request_uri),))  # fmt: skip
        return None if row is None else self._offer_for(row[0], str(row[1]), tenant_id, now)

    def decide(
        self, client_id: str, request_uri: str, *, tenant_id: str | None, approve: bool,
        now: datetime, claims: Sequence[str] | None = None,
    ) -> tuple[str, bool]:
        """The end user's answer: the redirect URL with ``code`` (or ``error``), ``state``,
        ``iss``, and whether a code was granted.

        ``tenant_id`` is the authenticated user's tenant. The code is bound to the
        offer addressed to that tenant: the one ``issuer_state`` names, else the
        oldest open one for the requested configuration (a wallet-initiated flow).
        ``claims``: the deselectable claims the user kept (None: all of them); the
        credential carries only those and the configuration's mandatory ones.
        """
        pending = self.pending(client_id, request_uri, now=now)
        code = secrets.token_urlsafe(32)
        with self._db.transaction(durable=True):
            row = self._db.query_one(
                "SELECT issuer_state_hash FROM identity_oid4vci_authz WHERE request_hash = ?",
                (_digest(request_uri),),
            )
            assert row is not None
            offer_id = self._offer_for(row[0], pending.configuration_id, tenant_id, now)
            granted = approve and offer_id is not None
            # Single use: a request URI yields one answer, whatever it is.
            taken = self._db.execute(
                "UPDATE identity_oid4vci_authz SET code_hash = ?, code_expires = ?, offer_id = ?,"
                " consented_claims = ? WHERE request_hash = ? AND code_hash IS NULL",
                (
                    _digest(code) if granted else "denied:" + _digest(request_uri),
                    format_datetime(now + _CODE_LIFETIME), offer_id if granted else None,
                    None if claims is None else json.dumps(sorted(set(claims))),
                    _digest(request_uri),
                ),
            )  # fmt: skip
        if taken == 0:
            raise ProtocolError("invalid_request_uri", "request_uri is unknown or was used")
        answer: dict[str, str] = {}
        if granted:
            answer["code"] = code
        else:
            answer["error"] = "access_denied"
            answer["error_description"] = (
                "the user declined" if not approve
                else "no open credential offer for this account"
            )  # fmt: skip
        if pending.state is not None:
            answer["state"] = pending.state
        answer["iss"] = self.issuer_url
        separator = "&" if urlsplit(pending.redirect_uri).query else "?"
        return pending.redirect_uri + separator + urlencode(answer), granted

    def _offer_for(
        self, state_hash: object, configuration: str, tenant_id: str | None, now: datetime
    ) -> str | None:
        if tenant_id is None:
            return None
        if state_hash is not None:
            row = self._db.query_one(
                "SELECT offer_id, expires, token_hash FROM identity_oid4vci_offer"
                " WHERE issuer_state_hash = ? AND tenant_id = ?",
                (state_hash, tenant_id),
            )
            rows = [] if row is None else [row]
        else:
            rows = self._db.query(
                "SELECT offer_id, expires, token_hash FROM identity_oid4vci_offer"
                " WHERE tenant_id = ? AND configuration_id = ? AND issuer_state_hash IS NOT NULL"
                " AND token_hash IS NULL ORDER BY created, offer_id",
                (tenant_id, configuration),
            )
        for offer_id, expires, used in rows:
            if used is None and parse_datetime(str(expires), "expires") >= now:
                return str(offer_id)
        return None

    # -- token endpoint (RFC 6749 §4.1.3, OpenID4VCI §6)

    def exchange(self, params: Mapping[str, str], *, now: datetime, token: str,
                 token_expires: datetime,
                 dpop_jkt: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Check the code and bind ``token`` (a fresh access token) to its offer.

        Returns the offer id, the configuration and whether ``authorization_details``
        was used. Any failed check after the code is found spends the code (it is
        single use whatever the outcome), and a replayed code revokes the token
        issued from it.
        """
        code = params.get("code")
        verifier = params.get("code_verifier")
        redirect = params.get("redirect_uri")
        client_id = params.get("client_id")
        if not code:
            raise ProtocolError("invalid_request", "code is required")
        if not verifier:
            raise ProtocolError("invalid_request", "code_verifier is required (PKCE)")
        if not _VERIFIER.fullmatch(verifier):
            raise ProtocolError("invalid_request", "code_verifier is 43-128 unreserved characters")
        if not redirect:
            raise ProtocolError("invalid_request", "redirect_uri is required (RFC 6749 §4.1.3)")
        if not client_id:
            raise ProtocolError("invalid_request", "client_id is required for a public client")
        failure: ProtocolError | None = None
        with self._db.transaction(durable=True):
            row = self._db.query_one(
                "SELECT request_hash, client_id, redirect_uri, code_challenge, code_expires,"
                " code_used, offer_id, configuration_id, details, dpop_jkt, consented_claims"
                " FROM identity_oid4vci_authz WHERE code_hash = ?",
                (_digest(code),),
            )
            if row is None:
                raise ProtocolError("invalid_grant", "the authorization code is not known")
            request_hash, bound_client, bound_redirect, challenge, expires = row[:5]
            used, offer_id, configuration, details, bound_jkt, consented = row[5:]
            if used is not None:
                # RFC 6749 §4.1.2: a second use revokes what the first one got.
                self._db.execute(
                    "UPDATE identity_oid4vci_offer SET token_expires = ? WHERE offer_id = ?",
                    (format_datetime(datetime.fromtimestamp(0, now.tzinfo)), offer_id),
                )
                failure = ProtocolError("invalid_grant", "the authorization code was already used")
            else:
                self._db.execute(
                    "UPDATE identity_oid4vci_authz SET code_used = ? WHERE request_hash = ?"
                    " AND code_used IS NULL",
                    (format_datetime(now), request_hash),
                )
                failure = _code_failure(
                    expires=parse_datetime(str(expires), "code_expires"), now=now,
                    client=(str(bound_client), client_id), redirect=(str(bound_redirect), redirect),
                    challenge=str(challenge), verifier=verifier,
                )  # fmt: skip
                if failure is None and bound_jkt is not None and bound_jkt != dpop_jkt:
                    # RFC 9449 §10: the key of the pushed request's DPoP proof redeems it.
                    failure = ProtocolError("invalid_dpop_proof", "the code is bound to"
                                            " another DPoP key (dpop_jkt)")  # fmt: skip
            if failure is None:
                taken = self._db.execute(
                    "UPDATE identity_oid4vci_offer SET token_hash = ?, token_expires = ?,"
                    " credential_identifier = ?, consented_claims = ? WHERE offer_id = ?"
                    " AND token_hash IS NULL AND expires >= ?",
                    (
                        _digest(token), format_datetime(token_expires),
                        configuration if details == "details" else None, consented, offer_id,
                        format_datetime(now),
                    ),
                )  # fmt: skip
                if taken == 0:
                    failure = ProtocolError("invalid_grant", "the credential offer was redeemed"
                                            " or has expired")  # fmt: skip
        if failure is not None:
            raise failure
        return {"offer_id": str(offer_id), "configuration_id": str(configuration),
                "details": details == "details"}  # fmt: skip


def _code_failure(
    *, expires: datetime, now: datetime, client: tuple[str, str], redirect: tuple[str, str],
    challenge: str, verifier: str,
) -> ProtocolError | None:
    """RFC 6749 §4.1.3 and RFC 7636 §4.6 checks of a first use of a code."""
    if expires < now:
        return ProtocolError("invalid_grant", "the authorization code has expired")
    if not hmac.compare_digest(client[0].encode(), client[1].encode()):
        return ProtocolError("invalid_grant", "the code was issued to another client_id")
    if not hmac.compare_digest(redirect[0].encode(), redirect[1].encode()):
        return ProtocolError("invalid_grant", "redirect_uri differs from the authorization request")
    if not hmac.compare_digest(pkce_challenge(verifier).encode(), challenge.encode()):
        return ProtocolError("invalid_grant", "code_verifier does not match code_challenge")
    return None
