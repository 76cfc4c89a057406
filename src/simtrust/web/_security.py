"""Dashboard pages of security and the audit trail: alerts with their evidence, blocklist,
policy enforcement, the trust overview (CAs, certificates, DIDs, receipts, contracts) and
the audit trail with chain verification and inclusion-proof download.

Scoped like the API: an operator sees every tenant, a tenant its own rows (and
global blocklist entries); another tenant's alert or audit record answers like a
missing one (docs/decisions/api-tenant-existence.md). Blocklist input is checked
by the same service calls as ``POST /v1/blocklist`` (Luhn, TAC length, range
order; 3GPP TS 23.003 §6.2 for the IMEI and its TAC).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from simtrust.api import Principal
from simtrust.audit.anchoring import prove_event
from simtrust.errors import InvalidInput, NotFound
from simtrust.runtime import Runtime
from simtrust.subscriber import missing_block
from simtrust.web._charts import bar_chart
from simtrust.web._session import Session

__all__ = ["add_security_pages"]

Render = Callable[..., HTMLResponse]
Current = Callable[[Request], tuple[Session, Principal]]
Form = Callable[[Request, Session], Any]

_PAGE = 50
#: Audit actions of policy enforcement and what was done about a device.
_ENFORCEMENT = ("policy.violation", "policy.block", "policy.remove", "pki.revoke",
                "pki.revoke-sim", "blocklist.add")


def add_security_pages(ui: FastAPI, runtime: Runtime, render: Render, current: Current,
                       form_of: Form) -> None:
    """Register the pages on the dashboard application ``ui``."""

    # -- security ----------------------------------------------------------------------

    @ui.get("/alerts", response_class=HTMLResponse)
    def alerts(request: Request, before: int | None = None, kind: str = "") -> Response:
        _session, who = current(request)
        scope = None if who.is_operator else who.tenant_id
        events = runtime.audit.recent(outcome="alert", tenant_id=scope, before_seq=before,
                                      action=kind or None, limit=_PAGE)
        per_day: dict[str, float] = {}
        kinds: dict[str, int] = {}
        for day, action, n in runtime.db.query(
                "SELECT substr(at, 1, 10), action, COUNT(*) FROM (SELECT at, action"
                " FROM audit_events WHERE outcome = 'alert'"
                + (" AND tenant_id = ?" if scope else "") +
                " ORDER BY seq DESC LIMIT 10000) t GROUP BY 1, 2 ORDER BY 1",
                (scope,) if scope else ()):
            kinds[str(action)] = kinds.get(str(action), 0) + int(n)
            if not kind or kind == action:
                per_day[str(day)] = per_day.get(str(day), 0.0) + float(n)
        return render(request, "alerts.html", events=events, kinds=sorted(kinds.items()),
                      kind=kind,
                      chart=bar_chart(list(per_day.items())[-30:], title="Alerts per day",
                                      unit="alerts") if per_day else "",
                      per_day=list(per_day.items())[-30:],
                      next_before=events[-1].seq if len(events) == _PAGE else None)

    @ui.get("/alerts/{event_id}", response_class=HTMLResponse)
    def alert_page(request: Request, event_id: str) -> Response:
        _session, who = current(request)
        event = runtime.audit.get(event_id)
        missing = NotFound(f"no alert {event_id!r}")
        if event is None or event.outcome != "alert":
            raise missing
        who.check_tenant(event.tenant_id, missing)
        evidence = event.details.get("evidence", event.details)
        chart = ""
        if isinstance(evidence, dict) and all(
                isinstance(evidence.get(k), int | float) for k in ("expected", "threshold",
                                                                     "observed")):
            chart = bar_chart([(k, float(evidence[k])) for k in ("expected", "threshold",
                                                                 "observed")],
                              title=f"{evidence.get('feature', 'feature')}: observed against"
                              " its baseline", unit=str(evidence.get("feature", "")))
        imsi = event.subject.removeprefix("sim:")
        return render(request, "alert.html", event=event, evidence=evidence, chart=chart,
                      sim_iccid=_iccid_of(runtime, imsi, who))

    @ui.get("/blocklist", response_class=HTMLResponse)
    def blocklist(request: Request) -> Response:
        _session, who = current(request)
        return _blocklist_page(request, who, {}, {}, 200)

    def _blocklist_page(request: Request, who: Principal, errors: dict[str, str],
                        values: dict[str, str], status: int) -> Response:
        scope = None if who.is_operator else who.tenant_id
        entries = runtime.subscriber.blocklist.entries(scope, limit=500)
        return render(request, "blocklist.html", status=status, entries=entries, errors=errors,
                      values=values, is_admin=who.role != "tenant-viewer",
                      is_operator=who.is_operator)

    @ui.post("/blocklist", response_class=HTMLResponse)
    async def blocklist_add(request: Request) -> Response:
        session, who = current(request)
        fields = await form_of(request, session)
        who.require_admin()
        values = {k: fields.get(k, "") for k in ("type", "value", "value_to", "reason",
                                                 "tenant_id")}
        errors: dict[str, str] = {}
        kind = values["type"]
        if kind not in ("imei", "tac"):
            errors["type"] = "choose IMEI or TAC range"
        if not values["value"].strip():
            errors["value"] = "required"
        if len(values["reason"]) > 200:
            errors["reason"] = "at most 200 characters"
        tenant = (values["tenant_id"].strip() or None) if who.is_operator else who.tenant_id
        if tenant is not None and who.is_operator:
            try:
                runtime.tenants.get_tenant(tenant)
            except NotFound as exc:
                errors["tenant_id"] = exc.detail
        if not errors:
            bl = runtime.subscriber.blocklist
            reason = values["reason"].strip() or "blocked"
            try:
                if kind == "imei":
                    bl.add_imei(values["value"], actor=who.actor, reason=reason,
                                tenant_id=tenant, source="dashboard")
                else:
                    bl.add_tac_range(values["value"], values["value_to"].strip() or None,
                                     actor=who.actor, reason=reason, tenant_id=tenant,
                                     source="dashboard")
            except InvalidInput as exc:
                name = str(exc.context.get("field", "value"))
                errors[name if name in values else "value"] = exc.detail
        if errors:
            return _blocklist_page(request, who, errors, values, 422)
        return RedirectResponse("/ui/blocklist", status_code=303)

    @ui.post("/blocklist/{entry_id}/delete")
    async def blocklist_remove(request: Request, entry_id: int) -> Response:
        session, who = current(request)
        await form_of(request, session)
        who.require_admin()
        bl = runtime.subscriber.blocklist
        entry = bl.get(entry_id)
        if entry.tenant_id is None:
            who.require_operator()
        else:
            who.check_tenant(entry.tenant_id, missing_block(entry_id))
        bl.remove(entry_id, actor=who.actor)
        return RedirectResponse("/ui/blocklist", status_code=303)

    @ui.get("/policy", response_class=HTMLResponse)
    def policy(request: Request) -> Response:
        _session, who = current(request)
        scope = None if who.is_operator else who.tenant_id
        merged: list[Any] = []
        for action in _ENFORCEMENT:
            merged.extend(runtime.audit.recent(action=action, tenant_id=scope, limit=_PAGE))
        merged.sort(key=lambda e: e.seq, reverse=True)
        return render(request, "policy.html", events=merged[:_PAGE], actions=_ENFORCEMENT)

    # -- trust layer -------------------------------------------------------------------

    @ui.get("/trust", response_class=HTMLResponse)
    def trust(request: Request) -> Response:
        _session, who = current(request)
        scope = None if who.is_operator else who.tenant_id
        cas = runtime.bootstrap.cas
        dids = runtime.db.query(
            "SELECT did, version, deactivated, created, updated FROM identity_did"
            " ORDER BY updated DESC LIMIT 50")
        receipts = runtime.db.query(
            "SELECT receipt_hash, verifier, issuer, verified_at, ledger_order"
            " FROM identity_receipt ORDER BY verified_at DESC LIMIT 50")
        lists = runtime.db.query(
            "SELECT list_id, issuer, purpose, size, allocated, updated FROM identity_status_list"
            " ORDER BY updated DESC LIMIT 50") if who.is_operator else []
        engine = runtime.contracts
        codes = engine.codes()
        contracts = [{**c, "code_name": codes.get(c["code"], c["code"][:12]),
                      "detail": engine.state(c["contract"])["state"]}
                     for c in engine.contracts()[:100]]
        return render(request, "trust.html", cas=cas.cas(scope),
                      certs=cas.certificates(tenant_id=scope, limit=50), dids=dids,
                      receipts=receipts, lists=lists, is_operator=who.is_operator,
                      contracts=contracts)


    @ui.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, before: int | None = None,
              subject: str | None = None) -> Response:
        _session, who = current(request)
        scope = None if who.is_operator else who.tenant_id
        events = runtime.audit.recent(tenant_id=scope, subject=subject or None,
                                      before_seq=before, limit=_PAGE)
        return render(request, "audit.html", events=events, subject=subject or "",
                      verify=None, is_operator=who.is_operator,
                      next_before=events[-1].seq if len(events) == _PAGE else None)

    @ui.post("/audit/verify", response_class=HTMLResponse)
    async def audit_verify(request: Request) -> Response:
        session, who = current(request)
        await form_of(request, session)
        who.require_operator()
        breaks = await run_in_threadpool(runtime.audit.verify)
        events = runtime.audit.recent(limit=_PAGE)
        return render(request, "audit.html", events=events, subject="",
                      verify={"records": runtime.audit.count(), "breaks": breaks},
                      is_operator=True,
                      next_before=events[-1].seq if len(events) == _PAGE else None)

    @ui.get("/audit/{event_id}/proof.json")
    def audit_proof(request: Request, event_id: str) -> Response:
        _session, who = current(request)
        event = runtime.audit.get(event_id)
        missing = NotFound(f"no audit event {event_id!r}")
        if event is None:
            raise missing
        who.check_tenant(event.tenant_id, missing)
        proof = prove_event(runtime.audit, runtime.ledger, event_id)
        return JSONResponse(proof, headers={
            "Content-Disposition": f'attachment; filename="proof-{event.seq}.json"'})


def _iccid_of(runtime: Runtime, imsi: str, who: Principal) -> str | None:
    row = runtime.db.query_one("SELECT iccid, tenant_id FROM sub_sims WHERE imsi = ?", (imsi,))
    if row is None:
        return None
    if not who.is_operator and str(row[1]) != who.tenant_id:
        return None
    return str(row[0])

