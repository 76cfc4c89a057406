"""What the RADIUS server needs from its collaborators: the usage sink of accounted
bytes (the policy engine's volume caps) and the EAP server behind Access-Requests
carrying EAP-Message (RFC 3579 §3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from simtrust.domain import ImsiDigits

__all__ = ["EapHandler", "EapOutcomeLike", "UsageSink"]


class UsageSink(Protocol):
    """Where accounted bytes go (the policy engine's volume caps)."""

    def meter(self, imsi: ImsiDigits, octets: int, *, at: float | None = None) -> Any: ...


class EapOutcomeLike(Protocol):
    @property
    def eap(self) -> bytes: ...

    @property
    def state(self) -> bytes | None: ...

    @property
    def imsi(self) -> str | None: ...

    @property
    def msk(self) -> bytes | None: ...

    @property
    def success(self) -> bool: ...

    @property
    def failure(self) -> bool: ...


class EapHandler(Protocol):
    """The EAP server behind Access-Requests carrying EAP-Message (RFC 3579)."""

    def respond(self, eap_message: bytes, state: bytes | None, actor: str) -> EapOutcomeLike:
        """Answer one EAP-Response; on success the outcome names the IMSI and the MSK."""
        ...

    def respond_many(self, responses: list[tuple[bytes, bytes | None, str]]
                     ) -> Sequence[EapOutcomeLike]:
        """Answer EAP-Responses (message, State, actor) that arrived together, in order."""
        ...
