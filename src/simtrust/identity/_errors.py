"""Errors of the identity package, all inside the one simtrust error tree.

::

    Rejected (simtrust.errors)
    └── VerificationFailed       a credential, presentation, proof, JWT or SD-JWT
                                 did not verify; ``reason`` is a stable code from
                                 :data:`REASONS`, ``detail`` says why, ``context``
                                 carries non-secret facts (status list URL, index)
    NotFound (simtrust.errors)
    └── DidNotFound              DID Resolution error ``notFound`` (or deactivated
                                 and asked for a method that needs a live DID)
    InvalidIdentifier (simtrust.errors)
    └── InvalidDid               DID Resolution error ``invalidDid``
    Rejected
    └── OperationRejected        a did:simtrust operation broke a registry rule
                                 (``stale``, ``replayed``, ``unauthorized``, ...)
"""

from __future__ import annotations

from typing import Any

from simtrust.errors import InvalidIdentifier, NotFound, Rejected

__all__ = ["REASONS", "DidNotFound", "InvalidDid", "OperationRejected", "VerificationFailed"]

#: Reason codes a verifier reports (the ``reason`` of :class:`VerificationFailed`).
REASONS = frozenset(
    {
        "malformed",
        "unknown-context",
        "unsupported-cryptosuite",
        "invalid-signature",
        "proof-purpose",
        "key-not-authorized",
        "unresolvable",
        "not-yet-valid",
        "expired",
        "revoked",
        "suspended",
        "status-unavailable",
        "challenge",
        "domain",
        "holder-binding",
        "disclosure",
        "key-binding",
    }
)


class VerificationFailed(Rejected):
    """Something presented for verification failed; never carries secrets."""

    code = "verification-failed"
    title = "Verification failed"

    def __init__(self, reason: str, detail: str, **context: Any) -> None:
        super().__init__(reason, detail, **context)

    def to_problem(self) -> dict[str, Any]:
        """The entry this failure adds to a VC-API / CLI ``errors`` list."""
        out: dict[str, Any] = {"reason": self.reason, "detail": self.detail}
        out.update({k: v for k, v in self.context.items() if k != "reason"})
        return out


class OperationRejected(Rejected):
    """A did:simtrust operation was refused by the registry rules (docs/did-method.md §5)."""

    code = "did-operation-rejected"
    title = "DID operation rejected"


class DidNotFound(NotFound):
    code = "did-not-found"
    title = "DID not found"


class InvalidDid(InvalidIdentifier):
    code = "invalid-did"
    title = "Invalid DID"
