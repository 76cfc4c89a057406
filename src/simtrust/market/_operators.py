"""Consortium admission of partner operators: an operator credential beside the DID signature.

A partner's TMF request is signed with RFC 9421 by a key of its ``did:simtrust``
(``market/_federation.py``); that proves who calls, not that the caller belongs
to the consortium. When the seller names the consortium's credential issuers
(setting ``market_operator_issuers``: DIDs joined by ``,``), every partner
request must also carry, in the ``Operator-Credential`` header, a W3C Verifiable
Credential 2.0 secured as a VC-JOSE-COSE ``vc+jwt`` (compact JWS, §3.1.1) that

- is of type ``https://simtrust.dev/ns/market#OperatorCredential`` (a URL: no
  bundled context defines the term) and issued by one of those DIDs,
- names the signer's DID as ``credentialSubject.id`` (so a credential copied
  from another operator is useless without that operator's key),
- verifies (issuer key from the ledger, validity period) and is not revoked or
  suspended: its ``BitstringStatusListEntry`` is read from the issuer's status
  list, whose digest the ledger anchors (W3C Bitstring Status List §3.2).

A consortium issuer is usually another node: its status list is read from this
node's registry when held here, otherwise fetched from the entry's
``statusListCredential`` URL over HTTP (no redirects, 1 MiB at most), and used
only when its digest is the one the ledger anchors for that list. Only the
lists of credentials that claim a configured issuer and whose issuer signature
verifies are ever fetched (the issuer is read before anything else), so a
caller cannot make the seller fetch a URL of its choosing.

The header is not among the signature's covered components: the credential is
itself signed by its issuer and bound to the signer's DID. A request without a
credential, or with one that does not verify, is refused as ``401
operator-unknown``; one whose credential is revoked or suspended as ``403
operator-revoked`` (the API renders both as RFC 9457 problems, as the TMF
``Error`` on TMF routes). With no issuers configured the consortium is open:
any ``did:simtrust`` on the ledger may trade (as before).
Decision: ``docs/decisions/market-operator-credential.md``.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import httpx

from simtrust.errors import (
    AuthenticationRequired,
    DecodeError,
    NotFound,
    PermissionDenied,
    SimtrustError,
)
from simtrust.identity import IdentityService, StatusListVerifier, verify_vc_jwt

__all__ = [
    "CREDENTIAL_HEADER",
    "OPERATOR_CREDENTIAL_TYPE",
    "OperatorAdmission",
    "OperatorRevoked",
    "OperatorUnknown",
    "StatusListFetch",
    "credential_verifier",
    "operator_credential",
]

CREDENTIAL_HEADER = "Operator-Credential"
#: A URL, as VCDM 2.0 §4.5 allows for a type no bundled context defines.
OPERATOR_CREDENTIAL_TYPE = "https://simtrust.dev/ns/market#OperatorCredential"
_CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
_MAX_TOKEN = 16384
_MAX_LIST = 1 << 20


class OperatorUnknown(AuthenticationRequired):
    """The caller is not an operator the consortium's issuers vouch for."""

    code = "operator-unknown"


class OperatorRevoked(PermissionDenied):
    """The caller's operator credential is revoked or suspended."""

    code = "operator-revoked"


def operator_credential(did: str, name: str, issuer: str) -> dict[str, Any]:
    """The unsigned ``OperatorCredential`` of ``did`` (the issuer adds status and signs)."""
    return {"@context": [_CREDENTIALS_V2],
            "type": ["VerifiableCredential", OPERATOR_CREDENTIAL_TYPE],
            "issuer": issuer,
            "credentialSubject": {"id": did, "name": name}}


def _types(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, list) else []


def _claimed_issuer(token: str) -> str | None:
    """The issuer a compact vc+jwt claims (unverified: only to pick what to verify)."""
    try:
        middle = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    except (IndexError, ValueError):
        return None
    issuer = payload.get("issuer") if isinstance(payload, dict) else None
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) else None


class StatusListFetch:
    """``fetch(url)`` of status list credentials: this node's registry, else HTTP GET."""

    def __init__(self, local: Callable[[str], dict[str, Any]],
                 transport: httpx.BaseTransport | None = None,
                 timeout: float = 5.0) -> None:
        self._local = local
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                                    transport=transport)
        self.fetched = 0

    def __repr__(self) -> str:
        return "StatusListFetch()"

    def __call__(self, url: str) -> dict[str, Any]:
        try:
            return self._local(url)
        except NotFound:
            pass
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise NotFound(f"status list {url} is not an http(s) URL")
        try:
            with self._client.stream("GET", url, headers={"Accept": "application/json"}) as r:
                if r.status_code != 200:
                    raise NotFound(f"status list {url}: status {r.status_code}")
                body = b""
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_LIST:
                        raise NotFound(f"status list {url} is over {_MAX_LIST} bytes")
        except httpx.HTTPError as exc:
            raise NotFound(f"status list {url}: {type(exc).__name__}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise DecodeError(f"status list {url} is not JSON") from None
        if not isinstance(document, dict):
            raise DecodeError(f"status list {url} is not a JSON object")
        self.fetched += 1
        return document

    def close(self) -> None:
        self._client.close()


def credential_verifier(identity: IdentityService, fetch: StatusListFetch,
                        clock: Callable[[], datetime]) -> Callable[[object], Any]:
    """verify(vc+jwt): issuer key, validity and status, lists read through ``fetch``."""

    def verify(token: object) -> Any:
        status = StatusListVerifier(fetch, identity.resolver,
                                    anchored=identity.registry.latest_status_anchor)
        return verify_vc_jwt(token, resolver=identity.resolver, now=clock(), status=status)

    return verify


class OperatorAdmission:
    """Checks a partner's operator credential against the configured issuers."""

    def __init__(self, issuers: Iterable[str],
                 verify: Callable[[object], Any]) -> None:
        #: DIDs whose operator credentials admit a partner (empty: open consortium).
        self.issuers = frozenset(issuers)
        self._verify = verify

    def __repr__(self) -> str:
        return f"OperatorAdmission(issuers={sorted(self.issuers)})"

    @property
    def required(self) -> bool:
        return bool(self.issuers)

    def admit(self, did: str, presented: str | None) -> None:
        """Nothing when ``did`` may trade; OperatorUnknown / OperatorRevoked otherwise."""
        if not self.issuers:
            return
        if not presented:
            raise OperatorUnknown(f"an {CREDENTIAL_HEADER} is required from partner operators")
        token = presented.strip()
        if len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise OperatorUnknown(f"the {CREDENTIAL_HEADER} must be a vc+jwt")
        if _claimed_issuer(token) not in self.issuers:
            raise OperatorUnknown("the operator credential is not from a consortium issuer")
        try:
            verified = self._verify(token)
        except SimtrustError as exc:
            reason = str(getattr(exc, "reason", "") or "")
            if reason in ("revoked", "suspended"):
                raise OperatorRevoked(f"the operator credential is {reason}") from None
            why = exc.detail
            if isinstance(exc.__cause__, SimtrustError):  # e.g. why a status list was unreadable
                why += f": {exc.__cause__.detail}"
            raise OperatorUnknown(
                f"the operator credential does not verify ({reason or exc.code}): {why}") from None
        credential = verified.credential
        if verified.issuer not in self.issuers:
            raise OperatorUnknown("the operator credential is not from a consortium issuer")
        if OPERATOR_CREDENTIAL_TYPE not in _types(credential.get("type")):
            raise OperatorUnknown("the credential is not an operator credential")
        subjects = credential.get("credentialSubject")
        subjects = subjects if isinstance(subjects, list) else [subjects]
        if not any(isinstance(s, dict) and s.get("id") == did for s in subjects):
            raise OperatorUnknown("the operator credential names another operator")
