"""A validator's client submissions and finalized feed, answered without FastAPI's routing.

Clients call ``POST /v1/ledger/network/submit`` and poll ``GET
/v1/ledger/network/finalized`` many times a second, on the event loop that
also runs the validator's ledger, core and links; FastAPI's own work around
those handlers (matching, dependency solving, parameter models, answer
validation) was a sixth of a loaded validator's CPU (``docs/consensus.md``
§15.4, §15.5). :class:`ValidatorFastPath`, pure ASGI middleware, answers the
common request itself: a declared body length within the API's body limit, an
API key accepted moments ago (no store access, as ``current_principal`` does),
a batch that decodes (submit) or query parameters the route accepts (feed).
Anything else goes on to the FastAPI route with its body replayed, so every
refusal (401, 400, 413, 422) is the route's own answer; a refusal of the node
itself (429 while it is busy with its peers) is the problem document the app's
handler makes. The routes stay the ones OpenAPI describes.
``docs/decisions/ledger-validator-http-fast-path.md`` has the figures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from simtrust.api.asgi import presented_key, read_body, replay
from simtrust.api.problems import simtrust_problem
from simtrust.errors import SimtrustError
from simtrust.ledger.net import decode_batch

if TYPE_CHECKING:
    from fastapi import FastAPI

    from simtrust.ledger.net import ConsortiumNode
    from simtrust.runtime import Runtime
    from simtrust.store import TenantStore

__all__ = ["FEED_PATH", "SUBMIT_PATH", "ValidatorFastPath", "serve_fast"]

ProblemHandler = Callable[[Request, SimtrustError], Awaitable[Response]]

SUBMIT_PATH = "/v1/ledger/network/submit"
FEED_PATH = "/v1/ledger/network/finalized"
_FEED_LIMIT = 1000  # the route's default and largest page
_WANTED = frozenset({b"authorization", b"x-api-key", b"content-length"})


class ValidatorFastPath:
    """The common submit and feed requests, answered here; every other request passed on."""

    def __init__(self, app: ASGIApp, node: ConsortiumNode, tenants: TenantStore,
                 body_limit: int, on_error: ProblemHandler) -> None:
        self.app = app
        self.node = node
        self.tenants = tenants
        self.body_limit = body_limit
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == SUBMIT_PATH and method == "POST":
                await self._submit(scope, receive, send)
                return
            if path == FEED_PATH and method == "GET":
                await self._feed(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _submit(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        declared = _length(headers)
        if headers is None or declared is None or declared > self.body_limit \
                or not self._known(headers):
            # Chunked or oversized bodies too: the body limit answers its 413.
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client is gone
        try:
            raws = decode_batch(body)
        except SimtrustError:
            await self.app(scope, replay(body, receive), send)
            return
        response: Response
        try:
            results = await self.node.submit_async(raws)
        except SimtrustError as exc:
            response = await self.on_error(Request(scope), exc)
        else:
            response = JSONResponse({"results": [r.to_json() for r in results]})
        await response(scope, receive, send)

    async def _feed(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        query = _feed_query(scope.get("query_string", b""))
        if headers is None or query is None or not self._known(headers):
            await self.app(scope, receive, send)
            return
        after, limit = query
        rows = self.node.ledger.finalized_since(after, limit)
        response = JSONResponse(
            {"finalized": [[r["order"], r["message_id"], r["state"]] for r in rows]})
        await response(scope, receive, send)

    def _known(self, headers: dict[bytes, bytes]) -> bool:
        """Whether the request presents an API key accepted moments ago (the routes
        take any principal)."""
        presented = presented_key(headers)
        return presented is not None and self.tenants.authenticated_recently(presented) is not None


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The headers the fast path reads; None when one is repeated (the route decides)."""
    out: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _WANTED:
            if name in out:
                return None
            out[name] = value
    return out


def _length(headers: dict[bytes, bytes] | None) -> int | None:
    if headers is None:
        return None
    value = headers.get(b"content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _feed_query(raw: bytes) -> tuple[int, int] | None:
    """``after`` and ``limit`` as the route reads them, or None to leave the request to
    the route: plain decimal values within the route's bounds, each given at most once
    (a percent-encoded or ``+`` name might decode to one of them: the route decides)."""
    seen: dict[bytes, int] = {}
    for part in raw.split(b"&") if raw else ():
        name, _, value = part.partition(b"=")
        if b"%" in name or b"+" in name:
            return None
        if name not in (b"after", b"limit"):
            continue  # a parameter the route does not read
        if name in seen or not value.isdigit() or len(value) > 18:
            return None
        seen[name] = int(value)
    after = seen.get(b"after", 0)
    limit = seen.get(b"limit", _FEED_LIMIT)
    if not 1 <= limit <= _FEED_LIMIT:
        return None
    return after, limit


def serve_fast(app: FastAPI, node: ConsortiumNode, runtime: Runtime) -> None:
    """Put :class:`ValidatorFastPath` in front of ``app`` (before its first request).

    It wraps the body limit, so it takes only bodies whose declared length is within
    the same limit and leaves the rest to it."""
    app.add_middleware(ValidatorFastPath, node=node, tenants=runtime.tenants,
                       body_limit=runtime.settings.max_body_bytes, on_error=simtrust_problem)
