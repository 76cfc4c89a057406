"""The UDM's Nudm_UEAuthentication service on the service-based interface (TS 29.503 §6.3).

Three operations of the official OpenAPI (``TS29503_Nudm_UEAU.yaml``):
``POST /nudm-ueau/v1/{supiOrSuci}/security-information/generate-auth-data``
(200 AuthenticationInfoResult), ``POST /nudm-ueau/v1/{supi}/auth-events``
(201 AuthEvent with ``Location``, ConfirmAuth) and
``PUT /nudm-ueau/v1/{supi}/auth-events/{authEventId}`` (204, DeleteAuth: the
AuthEvent with ``authRemovalInd``). Errors are TS 29.571 ProblemDetails
(``application/problem+json``) with the application ``cause`` (TS 29.500
§5.2.7.2, TS 29.503 §6.3.7): 400 ``INVALID_MSG_FORMAT`` /
``MANDATORY_IE_MISSING`` / ``MANDATORY_IE_INCORRECT``, 401/403 for tokens,
404 ``USER_NOT_FOUND`` / ``DATA_NOT_FOUND``, 411, 413, 415, 501, and 503
``NF_CONGESTION`` with ``Retry-After`` (RFC 9110 §10.2.3) when the storm guard
(:class:`~simtrust.detect.StormGuard`, GSMA TS.34 §4) refuses a
generate-auth-data request over its subscriber's tenant limit. The tenant is
known from a SUPI or a null-scheme SUCI; a concealed SUCI is admitted (its
tenant is only known after de-concealment inside the UDM). With an
``observer``, each answered generate-auth-data of a SUPI or null-scheme SUCI
becomes an ``auth`` :class:`~simtrust.detect.SimEvent` (serving PLMN from the
servingNetworkName, TS 24.501 §9.12.1) for the fraud detectors.

Callers are authorised by OAuth2 access tokens (:mod:`._tokens`) when a
verifier is configured; without one (lab mode) the server only binds
loopback (enforced by :class:`~simtrust.sbi.SbiServer`). This app is apart
from the operator API: HTTP/1.1 with API keys stays there.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from simtrust.bootstrap import Aanf
from simtrust.detect import SimEvent, StormGuard, backoff_answer
from simtrust.domain import imsi_digits
from simtrust.errors import InvalidInput, NotFound, PayloadTooLarge, SimtrustError
from simtrust.sbi._akma import akma_routes
from simtrust.sbi._tokens import TokenVerifier
from simtrust.subscriber import UdmService

__all__ = ["create_sbi_app"]

PREFIX = "/nudm-ueau/v1"
_PROBLEM_BASE = "https://simtrust.dev/problems/"
_DEFAULT_CAUSE = {400: "INVALID_MSG_FORMAT", 401: "UNAUTHORIZED", 403: "AUTHENTICATION_REJECTED",
                  404: "USER_NOT_FOUND", 411: "INCORRECT_LENGTH", 413: "MSG_TOO_LARGE",
                  415: "UNSUPPORTED_MEDIA_TYPE", 500: "SYSTEM_FAILURE",
                  501: "NOT_IMPLEMENTED", 503: "NF_CONGESTION"}


class _UnsupportedMediaType(SimtrustError):
    code = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


class _TooBusy(SimtrustError):
    code = "too-busy"
    status = 503
    title = "Service unavailable"


def _imsi_of(supi_or_suci: str) -> str:
    """The IMSI of a SUPI (``imsi-``) or a null-scheme SUCI (TS 23.003 §2.2B); else ''."""
    if supi_or_suci.startswith("imsi-"):
        return supi_or_suci[5:]
    parts = supi_or_suci.split("-")
    # suci-0-MCC-MNC-routing-scheme-hnkey-MSIN; scheme 0 is the null scheme
    if len(parts) == 8 and parts[0] == "suci" and parts[1] == "0" and parts[5] == "0":
        return parts[2] + parts[3] + parts[7]
    return ""


class _MethodNotAllowed(SimtrustError):
    code = "method-not-allowed"
    status = 405
    title = "Method not allowed"


def problem(exc: SimtrustError, instance: str) -> JSONResponse:
    """TS 29.571 §5.2.4.1 ProblemDetails for ``exc``."""
    status = exc.status
    cause = exc.context.get("cause")
    body: dict[str, Any] = {
        "type": _PROBLEM_BASE + exc.code, "title": exc.title, "status": status,
        "detail": exc.detail, "instance": instance,
        "cause": str(cause or _DEFAULT_CAUSE.get(status, "SYSTEM_FAILURE")),
    }
    param = exc.context.get("invalid_param")
    if isinstance(param, str):
        body["invalidParams"] = [{"param": param, "reason": exc.detail}]
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    elif status == 403 and cause == "insufficient_scope":
        headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope", scope="nudm-ueau"'
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json")


_DRAIN_LIMIT = 1_048_576


async def _drain(request: Request) -> None:
    """Read what is left of a refused request's body (bounded).

    Reading them first answers the stream in the usual order (request ended,
    then response) for any HTTP/2 server; ours would otherwise reset the
    upload with NO_ERROR after the answer (RFC 9113 §8.1).
    """
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > _DRAIN_LIMIT:
                return
    except (RuntimeError, ClientDisconnect):
        return  # already consumed, or the client went away


class _AuthBatches:
    """generate-auth-data requests that arrive together reach the UDM as one batch.

    One worker-thread call (:meth:`UdmService.generate_auth_data_many`: one
    group commit, one fsync) serves what queued up while the event loop read
    the last burst of frames; at most :attr:`RUNNING` batches run at once so
    the next one forms while one writes. Each request still gets its own
    answer or problem.
    """

    RUNNING = 2
    LIMIT = 256

    def __init__(self, udm: UdmService) -> None:
        self._udm = udm
        self._queue: list[tuple[str, dict[str, Any], str, asyncio.Future[Any]]] = []
        self._running = 0
        self._scheduled = False

    async def submit(self, supi_or_suci: str, body: dict[str, Any], actor: str,
                     ) -> tuple[dict[str, Any], int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[dict[str, Any], int]] = loop.create_future()
        self._queue.append((supi_or_suci, body, actor, future))
        self._kick(loop)
        return await future

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._queue and not self._scheduled and self._running < self.RUNNING:
            self._scheduled = True
            loop.call_soon(self._launch, loop)

    def _launch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if not self._queue or self._running >= self.RUNNING:
            return
        batch, self._queue = self._queue[:self.LIMIT], self._queue[self.LIMIT:]
        self._running += 1
        work = loop.run_in_executor(None, self._udm.generate_auth_data_many,
                                    [(s, b, a) for s, b, a, _ in batch])
        work.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _finish(self, loop: asyncio.AbstractEventLoop,
                batch: list[tuple[str, dict[str, Any], str, asyncio.Future[Any]]],
                done: asyncio.Future[list[Any]]) -> None:
        self._running -= 1
        failed = done.exception()
        results: list[Any] = [failed] * len(batch) if failed is not None else done.result()
        for (_, _, _, future), out in zip(batch, results, strict=True):
            if future.done():
                continue  # the request went away
            if isinstance(out, BaseException):
                future.set_exception(out)
            else:
                future.set_result(out)
        self._kick(loop)


def create_sbi_app(
    udm: UdmService, verifier: TokenVerifier | None, *, max_body_bytes: int = 65_536,
    aanf: Aanf | None = None, storm: StormGuard | None = None,
    tenant_of: Callable[[str], str | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    observer: Callable[[SimEvent], object] | None = None,
) -> Starlette:
    """The ASGI app of the UDM's SBI (served over HTTP/2 by :class:`SbiServer`).

    With ``aanf`` it also answers Naanf_AKMA (TS 29.535 §5; :mod:`._akma`).
    With ``storm`` (and ``tenant_of``: IMSI → tenant) generate-auth-data is
    admitted per tenant first.
    """
    storm_lock = threading.Lock()
    batches = _AuthBatches(udm)

    def _admit(supi_or_suci: str) -> dict[str, str] | None:
        """None when admitted; else the Retry-After header of the refusal."""
        if storm is None:
            return None
        imsi = _imsi_of(supi_or_suci)
        tenant = (tenant_of(imsi) if tenant_of is not None and imsi else None) or ""
        with storm_lock:
            admission = storm.admit(clock(), tenant=tenant, subject=imsi or supi_or_suci)
        if admission.admitted:
            return None
        return dict(backoff_answer("sbi", admission).headers)

    async def _body(request: Request) -> dict[str, Any]:
        ctype = request.headers.get("content-type")
        length = request.headers.get("content-length")
        return await _raw_body(request.receive,
                               None if ctype is None else ctype.encode("latin-1"),
                               None if length is None else length.encode("latin-1"),
                               max_body_bytes)

    def _actor(request: Request) -> str:
        if verifier is None:
            return "sbi:lab"
        return _actor_of(verifier, request.headers.get("authorization"))

    def endpoint(
        handler: Callable[[Request, str], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                return await handler(request, _actor(request))
            except SimtrustError as exc:
                await _drain(request)
                return problem(exc, request.url.path)
        return run

    def _observe(supi_or_suci: str, body: dict[str, Any], sqn_ahead: bool = False) -> None:
        imsi = _imsi_of(supi_or_suci)
        if observer is None or not imsi:
            return
        snn = str(body.get("servingNetworkName", ""))
        # 5G:mncXXX.mccYYY.3gppnetwork.org; the MNC is always padded to 3 digits, so its
        # length is not known here (the places of the travel detector key on the MCC)
        parts = snn.removeprefix("5G:").split(".")
        plmn = ""
        if len(parts) >= 2 and parts[0].startswith("mnc") and parts[1].startswith("mcc"):
            plmn = parts[1][3:] + parts[0][3:].lstrip("0").zfill(2)
        try:
            kind = ("auth-sqn-ahead" if sqn_ahead else
                    "auth-sync-failure" if body.get("resynchronizationInfo") else "auth")
            event = SimEvent(time.time(), imsi_digits(imsi), kind, plmn=plmn,
                             tenant=(tenant_of(imsi) if tenant_of else None) or "")
        except SimtrustError:
            return
        observer(event)

    async def confirm_auth(request: Request, actor: str) -> Response:
        body = await _body(request)
        supi = request.path_params["supi"]
        event_id, event = await run_in_threadpool(udm.confirm_auth, supi, body, actor=actor)
        location = f"{request.base_url}".rstrip("/") + f"{PREFIX}/{supi}/auth-events/{event_id}"
        return JSONResponse(event, status_code=201, headers={"Location": location})

    async def delete_auth(request: Request, actor: str) -> Response:
        body = await _body(request)
        await run_in_threadpool(udm.delete_auth, request.path_params["supi"],
                                request.path_params["authEventId"], body, actor=actor)
        return Response(status_code=204)

    routes = [
        *(akma_routes(aanf, endpoint, _body) if aanf is not None else []),
        Route(PREFIX + "/{supiOrSuci}/security-information/generate-auth-data",
              _PathParamApp(lambda scope, receive, send: generate_auth_data(
                  scope, receive, send, scope["path_params"]["supiOrSuci"])),
              methods=["POST"]),
        Route(PREFIX + "/{supi}/auth-events", endpoint(confirm_auth), methods=["POST"]),
        Route(PREFIX + "/{supi}/auth-events/{authEventId}", endpoint(delete_auth),
              methods=["PUT"]),
    ]

    async def unrouted(request: Request) -> Response:
        # Answered here, after draining the body, rather than by the router (see _drain).
        await _drain(request)
        path = request.url.path
        allowed = sorted({m for r in routes if r.path_regex.match(path) for m in r.methods or ()
                          if m != "HEAD"})
        if allowed:
            exc: SimtrustError = _MethodNotAllowed(f"{request.method} is not served here",
                                                   cause="METHOD_NOT_ALLOWED")
            response = problem(exc, path)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return problem(NotFound("no such resource", cause="RESOURCE_URI_STRUCTURE_NOT_FOUND"),
                       path)

    async def generate_auth_data(scope: Scope, receive: Receive, send: Send,
                                 supi_or_suci: str) -> None:
        """generate-auth-data as plain ASGI (the token check, the body checks and the
        problems of the other routes), without a Request, a Response and Starlette's
        header objects per request: nearly all of an AUSF's traffic comes here."""
        ctype = length = authorization = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers
            if name == b"content-type":
                ctype = value if ctype is None else ctype
            elif name == b"content-length":
                length = value if length is None else length
            elif name == b"authorization":
                authorization = value if authorization is None else authorization
        try:
            actor = ("sbi:lab" if verifier is None else
                     _actor_of(verifier, None if authorization is None
                               else authorization.decode("latin-1")))
            body = await _raw_body(receive, ctype, length, max_body_bytes)
            if storm is not None:
                refused = await run_in_threadpool(_admit, supi_or_suci)
                if refused is not None:
                    response = problem(_TooBusy("too many authentications for this "
                                                "subscriber's tenant; retry later"),
                                       Request(scope, receive).url.path)
                    response.headers.update(refused)
                    await response(scope, receive, send)
                    return
            result, ahead = await batches.submit(supi_or_suci, body, actor)
        except SimtrustError as exc:
            request = Request(scope, receive)
            await _drain(request)
            await problem(exc, request.url.path)(scope, receive, send)
            return
        if observer is not None:
            await run_in_threadpool(_observe, supi_or_suci, body, bool(ahead))
        payload = _JSON(result).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(payload)).encode()),
            (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    every = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return _SbiApp(generate_auth_data,
                   routes=[*routes, Route("/{path:path}", unrouted, methods=every)])


#: Starlette's JSONResponse rendering (compact, UTF-8, no NaN), one encoder for all answers.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                         separators=(",", ":")).encode


class _PathParamApp:
    """A plain ASGI endpoint for a Starlette ``Route`` (which then adds no Request)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _actor_of(verifier: TokenVerifier, authorization: str | None) -> str:
    claims = verifier.verify(authorization)
    return f"sbi:{claims.get('sub') or claims.get('iss') or 'nf'}"


async def _raw_body(receive: Receive, ctype: bytes | None, length: bytes | None,
                    limit: int) -> dict[str, Any]:
    """The JSON object of a request body read straight from ASGI ``receive``; the same
    checks and problems as the app's ``_body`` (415, 413, 400 INVALID_MSG_FORMAT)."""
    media = b"" if ctype is None else ctype.split(b";")[0].strip().lower()
    if media != b"application/json":
        raise _UnsupportedMediaType("the body must be application/json")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    raw = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        raw += message.get("body", b"")
        if len(raw) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        if not message.get("more_body", False):
            break
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", cause="INVALID_MSG_FORMAT")
    return body


_AUTH_PATH = re.compile(
    "^" + re.escape(PREFIX) + "/([^/]+)/security-information/generate-auth-data$")


class _SbiApp(Starlette):
    """The Starlette app, with generate-auth-data (nearly all of an AUSF's traffic)
    dispatched straight to its plain ASGI handler: the same token check, answers and
    problems, without the router and middleware stack per request."""

    def __init__(self, auth: Callable[[Scope, Receive, Send, str], Awaitable[None]], *,
                 routes: list[Route]) -> None:
        super().__init__(routes=routes)
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _AUTH_PATH.match(scope["path"])
            if match is not None:
                scope["app"] = self
                await self._auth(scope, receive, send, match.group(1))
                return
        await super().__call__(scope, receive, send)
