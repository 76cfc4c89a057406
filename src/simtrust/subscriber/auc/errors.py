"""AKA failures the AuC and the simulated USIM raise (TS 33.102 §6.3.3, §6.3.5).

::

    AuthenticationFailure (simtrust.errors)
    ├── MacFailure          MAC-A or MAC-S does not verify; ``reason`` says which
    └── SyncFailure         SQN not fresh on the USIM; carries the AUTS to send back

Every error carries a stable ``reason`` code and never the key material.
"""

from __future__ import annotations

from typing import Any

from simtrust.errors import AuthenticationFailure

__all__ = ["MacFailure", "SyncFailure"]


class MacFailure(AuthenticationFailure):
    """A message authentication code does not verify (``reason``: ``mac-a``, ``mac-s``)."""

    code = "aka-mac-failure"

    def __init__(self, reason: str, detail: str, **context: Any) -> None:
        super().__init__(detail, reason=reason, **context)
        self.reason = reason


class SyncFailure(AuthenticationFailure):
    """The USIM rejected SQN as not fresh; ``auts`` is the resynchronisation token.

    ``reason`` is ``replay`` (SEQ not above the stored one for its IND), ``delta``
    (too far ahead, TS 33.102 C.2.2) or ``age`` (older than the limit L, C.2.3).
    """

    code = "aka-sync-failure"

    def __init__(self, reason: str, detail: str, auts: bytes, **context: Any) -> None:
        super().__init__(detail, reason=reason, **context)
        self.reason = reason
        self.auts = auts
