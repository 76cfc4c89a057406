"""Token endpoint of the OpenID4VCI grants: refresh tokens and DPoP-bound access tokens.

Covered: the pre-authorized code and authorization code grants (OpenID4VCI
1.0 §6, issued by :class:`CredentialIssuer`) answered with a **refresh token**
(RFC 6749 §1.5, §5.1), the ``refresh_token`` grant (RFC 6749 §6) with
**rotation** and **reuse detection** (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1: a
refresh token is single use; presenting a used one revokes the whole grant:
every refresh token of the offer and its current access token); **DPoP**
(RFC 9449): a proof at the token endpoint binds the access token (``token_type``
``DPoP``, §5) and the refresh token (§5.0, public clients) to the key's
thumbprint; a DPoP-bound access token is accepted at the credential and
deferred credential endpoints only with the ``DPoP`` scheme and a proof with
``ath`` from the same key (§7); a pushed authorization request's
``dpop_jkt`` or DPoP proof binds the code to that key (§10).

Refresh tokens are stored as SHA-256 digests in ``identity_oid4vci_refresh``
with the offer they grant access to, the ``client_id`` (RFC 6749 §6: bound
to the client it was issued to) and the key thumbprint; a grant lives one day
from the first token whatever the rotations (absolute lifetime). Decision:
docs/decisions/identity-oid4vci-refresh-dpop.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from simtrust.identity._authcode import AUTHORIZATION_CODE_GRANT
from simtrust.identity._dpop import DpopProofs
from simtrust.identity._errors import ProtocolError
from simtrust.identity._oid4vci import PRE_AUTHORIZED_GRANT, CredentialIssuer
from simtrust.identity._time import format_datetime, parse_datetime
from simtrust.store import Database

__all__ = ["REFRESH_GRANT", "IssuerTokens"]

REFRESH_GRANT = "refresh_token"
_GRANT_LIFETIME = timedelta(days=1)
_ACCESS_LIFETIME = timedelta(minutes=10)
_MAX_TOKEN = 512


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class IssuerTokens:
    """Token responses with refresh tokens, and the check of presented access tokens."""

    __slots__ = ("_db", "_issuer", "dpop")

    def __init__(self, db: Database, issuer: CredentialIssuer, dpop: DpopProofs) -> None:
        self._db = db
        self._issuer = issuer
        self.dpop = dpop

    # -- token endpoint

    def token(self, params: Mapping[str, str], *, dpop_proof: str | None, url: str,
              now: datetime) -> dict[str, Any]:  # fmt: skip
        """The token response of an OpenID4VCI grant or a refresh; ProtocolError otherwise.

        ``url`` is the token endpoint's public URL (the proof's ``htu``).
        """
        jkt = None
        if dpop_proof is not None:
            jkt = self.dpop.check(dpop_proof, method="POST", url=url, now=now)
        grant = params.get("grant_type")
        client_id = params.get("client_id", "")
        if grant == REFRESH_GRANT:
            return self._refresh(params, jkt=jkt, now=now)
        if grant == PRE_AUTHORIZED_GRANT:
            response = self._issuer.redeem(params, now=now)
        elif grant == AUTHORIZATION_CODE_GRANT:
            response = self._issuer.redeem_code(params, now=now, dpop_jkt=jkt)
        else:
            raise ProtocolError("unsupported_grant_type", "not an OpenID4VCI grant")
        access = str(response["access_token"])
        with self._db.transaction(durable=True):
            row = self._db.query_one(
                "SELECT offer_id FROM identity_oid4vci_offer WHERE token_hash = ?",
                (_digest(access),),
            )
            assert row is not None
            if jkt is not None:
                self._db.execute("UPDATE identity_oid4vci_offer SET token_jkt = ?"
                                 " WHERE offer_id = ?", (jkt, row[0]))  # fmt: skip
            refresh = self._new_refresh(str(row[0]), client_id, jkt, now + _GRANT_LIFETIME, now)
        response["refresh_token"] = refresh
        if jkt is not None:
            response["token_type"] = "DPoP"  # noqa: S105 - RFC 9449 §5 token type
        return response

    def _new_refresh(self, offer_id: str, client_id: str, jkt: str | None, expires: datetime,
                     now: datetime) -> str:  # fmt: skip
        refresh = secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO identity_oid4vci_refresh (token_hash, offer_id, client_id, jkt,"
            " expires, created) VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(refresh), offer_id, client_id, jkt, format_datetime(expires),
             format_datetime(now)),
        )  # fmt: skip
        return refresh

    def _refresh(self, params: Mapping[str, str], *, jkt: str | None,
                 now: datetime) -> dict[str, Any]:  # fmt: skip
        """RFC 6749 §6 with rotation; a reused refresh token revokes its grant."""
        presented = params.get("refresh_token")
        if not presented or len(presented) > _MAX_TOKEN:
            raise ProtocolError("invalid_request", "refresh_token is required")
        if "scope" in params:
            raise ProtocolError("invalid_scope", "a refresh keeps the grant's scope; omit scope")
        access = secrets.token_urlsafe(32)
        failure: ProtocolError | None = None
        with self._db.transaction(durable=True):
            row = self._db.query_one(
                "SELECT offer_id, client_id, jkt, expires, used FROM identity_oid4vci_refresh"
                " WHERE token_hash = ?",
                (_digest(presented),),
            )
            if row is None:
                raise ProtocolError("invalid_grant", "the refresh token is not known")
            offer_id, bound_client, bound_jkt, expires, used = row
            taken = 0 if used is not None else self._db.execute(
                "UPDATE identity_oid4vci_refresh SET used = ? WHERE token_hash = ?"
                " AND used IS NULL",
                (format_datetime(now), _digest(presented)),
            )  # fmt: skip
            if taken == 0:
                self._revoke(str(offer_id), now)
                failure = ProtocolError("invalid_grant", "the refresh token was already used;"
                                        " the grant is revoked")  # fmt: skip
            elif parse_datetime(str(expires), "expires") < now:
                failure = ProtocolError("invalid_grant", "the refresh token has expired")
            elif not hmac.compare_digest(str(bound_client).encode(),
                                         params.get("client_id", "").encode()):  # fmt: skip
                failure = ProtocolError("invalid_grant", "the refresh token was issued to"
                                        " another client_id")  # fmt: skip
            elif bound_jkt is not None and bound_jkt != jkt:
                # RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
                failure = ProtocolError("invalid_dpop_proof", "the refresh token is bound to a"
                                        " DPoP key; prove it")  # fmt: skip
            else:
                self._db.execute(
                    "UPDATE identity_oid4vci_offer SET token_hash = ?, token_expires = ?,"
                    " token_jkt = ? WHERE offer_id = ?",
                    (_digest(access), format_datetime(now + _ACCESS_LIFETIME),
                     bound_jkt if bound_jkt is not None else jkt, offer_id),
                )  # fmt: skip
                until = parse_datetime(str(expires), "expires")
                refresh = self._new_refresh(str(offer_id), str(bound_client), bound_jkt, until, now)
        if failure is not None:
            raise failure
        bound = bound_jkt if bound_jkt is not None else jkt
        return {
            "access_token": access,
            "token_type": "DPoP" if bound is not None else "Bearer",
            "expires_in": int(_ACCESS_LIFETIME.total_seconds()),
            "refresh_token": refresh,
        }

    def _revoke(self, offer_id: str, now: datetime) -> None:
        """End a grant: every refresh token of the offer, and its access token."""
        self._db.execute("UPDATE identity_oid4vci_refresh SET used = ? WHERE offer_id = ?"
                         " AND used IS NULL", (format_datetime(now), offer_id))  # fmt: skip
        self._db.execute(
            "UPDATE identity_oid4vci_offer SET token_expires = ? WHERE offer_id = ?",
            (format_datetime(datetime.fromtimestamp(0, now.tzinfo)), offer_id),
        )

    # -- credential and deferred credential endpoints (RFC 9449 §7)

    def presented(self, authorization: str, dpop_proof: str | None, *, method: str, url: str,
                  now: datetime) -> str:  # fmt: skip
        """The access token of an ``Authorization`` header, checked against its binding.

        A DPoP-bound token needs the ``DPoP`` scheme and a proof with ``ath`` by its
        key; an unbound one the ``Bearer`` scheme. Errors are 401 ``invalid_token``,
        ``invalid_dpop_proof`` or ``use_dpop_nonce`` (RFC 6750 §3.1, RFC 9449 §7.1).
        Whether the token is known and live is the endpoint's own check.
        """
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        scheme = scheme.lower()
        if scheme not in ("bearer", "dpop") or not token:
            raise ProtocolError("invalid_token", "a Bearer or DPoP access token is required",
                                http_status=401)  # fmt: skip
        if len(token) > _MAX_TOKEN:
            raise ProtocolError("invalid_token", "the access token is unknown", http_status=401)
        row = self._db.query_one(
            "SELECT token_jkt FROM identity_oid4vci_offer WHERE token_hash = ?",
            (_digest(token),),
        )
        bound = None if row is None else row[0]
        if bound is None:
            if scheme == "dpop":
                raise ProtocolError("invalid_token", "the access token is not DPoP-bound",
                                    http_status=401)  # fmt: skip
            return token
        if scheme != "dpop":
            raise ProtocolError("invalid_token", "a DPoP-bound access token is presented with"
                                " the DPoP scheme", http_status=401)  # fmt: skip
        try:
            jkt = self.dpop.check(dpop_proof, method=method, url=url, now=now,
                                  access_token=token)  # fmt: skip
        except ProtocolError as exc:
            raise ProtocolError(exc.error, exc.detail, http_status=401) from exc
        if not hmac.compare_digest(str(bound).encode(), jkt.encode()):
            raise ProtocolError("invalid_dpop_proof", "the proof's key is not the one the access"
                                " token is bound to", http_status=401)  # fmt: skip
        return token
