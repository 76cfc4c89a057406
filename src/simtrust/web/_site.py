"""The dashboard at ``/ui/``: server-rendered pages over the same services and rules as the API.

Sign-in exchanges an API key for a session (web/_session.py); the session's
key gives an :class:`simtrust.api.Principal`, so roles and tenant scoping are
the API's own (docs/decisions/api-tenant-existence.md: another tenant's object
answers like a missing one). Pages are Jinja2 templates shipped in the
package; the little JavaScript there is only enhancement (select all, live
progress). Cookies: HttpOnly, SameSite=Strict, Secure and ``__Host-`` over TLS
(RFC 6265bis §4.1.3.2, §5.5.7); every POST carries the session's CSRF token.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from simtrust.api import Principal, create_app
from simtrust.domain import Iccid
from simtrust.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    SimtrustError,
)
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    TRANSITIONS,
    BindingMode,
    ImportRejected,
    Roaming,
    SimState,
    missing_sim,
)
from simtrust.web._authorize import add_authorization_pages
from simtrust.web._charts import bar_chart
from simtrust.web._fleet import FleetQuery, parse_filter
from simtrust.web._jobs import JobBoard
from simtrust.web._pages import add_trust_pages
from simtrust.web._security import add_security_pages
from simtrust.web._session import COOKIE, Session, SessionStore

__all__ = ["create_dashboard", "create_site"]

_STATIC = Path(__file__).parent / "static"
_PAGE = 50
_LOGIN_CSRF = "simtrust_login"
_DECISION_BATCHES = 20
_BULK_ACTIONS = {"suspend": SimState.SUSPENDED, "resume": SimState.ACTIVE}


class _SignIn(Exception):
    """Raised by a page that needs a session; answered with a redirect to the sign-in page."""


def _env() -> Environment:
    env = Environment(loader=PackageLoader("simtrust.web", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    env.filters["thousands"] = lambda v: f"{int(v):,}"
    return env


def create_site(runtime: Runtime, *,
                validator: Callable[[], dict[str, Any]] | None = None) -> FastAPI:
    """The HTTP API with the dashboard mounted at ``/ui`` (what ``simtrust serve`` runs).

    ``validator`` is the consortium node's ``status`` when a validator serves it
    (``simtrust node run``): the ledger page then shows its health and finality.
    """
    app = create_app(runtime)
    app.mount("/ui", create_dashboard(runtime, validator=validator))
    return app


def create_dashboard(runtime: Runtime, *, idle: timedelta = timedelta(minutes=30),
                     validator: Callable[[], dict[str, Any]] | None = None) -> FastAPI:
    """The dashboard as its own ASGI application (HTML errors, its own exception handlers)."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    env = _env()
    sessions = SessionStore(runtime.db, runtime.tenants, runtime.clock, idle)
    jobs = JobBoard()
    fleet = FleetQuery(runtime.db)
    ui.state.sessions = sessions
    ui.state.jobs = jobs
    ui.mount("/static", StaticFiles(directory=_STATIC), name="static")

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        session: Session | None = getattr(request.state, "session", None)
        html = env.get_template(name).render(
            session=session, csrf=session.csrf if session else "", request=request,
            path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def current(request: Request) -> tuple[Session, Principal]:
        try:
            session = sessions.get(request.cookies.get(_cookie_name(request)))
        except AuthenticationRequired:
            raise _SignIn from None
        request.state.session = session
        return session, Principal(session.key_id, session.role, session.tenant_id)

    async def form_of(request: Request, session: Session) -> dict[str, str]:
        form = await request.form()
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        session.check_csrf(fields.get("csrf"))
        return fields

    @ui.exception_handler(_SignIn)
    async def to_sign_in(request: Request, exc: _SignIn) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/ui/"
        return RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303)

    @ui.exception_handler(SimtrustError)
    async def error_page(request: Request, exc: SimtrustError) -> Response:
        return render(request, "error.html", status=exc.status, title=exc.title,
                      detail=exc.detail)

    # -- sign-in ---------------------------------------------------------------------

    @ui.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/ui/") -> Response:
        return _login_page(request, next, {}, 200)

    def _login_page(request: Request, target: str, errors: dict[str, str],
                    status: int) -> Response:
        token = _random()
        response = render(request, "login.html", status=status, next=_safe_next(target),
                          login_csrf=token, errors=errors)
        response.set_cookie(_LOGIN_CSRF, token, httponly=True, samesite="strict",
                            secure=_tls(request), path="/ui/login")
        return response

    @ui.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        target = _safe_next(fields.get("next", "/ui/"))
        cookie = request.cookies.get(_LOGIN_CSRF, "")
        if not cookie or not _same(cookie, fields.get("login_csrf", "")):
            return _login_page(request, target, {"form": "the sign-in form expired; try again"},
                               403)
        key = fields.get("api_key", "")
        if not key.strip():
            return _login_page(request, target, {"api_key": "enter your API key"}, 422)
        try:
            session = sessions.sign_in(key)
        except AuthenticationRequired:
            return _login_page(request, target,
                               {"api_key": "this API key is not valid (wrong, or revoked)"}, 401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(_cookie_name(request), session.sid, httponly=True,
                            samesite="strict", secure=_tls(request), path="/",
                            max_age=int(sessions.idle.total_seconds()) * 16)
        response.delete_cookie(_LOGIN_CSRF, path="/ui/login")
        return response

    @ui.post("/logout")
    async def logout(request: Request) -> Response:
        session, _who = current(request)
        await form_of(request, session)
        sessions.end(session.sid)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(_cookie_name(request), path="/")
        return response

    @ui.get("/")
    def home(request: Request) -> Response:
        current(request)
        return RedirectResponse("/ui/sims", status_code=303)

    # -- fleet -------------------------------------------------------------------------

    @ui.get("/sims", response_class=HTMLResponse)
    def sims(request: Request) -> Response:
        _session, who = current(request)
        return fleet_page(request, who, dict(request.query_params))

    def fleet_page(request: Request, who: Principal, params: dict[str, str], *,
                   bulk: dict[str, Any] | None = None, bulk_errors: dict[str, str] | None = None,
                   status: int = 200) -> Response:
        """The fleet list; after a refused bulk action, with its problems next to its fields
        and what was chosen kept (``bulk``)."""
        f, errors = parse_filter(params, who.tenant_id, who.is_operator)
        if f.tenant_id is not None and who.is_operator:
            _tenant_exists(runtime, f.tenant_id)
        rows, next_after = fleet.page(f, after=params.get("after") or None, limit=_PAGE)
        link = f.params()
        return render(
            request, "sims.html", status=status, rows=rows, f=f, errors=errors, raw=params,
            facets=fleet.facets(f.tenant_id), counts=fleet.state_counts(f.tenant_id),
            states=[str(s) for s in SimState], binding_modes=[str(m) for m in BindingMode],
            tenants=[t.id for t in runtime.tenants.list_tenants()] if who.is_operator else [],
            next_url=("/ui/sims?" + urlencode({**link, "after": next_after})
                      if next_after else None),
            filter_query=urlencode(link), is_admin=who.role != "tenant-viewer",
            bulk=bulk or {"iccid": set()}, bulk_errors=bulk_errors or {},
            sort_link=lambda key: "/ui/sims?" + urlencode(
                {**link, "sort": key, "dir": "desc" if f.sort == key and not f.desc else "asc"}),
        )

    @ui.get("/sims/export.csv")
    def export(request: Request) -> Response:
        _session, who = current(request)
        f, _errors = parse_filter(dict(request.query_params), who.tenant_id, who.is_operator)

        def lines() -> Iterator[str]:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["iccid", "imsi", "tenant_id", "state", "group", "apn", "address",
                             "created_at"])
            after: str | None = None
            plain = replace(f, sort="iccid", desc=False)
            while True:
                rows, after = fleet.page(plain, after=after, limit=2000)
                for r in rows:
                    writer.writerow([r.iccid, r.imsi, r.tenant_id, r.state, r.group or "",
                                     r.apn or "", r.address or "", r.created_at])
                yield out.getvalue()
                out.seek(0)
                out.truncate()
                if after is None:
                    return

        return StreamingResponse(lines(), media_type="text/csv", headers={
            "Content-Disposition": 'attachment; filename="sims.csv"'})

    @ui.post("/sims/bulk", response_class=HTMLResponse)
    async def bulk(request: Request) -> Response:
        session, who = current(request)
        form = await request.form()
        session.check_csrf(str(form.get("csrf", "")))
        who.require_admin()
        action = str(form.get("action", ""))
        group_text = str(form.get("group_id", "")).strip()
        selected = [str(v) for v in form.getlist("iccid")]
        scope = str(form.get("scope", "selection"))
        fields = {k: str(v) for k, v in form.items() if k.startswith("f_")}
        f, _errors = parse_filter({k[2:]: v for k, v in fields.items()}, who.tenant_id,
                                  who.is_operator)
        errors: dict[str, str] = {}
        if action not in (*_BULK_ACTIONS, "move", "policy"):
            errors["action"] = "choose suspend, resume, move to a group or apply a policy"
        mode_text = str(form.get("binding_mode", "")).strip()
        roaming_text = str(form.get("roaming", "")).strip()
        mode: BindingMode | None = None
        roaming: Roaming | None = None
        if action == "policy":
            mode, roaming = _policy_fields(mode_text, roaming_text, errors)
        group_id: int | None = None
        if action == "move":
            if group_text.isascii() and group_text.isdigit() and int(group_text) > 0:
                group_id = int(group_text)
                try:
                    group = runtime.subscriber.inventory.get_group(group_id)
                    who.check_tenant(group.tenant_id, NotFound(f"no device group {group_id}"))
                except NotFound:
                    errors["group_id"] = f"no device group {group_id}"
            else:
                errors["group_id"] = "choose a device group"
        if scope == "selection" and not selected:
            errors["iccid"] = "select at least one SIM, or act on every SIM of the filter"
        if len(selected) > 10_000:
            errors["iccid"] = "at most 10,000 selected SIMs; act on the filter instead"
        if scope == "selection":
            for text in selected:
                try:
                    Iccid(text)
                except InvalidInput:
                    errors["iccid"] = f"not an ICCID: {text[:25]!r}"
                    break
        if errors:  # the fleet page again, each problem next to its field, choices kept
            return fleet_page(
                request, who, {k[2:]: v for k, v in fields.items()},
                bulk={"action": action, "group_id": group_text, "binding_mode": mode_text,
                      "roaming": roaming_text, "iccid": set(selected)},
                bulk_errors=errors, status=422)
        count = (len(selected) if scope == "selection"
                 else await run_in_threadpool(fleet.count, f))
        if form.get("confirm") != "yes":
            return render(request, "bulk_confirm.html", action=action, scope=scope,
                          selected=selected, fields=fields, count=count, group_id=group_text,
                          binding_mode=mode_text, roaming=roaming_text)
        inventory = runtime.subscriber.inventory
        tenant = None if who.is_operator else who.tenant_id
        batches = (([selected[i:i + 5000] for i in range(0, len(selected), 5000)])
                   if scope == "selection" else fleet.iccids(f))
        if action == "move":
            assert group_id is not None
            gid = group_id

            def apply(batch: list[str]) -> Any:
                return inventory.move_group_many(batch, gid, actor=who.actor, tenant_id=tenant)
        elif action == "policy":

            def apply(batch: list[str]) -> Any:
                return inventory.apply_policy_many(batch, actor=who.actor, binding_mode=mode,
                                                   roaming=roaming, tenant_id=tenant)
        else:
            target = _BULK_ACTIONS[action]

            def apply(batch: list[str]) -> Any:
                return inventory.transition_many(batch, target, actor=who.actor,
                                                  reason=f"bulk {action} (dashboard)",
                                                  tenant_id=tenant)
        fleet.forget_counts()
        job = jobs.start(action, who.key_id, tenant, count, batches, apply)
        return RedirectResponse(f"/ui/jobs/{job.id}", status_code=303)

    @ui.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> Response:
        _session, who = current(request)
        job = jobs.get(job_id, who.key_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return render(request, "job.html", job=job)

    @ui.get("/jobs/{job_id}/progress")
    def job_json(request: Request, job_id: str) -> Response:
        _session, who = current(request)
        job = jobs.get(job_id, who.key_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return JSONResponse(job.to_json(), headers={"Cache-Control": "no-store"})

    @ui.get("/sims/{iccid}", response_class=HTMLResponse)
    def sim_page(request: Request, iccid: str) -> Response:
        _session, who = current(request)
        return sim_view(request, who, iccid)

    def sim_view(request: Request, who: Principal, iccid: str, *,
                 errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                 status: int = 200) -> Response:
        services = runtime.subscriber
        sim = services.inventory.get_sim(Iccid(iccid))
        who.check_tenant(sim.tenant_id, missing_sim(sim.iccid))
        group = services.inventory.get_group(sim.group_id) if sim.group_id else None
        imsi = sim.imsi.value
        sessions_ = runtime.aaa.accounting.sessions_of(sim.iccid.value, limit=200)
        usage: dict[str, float] = {}
        for s in sorted(sessions_, key=lambda s: s.started_at):
            day = s.started_at[:10]
            usage[day] = usage.get(day, 0.0) + s.in_octets + s.out_octets
        alerts = runtime.audit.recent(subject=f"sim:{imsi}", outcome="alert", limit=50)
        history = runtime.audit.recent(subject=f"sim:{sim.iccid.value}", limit=50)
        decisions = _recent_decisions(runtime, sim.tenant_id, sim.iccid.value)
        certs = runtime.bootstrap.cas.certificates(iccid=sim.iccid.value, limit=50)
        serving = runtime.db.query_one(
            "SELECT host, realm, registered_at FROM sub_serving_nodes WHERE imsi = ?", (imsi,))
        auths = runtime.db.query(
            "SELECT created_at, body FROM sub_auth_events WHERE imsi = ?"
            " ORDER BY created_at DESC LIMIT 20", (imsi,))
        return render(
            request, "sim.html", status=status, errors=errors or {}, values=values or {},
            sim=sim, group=group,
            bindings=services.inventory.bindings(sim.iccid),
            address=services.addresses.address_of(imsi), serving=serving,
            auths=[(str(a), _json(b)) for a, b in auths], sessions=sessions_[:20],
            usage_svg=bar_chart(list(usage.items()), title=f"Data used by SIM {sim.iccid}"
                                ", bytes per day", unit="bytes") if usage else "",
            usage=list(usage.items()), alerts=alerts, history=history,
            decisions=decisions, certs=certs, is_admin=who.role != "tenant-viewer",
            targets=sorted(str(t) for t in _targets(sim.state)),
        )

    @ui.post("/sims/{iccid}/state")
    async def sim_state(request: Request, iccid: str) -> Response:
        session, who = current(request)
        fields = await form_of(request, session)
        who.require_admin()
        inventory = runtime.subscriber.inventory
        sim = inventory.get_sim(Iccid(iccid))
        who.check_tenant(sim.tenant_id, missing_sim(sim.iccid))
        values = {"state": fields.get("state", "")[:40], "reason": fields.get("reason", "")}
        errors: dict[str, str] = {}
        target: SimState | None = None
        try:
            target = SimState(values["state"])
        except ValueError:
            errors["state"] = "choose one of the states offered"
        if len(values["reason"]) > 200:  # the API's limit on a transition's reason
            errors["reason"] = "at most 200 characters"
        if target is not None and not errors:
            try:
                await run_in_threadpool(inventory.transition, sim.iccid, target,
                                        actor=who.actor, reason=values["reason"])
            except (InvalidInput, Conflict) as exc:
                errors[str(exc.context.get("field", "state"))
                       if exc.context.get("field") in ("state", "reason") else "state"] = exc.detail
        if errors:
            return sim_view(request, who, iccid, errors=errors, values=values, status=422)
        return RedirectResponse(f"/ui/sims/{sim.iccid}", status_code=303)

    # -- import ------------------------------------------------------------------------

    @ui.get("/import", response_class=HTMLResponse)
    def import_form(request: Request) -> Response:
        _session, who = current(request)
        who.require_admin()
        return render(request, "import.html", errors={}, values={}, row_errors=[],
                      tenants=_tenant_ids(runtime, who), summary=None)

    @ui.post("/import", response_class=HTMLResponse)
    async def import_post(request: Request) -> Response:
        session, who = current(request)
        form = await request.form()
        session.check_csrf(str(form.get("csrf", "")))
        who.require_admin()
        upload = form.get("file")
        text = str(form.get("text", ""))
        if upload is not None and not isinstance(upload, str):
            data = await upload.read()
            if data:
                text = data.decode("utf-8-sig", errors="replace")
        values = {"tenant_id": str(form.get("tenant_id", "")), "text": text[:20_000]}
        errors: dict[str, str] = {}
        tenant = who.tenant_id if not who.is_operator else values["tenant_id"] or None
        if tenant is None:
            errors["tenant_id"] = "choose the tenant the SIMs belong to"
        if not text.strip():
            errors["file"] = "choose a vendor file or paste its lines"
        row_errors: list[Any] = []
        summary = None
        if not errors:
            assert tenant is not None
            try:
                summary = await run_in_threadpool(
                    runtime.subscriber.importer.import_stream, io.StringIO(text, newline=""),
                    tenant, actor=who.actor, name="dashboard-upload.csv",
                    own_allocation=not who.is_operator)
            except ImportRejected as exc:
                row_errors = list(exc.errors)
            except InvalidInput as exc:
                errors[str(exc.context.get("field", "file"))] = exc.detail
            except NotFound as exc:
                errors["tenant_id"] = exc.detail
        status = 200 if summary is not None else 422
        return render(request, "import.html", status=status, errors=errors, values=values,
                      row_errors=row_errors, tenants=_tenant_ids(runtime, who), summary=summary)

    add_security_pages(ui, runtime, render, current, form_of)
    add_trust_pages(ui, runtime, render, current, form_of, validator)
    add_authorization_pages(ui, runtime, render, current, form_of)
    return ui


def _policy_fields(mode_text: str, roaming_text: str,
                   errors: dict[str, str]) -> tuple[BindingMode | None, Roaming | None]:
    """The attach policy of a bulk "apply policy", validated like ``PATCH /v1/sims/{iccid}``."""
    mode: BindingMode | None = None
    roaming: Roaming | None = None
    if mode_text:
        try:
            mode = BindingMode(mode_text)
        except ValueError:
            errors["binding_mode"] = "one of " + ", ".join(str(m) for m in BindingMode)
    if roaming_text:
        entries = [] if roaming_text == "home" else [
            e.strip() for e in roaming_text.split(",") if e.strip()]
        try:
            roaming = Roaming.parse(entries)
        except InvalidInput as exc:
            errors["roaming"] = exc.detail
    if not mode_text and not roaming_text:
        errors["binding_mode"] = "choose a binding mode or a roaming rule to apply"
    return mode, roaming


def _random() -> str:
    return secrets.token_urlsafe(24)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _tls(request: Request) -> bool:
    return request.url.scheme == "https"


def _cookie_name(request: Request) -> str:
    return f"__Host-{COOKIE}" if _tls(request) else COOKIE


def _safe_next(target: str) -> str:
    """Only a path of this dashboard (no open redirect to another site)."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _json(text: Any) -> Any:
    try:
        return json.loads(str(text))
    except ValueError:
        return str(text)


def _targets(state: SimState) -> frozenset[SimState]:
    return TRANSITIONS[state]


def _recent_decisions(runtime: Runtime, tenant_id: str, iccid: str) -> list[dict[str, Any]]:
    """This SIM's attach decisions in the tenant's latest decision batches (bounded work).

    Decisions are audited in batches per tenant (subscriber/_decision_log.py), so a
    page reads the newest few batches instead of the tenant's whole history.
    """
    found: list[dict[str, Any]] = []
    for event in runtime.audit.recent(subject=f"tenant:{tenant_id}", limit=_DECISION_BATCHES):
        if event.action != "attach.decisions":
            continue
        columns = list(event.details.get("columns", []))
        for values in event.details.get("rows", []):
            row = dict(zip(columns, values, strict=False))
            if row.get("iccid") == iccid:
                found.append(row)
    found.sort(key=lambda r: str(r.get("at", "")), reverse=True)
    return found[:20]


def _tenant_exists(runtime: Runtime, tenant_id: str) -> None:
    runtime.tenants.get_tenant(tenant_id)


def _tenant_ids(runtime: Runtime, who: Principal) -> list[str]:
    if who.is_operator:
        return [t.id for t in runtime.tenants.list_tenants()]
    return [who.tenant_id] if who.tenant_id else []
