"""Pieces of pure ASGI handlers that answer a route's common request ahead of FastAPI.

``simtrust.api._attach_fast`` (attach decisions) and ``simtrust.cli._validator_fast``
(a validator's submissions and feed) read the API key as ``current_principal``
does, and hand a request they leave to the route its body again.
"""

from __future__ import annotations

from starlette.types import Message, Receive

from simtrust.api._oauth import ACCESS_TOKEN_PREFIX

__all__ = ["presented_key", "read_body", "replay"]


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The API key a request presents, read as ``current_principal`` reads the headers
    (``authorization`` and ``x-api-key``); None for none, another scheme or an access token."""
    presented = headers.get(b"x-api-key", b"").decode("latin-1") or None
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        presented = token if scheme.lower() == "bearer" else None
    if not presented or presented.startswith(ACCESS_TOKEN_PREFIX):
        return None
    return presented


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left before sending it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body already read handed out first."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
