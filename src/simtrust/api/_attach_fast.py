"""``POST /v1/attach/decisions`` answered without FastAPI's routing and dependency solving.

Network elements call this route on every attach, and FastAPI's own work per
request (matching the request against the routes, solving the dependencies,
the header and body parameters) cost several times the decision's CPU outside
its durable write. :class:`AttachFastPath`, pure ASGI middleware inside the
body limit, answers the common request itself: a JSON body whose length is
declared, an API key accepted moments ago (no store access), an operator-admin
key and a body the route's own model (:class:`AttachIn`) accepts. Any other
request goes on to the FastAPI route with its body replayed, so every refusal
(401, 403, 400/422 problems) is the route's own answer; a decision that fails
answers the problem document the app's handler makes. The route stays the one
OpenAPI describes and the one a request takes when it is not the common case.
A decision the attach engine makes from memory alone is made here, on the event
loop (:meth:`AttachEngine.decide_held`); its audit rows go to one committer thread
that stores whatever is queued in one group-commit submission and resolves those
requests' futures with one ``call_soon_threadsafe`` per batch, and the answer goes
out only once its batch is on disk. A decision that needs the store (a cache
miss, a binding, a SIM swap) runs on a thread pool of its own (``run_in_executor``).
:class:`AttachFront` answers the same requests from the application's own entry (see
``simtrust.api.app``), ahead of the generic layers around the middleware, doing what
they would do for this request (the body limit, the 500 problem); a request it does not
answer goes through the whole application. docs/decisions/api-http-stack.md has the
figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from pydantic import ValidationError
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from simtrust.api.asgi import presented_key, read_body, replay
from simtrust.api.deps import Principal
from simtrust.api.routes.subscriber import AttachIn
from simtrust.errors import SimtrustError
from simtrust.runtime import Runtime
from simtrust.subscriber import AttachDecision, AttachEngine, DeferredDecisions, Plmn

__all__ = ["PATH", "AttachDecisions", "AttachFastPath", "AttachFront"]

ProblemHandler = Callable[[Request, SimtrustError], Awaitable[Response]]

PATH = "/v1/attach/decisions"
#: Decisions waiting for their group commit at once (anyio's default thread limit).
_THREADS = 40
_WANTED = frozenset({b"authorization", b"x-api-key", b"content-type", b"content-length"})
#: What ``JSONResponse`` encodes with (``json.dumps`` makes this encoder on every call).
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                           separators=(",", ":")).encode
_JSON_TYPE = (b"content-type", b"application/json")
#: Serving PLMNs parsed (a network sends a handful of them), at most :data:`_PLMNS_KEPT`.
_PLMNS: dict[str, Plmn] = {}
_PLMNS_KEPT = 1024
#: How often :class:`AttachFront` asks whether FastAPI's native telemetry is on (seconds).
TELEMETRY_RECHECK_S = 1.0


_Waiting = tuple[DeferredDecisions, "asyncio.Future[None]"]


class _Committer:
    """One thread storing the held decisions of many requests per group-commit submission;
    each request's future is resolved on its loop once its batch is on disk."""

    __slots__ = ("_cond", "_engine", "_idle", "_queue", "_thread")

    def __init__(self, engine: AttachEngine) -> None:
        self._engine = engine
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Waiting] = []
        self._idle = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="attach-commit")
        self._thread.start()

    def submit(self, held: DeferredDecisions) -> asyncio.Future[None]:
        """A future resolved on the loop once ``held`` is stored (or with the failure)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._cond:
            self._queue.append((held, future))
            if self._idle:  # only an idle committer needs waking
                self._cond.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                batch, self._queue = self._queue, []
            error: BaseException | None = None
            try:
                self._engine.commit_deferred([held for held, _future in batch])
            except BaseException as exc:  # noqa: BLE001 - answered in every request of the batch
                error = exc
            loops: dict[asyncio.AbstractEventLoop, list[_Waiting]] = {}
            for waiting in batch:
                loops.setdefault(waiting[1].get_loop(), []).append(waiting)
            for loop, waiting_there in loops.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, waiting_there, error)


def _resolve(batch: list[_Waiting], error: BaseException | None) -> None:
    for _held, future in batch:
        if future.done():  # the request was cancelled (client gone)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class AttachDecisions:
    """Answers the common attach decision request; hands every other one on."""

    def __init__(self, runtime: Runtime, on_error: ProblemHandler) -> None:
        self.runtime = runtime
        self.on_error = on_error
        self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="attach")
        self._committer: _Committer | None = None

    async def answer(self, scope: Scope, receive: Receive, send: Send, passon: ASGIApp,
                     limit: int | None = None) -> None:
        """Answer a ``POST`` of :data:`PATH`, or hand it to ``passon`` (its body replayed).

        ``limit``: the body limit of the route, for a caller ahead of :class:`BodyLimit`
        (a larger declared or read body goes to ``passon``, whose limit answers it)."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                if name in headers:  # repeated: the route decides which one counts
                    await passon(scope, receive, send)
                    return
                headers[name] = value
        content_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
        length = headers.get(b"content-length")
        if content_type != b"application/json" or length is None \
                or (limit is not None and not _within(length, limit)):
            # Chunked bodies too: the body limit's count of streamed chunks answers
            # its 413 through the route's problem handler.
            await passon(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client is gone
        who = self._operator(headers)
        try:
            request = AttachIn.model_validate_json(body) if who is not None else None
            plmn = _plmn(request.serving_plmn) if request is not None else None
        except (ValidationError, SimtrustError):
            request = plmn = None
        if who is None or request is None or plmn is None \
                or (limit is not None and len(body) > limit):
            await passon(scope, replay(body, receive), send)
            return
        try:
            decision = await self._decide(request, plmn, who.actor)
        except SimtrustError as exc:
            response = await self.on_error(Request(scope), exc)
            await response(scope, receive, send)
            return
        # JSONResponse's messages, its encoding and its headers in its order.
        content = _ENCODE(decision.to_json()).encode("utf-8")
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(content)).encode("latin-1")), _JSON_TYPE]})
        await send({"type": "http.response.body", "body": content})

    async def _decide(self, request: AttachIn, plmn: Plmn, actor: str) -> AttachDecision:
        """On the loop when the engine decides from memory (answered once stored), else on
        the pool."""
        engine = self.runtime.subscriber.attach
        made = engine.decide_held(request.imsi, request.imei, plmn, actor=actor,
                                  dry_run=request.dry_run)
        if made is None:
            return await asyncio.get_running_loop().run_in_executor(self._pool, partial(
                engine.decide, request.imsi, request.imei, plmn, actor=actor,
                dry_run=request.dry_run))
        decision, held = made
        if held[0]:  # a dry run holds nothing to store
            if self._committer is None:
                self._committer = _Committer(engine)
            await self._committer.submit(held)
        return decision

    def _operator(self, headers: dict[bytes, bytes]) -> Principal | None:
        """The operator-admin principal of an API key accepted moments ago, else None."""
        presented = presented_key(headers)
        if presented is None:
            return None
        key = self.runtime.tenants.authenticated_recently(presented)
        if key is None or key.role != "operator-admin":
            return None
        return Principal(key.id, key.role, key.tenant_id)


def _plmn(text: str) -> Plmn:
    """``Plmn.parse(text)``, parsed once (a PLMN is immutable; what fails is not kept)."""
    plmn = _PLMNS.get(text)
    if plmn is None:
        plmn = Plmn.parse(text)
        if len(_PLMNS) >= _PLMNS_KEPT:
            _PLMNS.clear()
        _PLMNS[text] = plmn
    return plmn


def _within(length: bytes, limit: int) -> bool:
    """Whether a declared ``Content-Length`` passes :class:`BodyLimit` (read as it reads it)."""
    try:
        declared = int(length)
    except ValueError:
        return False
    return 0 <= declared <= limit


class AttachFastPath:
    """Middleware: the common attach decision request answered by ``decisions``; every
    other request passed on."""

    def __init__(self, app: ASGIApp, decisions: AttachDecisions) -> None:
        self.app = app
        self.decisions = decisions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        await self.decisions.answer(scope, receive, send, self.app)


class AttachFront:
    """The attach route's common request, answered from the application's entry.

    FastAPI's entry, Starlette's, and the middleware around :class:`AttachFastPath`
    (server errors, exception telemetry, FastAPI's and the app's body limits) cost more
    per request than the answer itself around the decision. For a top-level request
    (not inside another application), when FastAPI's native telemetry is off, this
    does what they do for it: the app in the scope, FastAPI's ``root_path``, the
    route's body limit checked before the body is read, and an unexpected error
    answered by the app's own 500 handler through Starlette's
    :class:`ServerErrorMiddleware`. Every request it does not answer, and every request
    while telemetry is on, goes through the whole application (``whole``), where
    :class:`AttachFastPath` may answer it. Whether telemetry is on (a tracer, meter or
    logger provider configured, in code or by ``OTEL_PYTHON_*_PROVIDER``) is asked at
    most every :data:`TELEMETRY_RECHECK_S` (asking costs three environment look-ups):
    a provider configured while the server runs sees this route's requests from then on
    at the latest."""

    def __init__(self, app: Any, whole: ASGIApp, decisions: AttachDecisions,
                 limit: int) -> None:
        self.app = app
        self.whole = whole
        self.decisions = decisions
        self.limit = limit
        self._guarded: ASGIApp | None = None
        self._telemetry = getattr(app, "_native_telemetry", None)  # FastAPI >= 0.165
        self._traced = False
        self._asked = float("-inf")

    def takes(self, scope: Scope) -> bool:
        """Whether ``scope`` is a request this answers (else the whole application's)."""
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" \
                or "app" in scope:  # mounted in another application: its layers apply
            return False
        if self._telemetry is None:
            return True
        now = time.monotonic()
        if now - self._asked >= TELEMETRY_RECHECK_S:
            self._traced = bool(self._telemetry.enabled())
            self._asked = now
        return not self._traced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = self._guarded
        if guarded is None:
            # The 500 handler as FastAPI's build_middleware_stack picks it, once.
            handler = None
            for key, value in self.app.exception_handlers.items():
                if key in (500, Exception):
                    handler = value
            guarded = self._guarded = ServerErrorMiddleware(self._answer, handler=handler,
                                                            debug=self.app.debug)
        await guarded(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if app.root_path:
            scope["root_path"] = app.root_path
        scope["app"] = app
        await self.decisions.answer(scope, receive, send, self.whole, self.limit)
