"""The FastAPI application: problem details, size limits, health, and every route module.

Route modules live in :mod:`simtrust.api.routes`; each exports ``router`` and
is included in name order. The OpenAPI document is served at
``/openapi.json`` and the interactive references at ``/docs`` and ``/redoc``, their
assets served from this process (no CDN: they work offline).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import simtrust
from simtrust.api import routes as routes_pkg
from simtrust.api._attach_fast import PATH as ATTACH_PATH
from simtrust.api._attach_fast import AttachDecisions, AttachFastPath, AttachFront
from simtrust.api.openapi import install_docs, install_openapi
from simtrust.api.problems import install_problem_handlers, problem, simtrust_problem
from simtrust.runtime import Runtime

__all__ = ["ApiApp", "BodyLimit", "create_app", "include_first", "warm_routes"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware rejecting request bodies over ``limit`` bytes with 413.

    It checks ``Content-Length`` first and also counts streamed chunks, so a
    chunked upload cannot get past the limit either. ``overrides`` gives a route of its
    own limit (the streamed firmware upload, which stores to disk as it reads).
    """

    def __init__(self, app: ASGIApp, limit: int,
                 overrides: dict[tuple[str, str], int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get((scope.get("method", ""), scope.get("path", "")),
                                   self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await self._reject(scope, receive, send, limit)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route's body read; the problem handler answers 413.
                    raise StarletteHTTPException(
                        413, f"request bodies are limited to {limit} bytes"
                    )
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            413, "Payload too large", f"request bodies are limited to {limit} bytes",
            "payload-too-large", scope.get("path"), limit=limit,
        )
        await response(scope, receive, send)


class ApiApp(FastAPI):
    """FastAPI whose entry hands the attach route's common request to its
    :class:`AttachFront` (``simtrust.api._attach_fast``) when it takes it."""

    attach_front: AttachFront | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.attach_front
        if front is not None and front.takes(scope):
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


#: Route modules matched before the others (paths are unique, so order changes no answer).
_HOT_ROUTERS = frozenset({"subscriber"})


def create_app(runtime: Runtime) -> FastAPI:
    app = ApiApp(
        title="simtrust",
        version=simtrust.__version__,
        description=(
            "Trust and security platform for cellular IoT: SIM and device inventory, "
            "3GPP authentication, attach control, network policy, detection, and a "
            "consortium ledger with verifiable credentials. Errors are RFC 9457 "
            "problem documents. Authenticate with `Authorization: Bearer <api key>`."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)

    # async: a plain function runs on the thread pool, a hand-off per probe (and FastAPI
    # validates a plain function's answer on the pool too: a second one).
    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the store answers")
    def readyz() -> JSONResponse:
        try:
            runtime.db.query("SELECT 1")
        except Exception:  # noqa: BLE001 - any store failure means not ready
            return problem(503, "Not ready", "the store does not answer", "not-ready")
        return JSONResponse({"status": "ready"})

    # Routes are matched one after another (a few µs each, some 200 routes): the
    # routers network elements call on every attach come first.
    for info in sorted(pkgutil.iter_modules(routes_pkg.__path__),
                       key=lambda m: (m.name not in _HOT_ROUTERS, m.name)):
        module = importlib.import_module(f"{routes_pkg.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)
    install_openapi(app)
    install_docs(app)
    # Inside the body limit (middleware added later wraps what was added before).
    decisions = AttachDecisions(runtime, simtrust_problem)
    app.add_middleware(AttachFastPath, decisions=decisions)
    limit = runtime.settings.max_body_bytes
    overrides = {("POST", "/v1/fota/packages"): runtime.settings.firmware_max_bytes,
                 ("PUT", "/v1/fraud/tac-database"): 64 * 1024 * 1024}
    app.add_middleware(BodyLimit, limit=limit, overrides=overrides)
    # Ahead of all of them: only where FastAPI's own body limit has nothing to do.
    if getattr(app, "max_body_size", None) is None:
        app.attach_front = AttachFront(app, super(ApiApp, app).__call__, decisions,
                                       overrides.get(("POST", ATTACH_PATH), limit))
    return app


def include_first(app: FastAPI, router: Any) -> None:
    """Include ``router`` ahead of the routes already there (paths are unique, so
    order changes no answer): a request to it is then matched against its own routes
    only, not after walking every other router (about 1 ms of CPU per request)."""
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[:0] = added


async def warm_routes(app: ASGIApp) -> int:
    """Dispatch one request for an unrouted path through ``app``; return its status.

    FastAPI builds the table of each included router (dependencies, parameter
    models) when a request is first matched against it: several seconds of CPU
    for the whole API on a busy machine, in the middle of the first request. A
    server that must answer promptly from its first request calls this before it
    listens, so that cost is paid at start-up and not with its event loop stopped
    under load.
    """
    path = "/.well-known/simtrust-warm-up"
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status
