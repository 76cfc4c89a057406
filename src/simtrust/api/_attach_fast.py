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
docs/decisions/api-http-stack.md has the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from simtrust.api.asgi import presented_key, read_body, replay
from simtrust.api.deps import Principal
from simtrust.api.routes.subscriber import AttachIn
from simtrust.errors import SimtrustError
from simtrust.runtime import Runtime
from simtrust.subscriber import AttachDecision, AttachEngine, DeferredDecisions, Plmn

__all__ = ["PATH", "AttachFastPath"]

ProblemHandler = Callable[[Request, SimtrustError], Awaitable[Response]]

PATH = "/v1/attach/decisions"
#: Decisions waiting for their group commit at once (anyio's default thread limit).
_THREADS = 40
_WANTED = frozenset({b"authorization", b"x-api-key", b"content-type", b"content-length"})


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


class AttachFastPath:
    """The common attach decision request, answered here; every other request passed on."""

    def __init__(self, app: ASGIApp, runtime: Runtime, on_error: ProblemHandler) -> None:
        self.app = app
        self.runtime = runtime
        self.on_error = on_error
        self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="attach")
        self._committer: _Committer | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                if name in headers:  # repeated: the route decides which one counts
                    await self.app(scope, receive, send)
                    return
                headers[name] = value
        content_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
        if content_type != b"application/json" or b"content-length" not in headers:
            # Chunked bodies too: the body limit's count of streamed chunks answers
            # its 413 through the route's problem handler.
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client is gone
        who = self._operator(headers)
        try:
            request = AttachIn.model_validate_json(body) if who is not None else None
            plmn = Plmn.parse(request.serving_plmn) if request is not None else None
        except (ValidationError, SimtrustError):
            request = plmn = None
        if who is None or request is None or plmn is None:
            await self.app(scope, replay(body, receive), send)
            return
        response: Response
        try:
            decision = await self._decide(request, plmn, who.actor)
        except SimtrustError as exc:
            response = await self.on_error(Request(scope), exc)
        else:
            response = JSONResponse(decision.to_json())
        await response(scope, receive, send)

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
