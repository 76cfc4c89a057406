"""OpenID for Verifiable Credential Issuance 1.0: the credential issuer's protocol state.

Covered (OpenID4VCI 1.0 section numbers): the credential offer by value and
by reference (§4.1, §4.1.3) with the pre-authorized code grant and an
optional transaction code (§4.1.1, §3.5), or with the authorization code
grant and its ``issuer_state`` (§4.1.1; the flow itself is _authcode.py:
PAR, PKCE, codes); the token endpoint's
``urn:ietf:params:oauth:grant-type:pre-authorized_code`` grant (§6.1, §6.2,
errors §6.3); the nonce endpoint (§7); deferred issuance (§9: the credential
endpoint answers 202 with a ``transaction_id`` until the operator approves
the offer, then the deferred credential endpoint issues); the credential endpoint (§8) with
``proofs.jwt`` key proofs (§8.2, Appendix F.1: ``typ``
``openid4vci-proof+jwt``, ``aud`` the issuer, ``iat``, the ``c_nonce``, the
key in ``jwk`` or as a ``did:key`` ``kid``, Ed25519 with EdDSA or P-256
with ES256), its errors (§8.3.1.2) and the issuer metadata (§12.2).
Offers, nonces and access tokens live in the store
(secrets only as SHA-256 digests; the offered claims sealed under the
keyring), so an offer survives a restart and every code is single-use.
What the credential says and who signs it is the caller's ``mint`` function.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from simtrust.crypto import Keyring
from simtrust.errors import InvalidInput, NotFound
from simtrust.identity._authcode import AUTHORIZATION_CODE_GRANT, AuthorizationCodeFlow
from simtrust.identity._credreq import (
    PROOF_TYP,
    check_key_proof,
    key_proof,
    one_proof,
    wanted_configuration,
)
from simtrust.identity._errors import ProtocolError
from simtrust.identity._time import format_datetime, parse_datetime
from simtrust.store import Database

__all__ = [
    "AUTHORIZATION_CODE_GRANT",
    "PRE_AUTHORIZED_GRANT",
    "PROOF_TYP",
    "CredentialConfiguration",
    "CredentialIssuer",
    "Minted",
    "key_proof",
]

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
_OFFER_LIFETIME = timedelta(minutes=15)
#: An offer the holder authorizes by signing in lives longer than a code handed over.
_AUTHORIZATION_OFFER_LIFETIME = timedelta(days=1)
_TOKEN_LIFETIME = timedelta(minutes=10)
_NONCE_LIFETIME = timedelta(minutes=5)
_MAX_TX_ATTEMPTS = 5
_DEFERRED_INTERVAL = 5


@dataclass(frozen=True, slots=True)
class CredentialConfiguration:
    """One entry of ``credential_configurations_supported`` (§12.2.4)."""

    id: str
    metadata: dict[str, Any]
    #: Checks the claims an operator offers; raises InvalidInput naming what is wrong.
    check_claims: Callable[[dict[str, Any]], None]
    #: Claims always issued; the holder may deselect the others at consent. None: the
    #: credential is issued whole (no narrowing).
    mandatory: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Minted:
    """What ``mint`` made: the credential (a string or a JSON object) and its id."""

    credential: str | dict[str, Any]
    credential_id: str


#: mint(configuration id, offered claims, holder's public JWK, holder's did:key) → credential
Mint = Callable[[str, dict[str, Any], dict[str, str], str], Minted]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class CredentialIssuer:
    """Offers, token redemption, nonces and credential requests of one issuer URL."""

    __slots__ = ("_configurations", "_db", "_display", "_keyring", "_mint", "authorization",
                 "issuer_url")

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        *,
        issuer_url: str,
        configurations: Mapping[str, CredentialConfiguration],
        mint: Mint,
        display_name: str = "simtrust",
    ) -> None:
        self._db = db
        self._keyring = keyring
        self.issuer_url = issuer_url.rstrip("/")
        self._configurations = dict(configurations)
        self._mint = mint
        self._display = display_name
        scopes = {
            str(config.metadata["scope"]): cid
            for cid, config in self._configurations.items()
            if "scope" in config.metadata
        }
        #: The authorization code flow (§3.4, §5) of this issuer, its own authorization server.
        self.authorization = AuthorizationCodeFlow(db, issuer_url=self.issuer_url, scopes=scopes)

    # -- metadata (§12.2)

    def metadata(self) -> dict[str, Any]:
        base = self.issuer_url
        return {
            "credential_issuer": base,
            "credential_endpoint": f"{base}/oid4vci/credential",
            "nonce_endpoint": f"{base}/oid4vci/nonce",
            "deferred_credential_endpoint": f"{base}/oid4vci/deferred_credential",
            "display": [{"name": self._display, "locale": "en"}],
            "credential_configurations_supported": {
                cid: config.metadata for cid, config in sorted(self._configurations.items())
            },
        }

    # -- offers (§4.1)

    def create_offer(
        self,
        configuration_id: str,
        claims: dict[str, Any],
        *,
        now: datetime,
        tx_code: bool = False,
        deferred: bool = False,
        tenant_id: str | None = None,
        authorization_code: bool = False,
    ) -> dict[str, Any]:
        """Make an offer; return the offer, its URI and the one-time secrets.

        By default the offer carries a pre-authorized code (§4.1.1). With
        ``authorization_code`` (and a ``tenant_id``) it carries the authorization
        code grant with an ``issuer_state``: the wallet sends the user to the
        authorization endpoint, where only a user of that tenant can authorize it
        (§3.4, §5.1.3).
        A ``deferred`` offer is issued only once :meth:`approve` is called (§9).
        ``tenant_id``: the tenant the credential is issued for (its dashboard lists it).
        """
        config = self._configurations.get(configuration_id)
        if config is None:
            raise InvalidInput(
                f"unknown credential configuration {configuration_id!r};"
                f" offered: {sorted(self._configurations)}"
            )
        if not isinstance(claims, dict):
            raise InvalidInput("claims must be a JSON object")
        config.check_claims(claims)
        if authorization_code and not tenant_id:
            raise InvalidInput("an offer with the authorization code grant names the tenant"
                               " whose user authorizes it (tenantId)")  # fmt: skip
        if authorization_code and tx_code:
            raise InvalidInput("tx_code belongs to the pre-authorized code grant, not to an"
                               " offer the holder authorizes by signing in")  # fmt: skip
        offer_id = secrets.token_urlsafe(16)
        # With the authorization code grant this pre-authorized code is never handed out.
        code = secrets.token_urlsafe(32)
        issuer_state = secrets.token_urlsafe(32) if authorization_code else None
        pin = "".join(secrets.choice("0123456789") for _ in range(6)) if tx_code else None
        grant: dict[str, Any] = {"pre-authorized_code": code}
        if pin is not None:
            grant["tx_code"] = {
                "input_mode": "numeric",
                "length": 6,
                "description": "The code the operator gave you out of band",
            }
        grants: dict[str, Any] = (
            {PRE_AUTHORIZED_GRANT: grant} if issuer_state is None
            else {AUTHORIZATION_CODE_GRANT: {"issuer_state": issuer_state}}
        )  # fmt: skip
        lifetime = _AUTHORIZATION_OFFER_LIFETIME if authorization_code else _OFFER_LIFETIME
        offer = {
            "credential_issuer": self.issuer_url,
            "credential_configuration_ids": [configuration_id],
            "grants": grants,
        }
        sealed = self._keyring.seal(
            json.dumps(claims, ensure_ascii=False).encode("utf-8"), self._aad(offer_id)
        )
        sealed_offer = self._keyring.seal(
            json.dumps(offer, separators=(",", ":")).encode("utf-8"), self._aad(offer_id, "offer")
        )
        with self._db.transaction(durable=True):
            self._db.execute(
                "INSERT INTO identity_oid4vci_offer (offer_id, code_hash, configuration_id,"
                " claims_sealed, offer_sealed, tx_code_hash, created, expires, tx_attempts,"
                " deferred, tenant_id, issuer_state_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (
                    offer_id,
                    _digest(code),
                    configuration_id,
                    sealed,
                    sealed_offer,
                    None if pin is None else _digest(pin),
                    format_datetime(now),
                    format_datetime(now + lifetime),
                    int(deferred),
                    tenant_id,
                    None if issuer_state is None else _digest(issuer_state),
                ),
            )
        offer_uri = f"{self.issuer_url}/oid4vci/offers/{offer_id}"
        result: dict[str, Any] = {
            "offerId": offer_id,
            "credentialOffer": offer,
            "credentialOfferUri": offer_uri,
            "offerUrl": "openid-credential-offer://?credential_offer_uri=" + quote(offer_uri, ""),
            "offerUrlByValue": "openid-credential-offer://?credential_offer="
            + quote(json.dumps(offer, separators=(",", ":")), ""),
            "expiresAt": format_datetime(now + lifetime),
        }
        if pin is not None:
            result["txCode"] = pin
        return result

    def offer(self, offer_id: str, *, now: datetime) -> dict[str, Any]:
        """The offer served at its ``credential_offer_uri`` (§4.1.3), while it is unused."""
        row = self._db.query_one(
            "SELECT expires, offer_sealed, token_hash FROM identity_oid4vci_offer"
            " WHERE offer_id = ?",
            (offer_id,),
        )
        if row is None or row[2] is not None:
            raise NotFound("no such credential offer (or it was redeemed)")
        if parse_datetime(str(row[0]), "expires") < now:
            raise NotFound("the credential offer has expired")
        document: dict[str, Any] = json.loads(
            self._keyring.open(bytes(row[1]), self._aad(offer_id, "offer"))
        )
        return document

    def _claims(self, offer_id: str, configuration_id: str) -> dict[str, Any]:
        """The offered claims, narrowed to what the holder consented to (mandatory ones stay)."""
        row = self._db.query_one(
            "SELECT claims_sealed, consented_claims FROM identity_oid4vci_offer"
            " WHERE offer_id = ?", (offer_id,))  # fmt: skip
        assert row is not None
        claims: dict[str, Any] = json.loads(self._keyring.open(bytes(row[0]), self._aad(offer_id)))
        mandatory = self._configurations[configuration_id].mandatory
        if row[1] is None or mandatory is None:
            return claims
        kept = set(json.loads(str(row[1]))) | mandatory
        return {name: value for name, value in claims.items() if name in kept}

    def consent(self, client_id: str, request_uri: str, *, tenant_id: str | None,
                now: datetime) -> list[str]:  # fmt: skip
        """The claims of the offer a user would authorize that they may deselect (§5)."""
        pending = self.authorization.pending(client_id, request_uri, now=now)
        mandatory = self._configurations[pending.configuration_id].mandatory
        offer_id = self.authorization.offer_for_request(request_uri, tenant_id, now=now)
        if mandatory is None or offer_id is None:
            return []
        return sorted(set(self._claims(offer_id, pending.configuration_id)) - mandatory)

    def _aad(self, offer_id: str, field: str = "claims") -> bytes:
        return f"identity_oid4vci_offer:{offer_id}:{field}".encode()

    # -- token endpoint (§6)

    def redeem(self, params: Mapping[str, str], *, now: datetime) -> dict[str, Any]:
        """The token response for a pre-authorized code grant; raise ProtocolError (§6.3)."""
        code = params.get("pre-authorized_code")
        if not code:
            raise ProtocolError("invalid_request", "pre-authorized_code is required")
        token = secrets.token_urlsafe(32)
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT offer_id, tx_code_hash, expires, token_hash, tx_attempts"
                " FROM identity_oid4vci_offer WHERE code_hash = ?",
                (_digest(code),),
            )
            if row is None:
                raise ProtocolError("invalid_grant", "the pre-authorized code is not known")
            offer_id, tx_hash, expires, used, attempts = row
            if used is not None:
                raise ProtocolError("invalid_grant", "the pre-authorized code was already used")
            if parse_datetime(str(expires), "expires") < now:
                raise ProtocolError("invalid_grant", "the pre-authorized code has expired")
            if tx_hash is not None:
                pin = params.get("tx_code")
                if pin is None:
                    raise ProtocolError("invalid_request", "this offer requires tx_code")
                if int(attempts) >= _MAX_TX_ATTEMPTS:
                    raise ProtocolError("invalid_grant", "too many wrong transaction codes")
                if not hmac.compare_digest(_digest(pin), str(tx_hash)):
                    self._db.execute(
                        "UPDATE identity_oid4vci_offer SET tx_attempts = tx_attempts + 1"
                        " WHERE offer_id = ?",
                        (offer_id,),
                    )
                    raise ProtocolError("invalid_grant", "the transaction code is wrong")
            elif "tx_code" in params:
                raise ProtocolError("invalid_request", "this offer has no tx_code")
            self._db.execute(
                "UPDATE identity_oid4vci_offer SET token_hash = ?, token_expires = ?"
                " WHERE offer_id = ?",
                (_digest(token), format_datetime(now + _TOKEN_LIFETIME), offer_id),
            )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(_TOKEN_LIFETIME.total_seconds()),
        }

    def redeem_code(self, params: Mapping[str, str], *, now: datetime,
                    dpop_jkt: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The token response for the ``authorization_code`` grant (§6.1, §6.2)."""
        token = secrets.token_urlsafe(32)
        bound = self.authorization.exchange(params, now=now, token=token, dpop_jkt=dpop_jkt,
                                            token_expires=now + _TOKEN_LIFETIME)  # fmt: skip
        response: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(_TOKEN_LIFETIME.total_seconds()),
        }
        if bound["details"]:
            # §6.2: the identifiers the credential request then names (§8.2).
            response["authorization_details"] = [{
                "type": "openid_credential",
                "credential_configuration_id": bound["configuration_id"],
                "credential_identifiers": [bound["configuration_id"]],
            }]  # fmt: skip
        return response

    # -- nonce endpoint (§7)

    def nonce(self, *, now: datetime) -> dict[str, Any]:
        value = secrets.token_urlsafe(24)
        with self._db.transaction():
            self._db.execute(
                "DELETE FROM identity_oid4vc_nonce WHERE expires < ?", (format_datetime(now),)
            )
            self._db.execute(
                "INSERT INTO identity_oid4vc_nonce (nonce, expires) VALUES (?, ?)",
                (value, format_datetime(now + _NONCE_LIFETIME)),
            )
        return {"c_nonce": value}

    def take_nonce(self, value: object, now: datetime) -> None:
        """Spend a nonce this issuer handed out (a wallet attestation's challenge too)."""
        self._take_nonce(value, now)

    def _take_nonce(self, value: object, now: datetime) -> None:
        if not isinstance(value, str) or not value:
            raise ProtocolError("invalid_nonce", "the key proof carries no c_nonce")
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT expires FROM identity_oid4vc_nonce WHERE nonce = ?", (value,)
            )
            if row is None:
                raise ProtocolError("invalid_nonce", "the key proof's nonce is unknown or used")
            self._db.execute("DELETE FROM identity_oid4vc_nonce WHERE nonce = ?", (value,))
        if parse_datetime(str(row[0]), "expires") < now:
            raise ProtocolError("invalid_nonce", "the key proof's nonce has expired")

    def issued_for(self, access_token: str) -> tuple[str | None, str | None]:
        """The credential id minted under ``access_token`` and the tenant it was offered for."""
        row = self._db.query_one("SELECT credential_id, tenant_id FROM identity_oid4vci_offer"
                                 " WHERE token_hash = ?", (_digest(access_token),))
        return (None, None) if row is None else (row[0] and str(row[0]), row[1] and str(row[1]))

    # -- credential endpoint (§8)

    def credential(
        self, access_token: str | None, request: object, *, now: datetime
    ) -> dict[str, Any]:
        """Check the token, the request and its key proof; mint one credential (§8.3)."""
        if not access_token:
            raise ProtocolError(
                "invalid_token", "a Bearer access token is required", http_status=401
            )
        row = self._db.query_one(
            "SELECT offer_id, configuration_id, token_expires, issued, credential_identifier"
            " FROM identity_oid4vci_offer WHERE token_hash = ?",
            (_digest(access_token),),
        )
        if row is None or parse_datetime(str(row[2]), "token_expires") < now:
            raise ProtocolError("invalid_token", "the access token is unknown or expired",
                                http_status=401)  # fmt: skip
        offer_id, configuration_id, _, issued, identifier = row
        if not isinstance(request, dict):
            raise ProtocolError("invalid_credential_request", "the request is a JSON object")
        wanted = wanted_configuration(request, identifier)
        if not isinstance(wanted, str):
            raise ProtocolError(
                "invalid_credential_request", "credential_configuration_id is required"
            )
        if wanted not in self._configurations:
            raise ProtocolError(
                "unknown_credential_configuration", f"{wanted!r} is not offered by this issuer"
            )
        if wanted != configuration_id:
            raise ProtocolError(
                "invalid_credential_request", "the access token was granted for another credential"
            )
        proof = one_proof(request)
        holder_key, holder_did, nonce = check_key_proof(proof, issuer_url=self.issuer_url, now=now)
        self._take_nonce(nonce, now)
        deferred = self._db.query_one(
            "SELECT deferred, approved FROM identity_oid4vci_offer WHERE offer_id = ?", (offer_id,)
        )
        if deferred is not None and int(deferred[0]) and deferred[1] is None:
            return self._defer(offer_id, issued, holder_key, holder_did)
        with self._db.transaction(durable=True):
            # Single use: the first request that gets here issues.
            taken = self._db.execute(
                "UPDATE identity_oid4vci_offer SET issued = ?"
                " WHERE offer_id = ? AND issued IS NULL",
                (format_datetime(now), offer_id),
            )
            if issued is not None or taken == 0:
                raise ProtocolError(
                    "invalid_credential_request", "the offered credential was already issued"
                )
        claims = self._claims(offer_id, configuration_id)
        try:
            minted = self._mint(configuration_id, claims, holder_key, holder_did)
        except BaseException:
            with self._db.transaction():
                self._db.execute(
                    "UPDATE identity_oid4vci_offer SET issued = NULL WHERE offer_id = ?",
                    (offer_id,),
                )
            raise
        with self._db.transaction(durable=True):
            self._db.execute(
                "UPDATE identity_oid4vci_offer SET credential_id = ? WHERE offer_id = ?",
                (minted.credential_id, offer_id),
            )
        return {"credentials": [{"credential": minted.credential}]}

    def _defer(
        self, offer_id: str, issued: object, holder_key: dict[str, str], holder_did: str
    ) -> dict[str, Any]:
        """Remember the proven key and answer 202 with a transaction id (§8.3, §9)."""
        transaction = secrets.token_urlsafe(24)
        with self._db.transaction(durable=True):
            taken = self._db.execute(
                "UPDATE identity_oid4vci_offer SET transaction_hash = ?, holder_jwk = ?,"
                " holder_did = ? WHERE offer_id = ? AND transaction_hash IS NULL"
                " AND issued IS NULL",
                (_digest(transaction), json.dumps(holder_key), holder_did, offer_id),
            )
            if issued is not None or taken == 0:
                raise ProtocolError(
                    "invalid_credential_request", "the offered credential was already requested"
                )
        return {"transaction_id": transaction, "interval": _DEFERRED_INTERVAL}

    def approve(self, offer_id: str, *, now: datetime) -> None:
        """The operator's go-ahead for a deferred offer (e.g. once manual KYC review is done)."""
        with self._db.transaction(durable=True):
            taken = self._db.execute(
                "UPDATE identity_oid4vci_offer SET approved = ?"
                " WHERE offer_id = ? AND deferred = 1 AND approved IS NULL",
                (format_datetime(now), offer_id),
            )
        if taken == 0:
            raise NotFound("no deferred offer waiting for approval with that id")

    def deferred_credential(
        self, access_token: str | None, request: object, *, now: datetime
    ) -> dict[str, Any]:
        """The deferred credential endpoint (§9.1): the credential once approved, else 202."""
        if not access_token:
            raise ProtocolError(
                "invalid_token", "a Bearer access token is required", http_status=401
            )
        transaction = request.get("transaction_id") if isinstance(request, dict) else None
        if not isinstance(transaction, str):
            raise ProtocolError("invalid_credential_request", "transaction_id is required")
        row = self._db.query_one(
            "SELECT offer_id, configuration_id, token_expires, approved, issued, holder_jwk,"
            " holder_did FROM identity_oid4vci_offer"
            " WHERE token_hash = ? AND transaction_hash = ?",
            (_digest(access_token), _digest(transaction)),
        )
        if row is None:
            raise ProtocolError("invalid_transaction_id", "the transaction id is not known")
        offer_id, configuration_id, token_expires, approved, issued, jwk, did = row
        if parse_datetime(str(token_expires), "token_expires") < now:
            raise ProtocolError("invalid_token", "the access token has expired", http_status=401)
        if issued is not None:
            raise ProtocolError("invalid_transaction_id", "the credential was already issued")
        if approved is None:
            return {"transaction_id": transaction, "interval": _DEFERRED_INTERVAL}
        with self._db.transaction(durable=True):
            if self._db.execute(
                "UPDATE identity_oid4vci_offer SET issued = ?"
                " WHERE offer_id = ? AND issued IS NULL",
                (format_datetime(now), offer_id),
            ) == 0:
                raise ProtocolError("invalid_transaction_id", "the credential was already issued")
        claims = self._claims(offer_id, str(configuration_id))
        try:
            minted = self._mint(str(configuration_id), claims, json.loads(str(jwk)), str(did))
        except BaseException:
            with self._db.transaction():
                self._db.execute(
                    "UPDATE identity_oid4vci_offer SET issued = NULL WHERE offer_id = ?",
                    (offer_id,),
                )
            raise
        with self._db.transaction(durable=True):
            self._db.execute(
                "UPDATE identity_oid4vci_offer SET credential_id = ? WHERE offer_id = ?",
                (minted.credential_id, offer_id),
            )
        return {"credentials": [{"credential": minted.credential}]}
