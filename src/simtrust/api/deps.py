"""Request dependencies: the runtime and the authenticated principal.

Callers authenticate with ``Authorization: Bearer <api key>`` (or the
``X-API-Key`` header), or with ``Bearer <access token>`` obtained from
``POST /oauth2/token`` (OAuth 2.0 client credentials, api/_oauth.py). A
tenant-bound principal sees only its own tenant's objects:
:meth:`Principal.check_tenant` answers *not found* for anything else, so the
existence of other tenants' objects is not revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from simtrust.api._oauth import ACCESS_TOKEN_PREFIX, redeem
from simtrust.errors import AuthenticationRequired, NotFound, PermissionDenied
from simtrust.runtime import Runtime
from simtrust.store import Role

__all__ = [
    "INT64",
    "INT64_MAX",
    "CurrentPrincipal",
    "CurrentRuntime",
    "Id64",
    "Principal",
    "get_principal",
    "get_runtime",
]

#: The largest integer a store column holds (SQLite INTEGER, PostgreSQL BIGINT): every
#: integer the API accepts is bounded by it at the edge, so a larger one is a 422.
INT64_MAX = 2**63 - 1
#: Extra OpenAPI keywords of such an integer.
INT64: dict[str, Any] = {"format": "int64"}
#: A stored row id (1 .. 2**63-1).
Id64 = Annotated[int, Field(ge=1, le=INT64_MAX, json_schema_extra=INT64)]


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    tenant_id: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator-admin"

    @property
    def actor(self) -> str:
        """How the audit log names this caller (a partner operator: by its DID)."""
        return self.key_id if self.key_id.startswith("did:") else f"apikey:{self.key_id}"

    def check_tenant(self, tenant_id: str | None, missing: NotFound | None = None) -> None:
        """Raise NotFound unless this principal may see objects of ``tenant_id``.

        ``missing`` is the very error the lookup raises for an object that does not
        exist (same detail, same members), so another tenant's object answers
        exactly like a missing one (docs/decisions/api-tenant-existence.md).
        """
        if self.is_operator:
            return
        if tenant_id is None or tenant_id != self.tenant_id:
            raise missing if missing is not None else NotFound("no such object")

    def scope(self, requested: str | None) -> str | None:
        """The tenant a listing is limited to: a tenant key's own, or the operator's choice."""
        if self.is_operator:
            return requested
        if requested is not None and requested != self.tenant_id:
            raise NotFound(f"no tenant {requested!r}")
        return self.tenant_id

    def require_admin(self) -> None:
        if self.role == "tenant-viewer":
            raise PermissionDenied("this action needs an admin key")

    def require_operator(self) -> None:
        if not self.is_operator:
            raise PermissionDenied("this action needs an operator-admin key")


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain function dependency on its thread pool, a hand-off
    # to another thread and back for one attribute read.
    runtime: Runtime = request.app.state.runtime
    return runtime


CurrentRuntime = Annotated[Runtime, Depends(get_runtime)]


def get_principal(
    rt: CurrentRuntime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    presented = x_api_key
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationRequired("use Authorization: Bearer <api key>")
        presented = token
    if not presented:
        raise AuthenticationRequired("an API key is required")
    if presented.startswith(ACCESS_TOKEN_PREFIX):
        # An OAuth 2.0 client-credentials access token (api/_oauth.py).
        key = redeem(rt.keyring, rt.tenants, presented)
    else:
        key = rt.tenants.authenticate(presented)
    return Principal(key.id, key.role, key.tenant_id)


async def current_principal(
    rt: CurrentRuntime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """:func:`get_principal`, answered on the event loop when the API key was accepted
    moments ago (no store access); otherwise on the thread pool, as a plain dependency."""
    presented = x_api_key
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        presented = token if scheme.lower() == "bearer" else None
    if presented and not presented.startswith(ACCESS_TOKEN_PREFIX):
        key = rt.tenants.authenticated_recently(presented)
        if key is not None:
            return Principal(key.id, key.role, key.tenant_id)
    return await run_in_threadpool(get_principal, rt, authorization, x_api_key)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
