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

from collections.abc import Callable, Iterable
from typing import Any

from simtrust.errors import AuthenticationRequired, PermissionDenied, SimtrustError

__all__ = [
    "CREDENTIAL_HEADER",
    "OPERATOR_CREDENTIAL_TYPE",
    "OperatorAdmission",
    "OperatorRevoked",
    "OperatorUnknown",
    "operator_credential",
]

CREDENTIAL_HEADER = "Operator-Credential"
#: A URL, as VCDM 2.0 §4.5 allows for a type no bundled context defines.
OPERATOR_CREDENTIAL_TYPE = "https://simtrust.dev/ns/market#OperatorCredential"
_CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
_MAX_TOKEN = 16384


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
        try:
            verified = self._verify(token)
        except SimtrustError as exc:
            reason = str(getattr(exc, "reason", "") or "")
            if reason in ("revoked", "suspended"):
                raise OperatorRevoked(f"the operator credential is {reason}") from None
            raise OperatorUnknown(
                f"the operator credential does not verify ({reason or exc.code})") from None
        credential = verified.credential
        if verified.issuer not in self.issuers:
            raise OperatorUnknown("the operator credential is not from a consortium issuer")
        if OPERATOR_CREDENTIAL_TYPE not in _types(credential.get("type")):
            raise OperatorUnknown("the credential is not an operator credential")
        subjects = credential.get("credentialSubject")
        subjects = subjects if isinstance(subjects, list) else [subjects]
        if not any(isinstance(s, dict) and s.get("id") == did for s in subjects):
            raise OperatorUnknown("the operator credential names another operator")
