"""Verification receipts: what a verifier anchors on the ledger (no personal data).

A receipt names the SHA-256 of the presentation, the verifier, the issuer (the
issuing operator, who is paid per verification) and the time, and optionally
the relying party that asked for the verification and the credential type
(``vct`` or W3C type); its id is the SHA-256 of its JCS form (RFC 8785).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from simtrust.errors import DecodeError
from simtrust.identity._jcs import canonicalize

__all__ = ["VerificationReceipt", "receipt_hash"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_REQUIRED = frozenset({"presentationHash", "verifier", "issuer", "verifiedAt"})
_OPTIONAL = frozenset({"relyingParty", "credentialType"})


@dataclass(frozen=True, slots=True)
class VerificationReceipt:
    """Proof that ``verifier`` verified a presentation of ``issuer``'s credential."""

    presentation_hash: str
    verifier: str
    issuer: str
    verified_at: str
    relying_party: str | None = None
    credential_type: str | None = None

    def to_json(self) -> dict[str, str]:
        body = {
            "presentationHash": self.presentation_hash,
            "verifier": self.verifier,
            "issuer": self.issuer,
            "verifiedAt": self.verified_at,
        }
        if self.relying_party is not None:
            body["relyingParty"] = self.relying_party
        if self.credential_type is not None:
            body["credentialType"] = self.credential_type
        return body

    @property
    def digest(self) -> str:
        return receipt_hash(self.to_json())


def receipt_hash(body: dict[str, Any]) -> str:
    """SHA-256 hex of the JCS form of a receipt body; checks its shape first."""
    if not _REQUIRED <= set(body) <= _REQUIRED | _OPTIONAL:
        raise DecodeError(
            "a receipt has presentationHash, verifier, issuer, verifiedAt"
            " and optionally relyingParty, credentialType"
        )
    if not all(isinstance(v, str) and 0 < len(v) <= 512 for v in body.values()):
        raise DecodeError("receipt members are short strings")
    if not _HEX64.fullmatch(body["presentationHash"]):
        raise DecodeError("presentationHash is 64 lowercase hex digits")
    return hashlib.sha256(canonicalize(body)).hexdigest()
