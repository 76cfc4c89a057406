"""RFC 9457 problem details for every error the API returns.

Each response is ``application/problem+json`` with ``type`` (a URI naming the
error class), ``title``, ``status``, ``detail`` and, where the error carries
them, extension members (field names, reason codes). Internal errors never
leak exception text: they answer a generic 500 and are logged server-side.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from simtrust.api.openapi import allowed_methods
from simtrust.errors import SimtrustError

__all__ = ["PROBLEM_BASE", "TMF_PREFIX", "install_problem_handlers", "problem", "problem_responses",
           "simtrust_problem"]

PROBLEM_BASE = "https://simtrust.dev/problems/"
#: Paths of the TM Forum Open APIs, whose errors use the TMF Error model instead.
TMF_PREFIX = "/tmf-api/"
_log = logging.getLogger("simtrust.api")

_HTTP_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
}


def problem_responses(descriptions: Mapping[int, str],
                      base: Mapping[int | str, dict[str, Any]] | None = None,
                      ) -> dict[int | str, dict[str, Any]]:
    """A route's documented error answers, each an ``application/problem+json`` body.

    ``descriptions`` maps a status to what it means on this route; ``base`` holds
    answers it adds to or overrides (a router's common errors).
    """
    out: dict[int | str, dict[str, Any]] = dict(base or {})
    for status, text in descriptions.items():
        out[status] = {"description": text, "content": {"application/problem+json": {}}}
    return out


_HTTP_CODES = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    if instance is not None and instance.startswith(TMF_PREFIX):
        return _tmf_error(status, title, detail, code, headers, extensions)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if k not in body})
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _tmf_error(status: int, title: str, detail: str, code: str,
               headers: dict[str, str] | None, extensions: dict[str, Any]) -> JSONResponse:
    """The TMF630 Error resource (``code``, ``reason``, ``message``, ``status``) as JSON.

    TM Forum Open APIs answer errors with their own ``Error`` model, whose
    ``status`` is a string; a rule code the error carries (``reason``) becomes
    the TMF ``code``, the other non-secret facts stay as extension members.
    """
    rule = extensions.get("reason")
    body: dict[str, Any] = {
        "@type": "Error",
        "code": rule if isinstance(rule, str) and rule else code,
        "reason": title,
        "message": detail,
        "status": str(status),
        "referenceError": PROBLEM_BASE + code,
    }
    body.update({k: v for k, v in extensions.items() if k not in body and k != "reason"})
    return JSONResponse(body, status_code=status, headers=headers)


def _safe_context(context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str | int) for v in value):
            out[key] = list(value)
    return out


async def simtrust_problem(request: Request, exc: SimtrustError) -> JSONResponse:
    """The problem document of a :class:`SimtrustError` (the app's handler of them)."""
    if exc.status >= 500:
        _log.error("request failed: %s %s: %s", request.method, request.url.path,
                   type(exc).__name__)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 429 and isinstance(exc.context.get("retryAfter"), int):
        headers = {"Retry-After": str(exc.context["retryAfter"])}
    return problem(
        exc.status, exc.title, exc.detail, exc.code, request.url.path, headers,
        **_safe_context(exc.context),
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SimtrustError, simtrust_problem)  # type: ignore[arg-type]

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        malformed = False
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                malformed = True
            errors.append({
                "location": ".".join(str(p) for p in err.get("loc", ())),
                "message": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            })
        if malformed:
            return problem(400, "Malformed JSON", "the request body is not valid JSON",
                           "malformed-json", request.url.path, errors=errors)
        return problem(422, "Invalid request", "the request does not match the schema",
                       "validation-error", request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _HTTP_TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        code = _HTTP_CODES.get(exc.status_code, f"http-{exc.status_code}")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route matching the path.
            methods = allowed_methods(request.app, request.url.path)
            if methods:
                headers["Allow"] = ", ".join(methods)
        return problem(exc.status_code, title, detail, code, request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the server could not complete the request",
                       "internal", request.url.path)
