"""The OpenAPI document's error side and the ``Allow`` header of 405 answers.

FastAPI declares only the success status and a JSON 422 per operation. The
server answers every error as an RFC 9457 problem (``application/problem+json``,
:mod:`simtrust.api.problems`), so :func:`install_openapi` declares, for each
operation, each problem status its shape allows (OpenAPI 3.1 §4.8.16,
Responses Object): 401 and 403 when it takes an API key; 404 except on the
health probes (what it names, or a document not published yet); 409 for an authenticated
write; 400 when it takes any input (malformed JSON, an identifier that does not
parse); 413 when it takes a body (the size limit); 422 when it takes any input
(schema validation); 503 when the store can fail it. Identifier parameters
carry the pattern the server enforces. The TM Forum routes are then described
with the official TMF schemas (:mod:`simtrust.api.tmf_openapi`). :func:`allowed_methods` lists every
method a path supports, for the ``Allow`` header of a 405 (RFC 9110 §15.5.6).
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from simtrust.api.tmf_openapi import embed_official

__all__ = [
    "DOCS_ASSETS",
    "PROBLEM_STATUSES",
    "allowed_methods",
    "install_docs",
    "install_openapi",
    "problem_statuses",
]

#: Where the interactive references load their scripts and styles from: this
#: server, out of the ``fastapi-offline`` package (Swagger UI and ReDoc builds),
#: so ``/docs`` and ``/redoc`` work on a machine without Internet access.
DOCS_ASSETS = "/docs-assets"

METHODS = ("get", "head", "put", "post", "delete", "patch")
#: The problem statuses an operation may declare, with their meaning.
PROBLEM_STATUSES = {
    400: "Bad request: malformed JSON or an identifier that does not parse",
    401: "Authentication required: no API key or an unknown one",
    403: "Forbidden: the key's role may not do this",
    404: "Not found (another tenant's object answers the same)",
    409: "Conflict with the stored state",
    413: "Payload too large",
    422: "Unprocessable content: the request does not match the schema",
    503: "The store is unavailable",
}
#: Formats the server enforces on identifiers (TS 23.003, ITU-T E.118).
IDENTIFIER_FORMATS = {
    "iccid": ("^89[0-9]{16,18}$", "ICCID (ITU-T E.118): 18-20 digits with a Luhn check digit"),
    "imsi": ("^[0-9]{6,15}$", "IMSI (TS 23.003 §2.2): MCC, MNC and MSIN, 6-15 digits"),
    "imei": ("^[0-9]{14,16}$",
             "IMEI (TS 23.003 §6.2): 15 digits with a Luhn check digit, or IMEISV (16)"),
}

_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}


#: Health probes: they answer, or the process is gone.
_PROBES = frozenset({"/healthz", "/readyz"})


def problem_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The problem statuses an operation can answer, from its shape."""
    params = operation.get("parameters", [])
    names = {p["name"].lower() for p in params}
    authenticated = "authorization" in names or "x-api-key" in names
    inputs = [p for p in params if p["in"] in ("path", "query")]
    # Routes that parse their body themselves (3GPP SBI) may not declare it.
    body = "requestBody" in operation or method.lower() in ("post", "put", "patch")
    statuses: set[int] = set()
    if authenticated:
        statuses |= {401, 403, 503}
        if method.lower() != "get":
            statuses.add(409)
    if path not in _PROBES:
        statuses.add(404)  # anything it names, or a document not published yet
    if inputs or body:
        statuses |= {400, 422}
    if body:
        statuses.add(413)
    return sorted(statuses)


def _document(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    seen_ids: set[str] = set()
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            op_id = operation.get("operationId")
            if op_id is not None:
                # One route serving several methods gets one id from FastAPI for all;
                # OpenAPI 3.1 §4.8.10 wants each operation's id unique.
                if op_id in seen_ids:
                    operation["operationId"] = op_id = f"{op_id}_{method}"
                seen_ids.add(op_id)
            responses = operation.setdefault("responses", {})
            for status in problem_statuses(method, path, operation):
                responses.setdefault(str(status), {}).setdefault(
                    "description", PROBLEM_STATUSES[status])
            for status, response in responses.items():
                content = response.get("content", {})
                default = content.get("application/json", {}).get("schema", {}).get(
                    "$ref", "").endswith("/HTTPValidationError")
                if status.isdigit() and int(status) >= 400 and (not content or default):
                    # Routes that answer errors in their own media type (DID
                    # resolution) declare it; every other error is a problem.
                    response["content"] = {"application/problem+json": {"schema": ref}}
            for param in operation.get("parameters", []):
                fmt = IDENTIFIER_FORMATS.get(param["name"])
                if fmt is not None and param["in"] == "path":
                    param["schema"] = {**param.get("schema", {}), "pattern": fmt[0]}
                    param.setdefault("description", fmt[1])
    return doc


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the problem statuses of every operation."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = embed_official(_document(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` from packaged assets, no CDN."""
    assets = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json", title=title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False,
        )


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the path supports (HEAD with GET), from the OpenAPI document."""
    found: set[str] = set()
    for template, item in app.openapi().get("paths", {}).items():
        if _template(template).fullmatch(path):
            found |= {m.upper() for m in METHODS if m in item}
    if "GET" in found:
        found.add("HEAD")
    return sorted(found)


_TEMPLATES: dict[str, re.Pattern[str]] = {}


def _template(template: str) -> re.Pattern[str]:
    compiled = _TEMPLATES.get(template)
    if compiled is None:
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "".join(
            (".+" if part.endswith(":path}") else "[^/]+") if part.startswith("{")
            else re.escape(part)
            for part in parts
        )
        compiled = _TEMPLATES[template] = re.compile(pattern)
    return compiled
