"""Verification receipts: what a verifier anchors on the ledger (no personal data).

A receipt names the SHA-256 of the presentation, the verifier, the issuer and
the time; its id is the SHA-256 of its JCS form (RFC 8785).
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


@dataclass(frozen=True, slots=True)
class VerificationReceipt:
    """Proof that ``verifier`` verified a presentation of ``issuer``'s credential."""

    presentation_hash: str
    verifier: str
    issuer: str
    verified_at: str

    def to_json(self) -> dict[str, str]:
        return {
            "presentationHash": self.presentation_hash,
            "verifier": self.verifier,
            "issuer": self.issuer,
            "verifiedAt": self.verified_at,
        }

    @property
    def digest(self) -> str:
        return receipt_hash(self.to_json())


def receipt_hash(body: dict[str, Any]) -> str:
    """SHA-256 hex of the JCS form of a receipt body; checks its shape first."""
    if set(body) != {"presentationHash", "verifier", "issuer", "verifiedAt"}:
        raise DecodeError("a receipt has presentationHash, verifier, issuer, verifiedAt")
    if not all(isinstance(v, str) and 0 < len(v) <= 512 for v in body.values()):
        raise DecodeError("receipt members are short strings")
    if not _HEX64.fullmatch(body["presentationHash"]):
        raise DecodeError("presentationHash is 64 lowercase hex digits")
    return hashlib.sha256(canonicalize(body)).hexdigest()
