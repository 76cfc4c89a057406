"""The one error tree of simtrust.

Every error the platform raises on purpose derives from :class:`SimtrustError`.
Each class carries a stable machine-readable ``code`` (used as the RFC 9457
``type`` suffix by the API), the HTTP ``status`` the API answers with, and a
``detail`` sentence safe to show a caller (it never contains secret material).

::

    SimtrustError
    ├── ConfigError                 settings or data directory unusable
    ├── InvalidInput (400)          a value failed validation
    │   ├── InvalidIdentifier       IMSI, ICCID, IMEI, DID, ... malformed or bad check digit
    │   └── DecodeError             untrusted bytes that do not decode
    ├── AuthenticationRequired (401)  missing or unknown credentials
    ├── PermissionDenied (403)      authenticated but not allowed
    ├── NotFound (404)              no such object (or not visible to the caller)
    ├── Conflict (409)              the object exists or is in the wrong state
    │   └── InvalidTransition       a life-cycle transition that is not permitted
    ├── PayloadTooLarge (413)       request or message over its size limit
    ├── RateLimited (429)           quota exhausted; retry later
    ├── CryptoError (400)
    │   ├── InvalidSignature        a signature or MAC does not verify
    │   ├── DecryptionFailed        ciphertext altered or wrong key
    │   └── UnknownKey              a key id that the keyring does not hold
    ├── AuthenticationFailure (403)  3GPP AKA failed (MAC failure, synch failure)
    ├── Rejected (422)              a ledger message or transaction failed validation;
    │                               ``reason`` names the rule
    ├── IntegrityError (500)        stored data failed its integrity check (audit chain)
    ├── StoreError (503)            the store could not complete an operation
    └── Unavailable (502)           a partner's service did not answer, or failed
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationFailure",
    "AuthenticationRequired",
    "ConfigError",
    "Conflict",
    "CryptoError",
    "DecodeError",
    "DecryptionFailed",
    "IntegrityError",
    "InvalidIdentifier",
    "InvalidInput",
    "InvalidSignature",
    "InvalidTransition",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Rejected",
    "SimtrustError",
    "StoreError",
    "Unavailable",
    "UnknownKey",
]


class SimtrustError(Exception):
    """Base of every deliberate simtrust error.

    ``detail`` is a human sentence; ``context`` holds structured, non-secret
    facts (field names, ids, reason codes) that the API copies into the
    problem document as extension members.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context: dict[str, Any] = context

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class ConfigError(SimtrustError):
    code = "config-error"
    status = 500
    title = "Configuration error"


class InvalidInput(SimtrustError):
    code = "invalid-input"
    status = 400
    title = "Invalid input"


class InvalidIdentifier(InvalidInput):
    code = "invalid-identifier"
    title = "Invalid identifier"


class DecodeError(InvalidInput):
    code = "decode-error"
    title = "Undecodable input"


class AuthenticationRequired(SimtrustError):
    code = "authentication-required"
    status = 401
    title = "Authentication required"


class PermissionDenied(SimtrustError):
    code = "permission-denied"
    status = 403
    title = "Permission denied"


class NotFound(SimtrustError):
    code = "not-found"
    status = 404
    title = "Not found"


class Conflict(SimtrustError):
    code = "conflict"
    status = 409
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid-transition"
    title = "Transition not permitted"


class PayloadTooLarge(SimtrustError):
    code = "payload-too-large"
    status = 413
    title = "Payload too large"


class RateLimited(SimtrustError):
    code = "rate-limited"
    status = 429
    title = "Rate limited"


class CryptoError(SimtrustError):
    code = "crypto-error"
    status = 400
    title = "Cryptographic failure"


class InvalidSignature(CryptoError):
    code = "invalid-signature"
    title = "Invalid signature"


class DecryptionFailed(CryptoError):
    code = "decryption-failed"
    title = "Decryption failed"


class UnknownKey(CryptoError):
    code = "unknown-key"
    title = "Unknown key"


class AuthenticationFailure(SimtrustError):
    """A 3GPP authentication procedure failed (MAC failure, synch failure)."""

    code = "aka-failure"
    status = 403
    title = "Authentication failure"


class Rejected(SimtrustError):
    """A ledger message or transaction broke a validation rule.

    ``reason`` is a stable reason code (``signature``, ``parents-age``, ...).
    """

    code = "rejected"
    status = 422
    title = "Rejected"

    def __init__(self, reason: str, detail: str, **context: Any) -> None:
        super().__init__(detail, reason=reason, **context)
        self.reason = reason


class IntegrityError(SimtrustError):
    code = "integrity-error"
    status = 500
    title = "Integrity check failed"


class StoreError(SimtrustError):
    code = "store-error"
    status = 503
    title = "Store unavailable"


class Unavailable(SimtrustError):
    """Another node's service (a partner seller's API) did not answer, or answered 5xx."""

    code = "unavailable"
    status = 502
    title = "Partner unavailable"
