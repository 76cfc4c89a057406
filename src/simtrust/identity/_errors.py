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
    InvalidInput (simtrust.errors)
    └── ProtocolError            an OAuth 2.0 / OpenID4VCI / OpenID4VP request broke
                                 its protocol; ``error`` is the specification's
                                 error code, ``http_status`` the status it answers
"""

from __future__ import annotations

from typing import Any

from simtrust.errors import InvalidIdentifier, InvalidInput, NotFound, Rejected

__all__ = [
    "REASONS",
    "DidNotFound",
    "InvalidDid",
    "OperationRejected",
    "ProtocolError",
    "VerificationFailed",
]

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


class ProtocolError(InvalidInput):
    """An OAuth 2.0 / OpenID4VC request broke its protocol (answered as ``{"error", ...}``)."""

    code = "oid4vc-error"
    title = "OpenID4VC protocol error"

    def __init__(self, error: str, detail: str, *, http_status: int = 400) -> None:
        super().__init__(detail, error=error)
        self.error = error
        self.http_status = http_status
