"""The OpenID4VCI authorization endpoint (OpenID4VCI 1.0 §5, RFC 6749 §4.1.1, RFC 9126 §4).

A wallet sends the user's browser to ``GET /ui/oid4vci/authorize?client_id=…&request_uri=…``
(the request itself was pushed to ``POST /oauth2/par``). The user authenticates
by the dashboard's own sign-in: without a session they go through ``/ui/login``
and come back (docs/decisions/identity-oid4vci-authorization-code.md). The
page names the wallet (``client_id``), where it will be sent (its
``redirect_uri``) and the credential; the user allows or declines with a
CSRF-protected form, and the answer is a 303 to the wallet's ``redirect_uri``
with ``code`` (or ``error=access_denied``), ``state`` and ``iss`` (RFC 9207).
The page lists the offer's claims the user may decline (each a checkbox,
checked by default; mandatory claims are not listed): the credential then
carries only the kept ones, and an SD-JWT only their disclosures.
A request URI that is unknown, used, expired or for another client is shown as
an error page and never redirected (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from simtrust.api import Principal
from simtrust.runtime import Runtime
from simtrust.web._session import Session

__all__ = ["add_authorization_pages"]

Render = Callable[..., HTMLResponse]
Current = Callable[[Request], tuple[Session, Principal]]
Form = Callable[[Request, Session], Any]


def add_authorization_pages(ui: FastAPI, runtime: Runtime, render: Render, current: Current,
                            form_of: Form) -> None:  # fmt: skip
    @ui.get("/oid4vci/authorize", response_class=HTMLResponse)
    def authorize_page(request: Request, client_id: str = "", request_uri: str = "") -> Response:
        _session, who = current(request)
        service = runtime.identity
        pending = service.oid4vci.authorization.pending(client_id, request_uri, now=service.now())
        claims = service.oid4vci.consent(client_id, request_uri, tenant_id=who.tenant_id,
                                         now=service.now())  # fmt: skip
        return render(request, "authorize.html", pending=pending, request_uri=request_uri,
                      account=who.tenant_id, claims=claims)  # fmt: skip

    @ui.post("/oid4vci/authorize")
    async def authorize(request: Request) -> Response:
        session, who = current(request)
        fields = await form_of(request, session)
        service = runtime.identity
        client_id, request_uri = fields.get("client_id", ""), fields.get("request_uri", "")
        kept = None
        if fields.get("narrowing") == "1":
            # Only names the page offered count; an unchecked box is a declined claim.
            offered = service.oid4vci.consent(client_id, request_uri, tenant_id=who.tenant_id,
                                              now=service.now())  # fmt: skip
            kept = [name for name in offered if fields.get(f"claim:{name}") == "on"]
        location, granted = service.oid4vci.authorization.decide(
            client_id, request_uri, tenant_id=who.tenant_id,
            approve=fields.get("decision") == "allow", now=service.now(), claims=kept,
        )  # fmt: skip
        details: dict[str, object] = {"decision": fields.get("decision", "")[:20]}
        if kept is not None:
            details["claims"] = kept
        runtime.audit.append(
            actor=who.actor, action="oid4vci.authorize", subject=client_id[:200],
            outcome="success" if granted else "failure", details=details,
        )  # fmt: skip
        response = RedirectResponse(location, status_code=303)
        response.headers["Cache-Control"] = "no-store"
        return response
