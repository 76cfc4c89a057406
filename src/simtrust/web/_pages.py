"""Dashboard pages of the trust layer's later parts: validators and finality, settlement
netting, marketplace orders, stream provenance and issued credentials.

Each page reads the owning package's tables or public service, scoped exactly like
the API (an operator sees everything, a tenant only its own rows; another tenant's
object answers like a missing one, docs/decisions/api-tenant-existence.md).

- Validators: ``ConsortiumNode.status()`` when the dashboard runs inside a
  validator (``simtrust node run``): rounds, peers, links and the per-stage latency
  probe (docs/consensus.md §15); in ``simtrust serve``, each validator listed in
  ``ledger_validators`` asked for that status over HTTP (web/_validators.py); any
  node: messages finalized per round and the leaders of the recent rounds
  (``ledger_rounds``).
- Settlement: the periods whose statements a tenant stored
  (``settlement_statements``, settlement/_store.py) and, for one period, the
  multilateral netting (settlement/_netting.py) of what is stored; statements
  pasted into the form are netted (and stored under a period when one is given)
  with the API's rules (``POST /v1/settlement/net``, ``/statements``): gross
  positions before netting and net positions after, as a chart and a table.
- Marketplace: TMF622 product orders (``market_orders``).
- Streams: channels and data, and a datum's provenance graph
  (``StreamService.provenance``, drawn by ``provenance_svg``).
- Credentials: every issuance recorded in the audit trail (``credential.issue``,
  ``oid4vci.credential``) and the status-list entries allocated to credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from simtrust.api import Principal
from simtrust.errors import InvalidInput, NotFound
from simtrust.ledger.net import render_tangle_svg, tangle_view
from simtrust.runtime import Runtime
from simtrust.settlement import StatementStore, check_period, check_statements, net_statements
from simtrust.streams import provenance_svg
from simtrust.web._charts import bar_chart, grouped_chart
from simtrust.web._session import Session
from simtrust.web._validators import STAGES, ask_validators, health

__all__ = ["CREDENTIAL_ACTIONS", "add_trust_pages"]

Render = Callable[..., HTMLResponse]
Current = Callable[[Request], tuple[Session, Principal]]
Form = Callable[[Request, Session], Any]

#: Audit actions recording an issued credential.
CREDENTIAL_ACTIONS = ("credential.issue", "oid4vci.credential")
_ROUNDS = 40
_LEADER_WINDOW = 1000
_MAX_STATEMENTS_TEXT = 1_000_000
_LIST = 100


def _scope(who: Principal) -> str | None:
    return None if who.is_operator else who.tenant_id


def add_trust_pages(ui: FastAPI, runtime: Runtime, render: Render, current: Current,
                    form_of: Form, validator: Callable[[], dict[str, Any]] | None) -> None:
    """Register the pages on the dashboard application ``ui``."""

    # -- ledger, validators, finality ---------------------------------------------------

    def ledger_view() -> dict[str, Any]:
        node = runtime.ledger
        rounds = [(int(r[0]), int(r[1]), bytes(r[2]).hex()) for r in runtime.db.query(
            "SELECT round, count, leader FROM ledger_rounds ORDER BY round DESC LIMIT ?",
            (_ROUNDS,))][::-1]
        leaders = [(bytes(r[0]).hex(), int(r[1]), int(r[2]), int(r[3])) for r in runtime.db.query(
            "SELECT leader, COUNT(*), MAX(round), SUM(count) FROM (SELECT leader, round, count"
            " FROM ledger_rounds ORDER BY round DESC LIMIT ?) t GROUP BY leader"
            " ORDER BY MAX(round) DESC", (_LEADER_WINDOW,))]
        per_round = [(str(r), float(n)) for r, n, _ in rounds]
        return {
            "info": node.info(), "messages": node.recent(25, None),
            "tangle_svg": render_tangle_svg(tangle_view(node, 40), rows=5,
                                            title="Recent tangle"),
            "rounds": rounds, "leaders": leaders,
            "last_round": rounds[-1][0] if rounds else None,
            "rounds_svg": bar_chart(per_round, title="Messages finalized per ledger round",
                                    unit="messages") if per_round else "",
        }

    @ui.get("/ledger", response_class=HTMLResponse)
    async def ledger(request: Request) -> Response:
        current(request)
        # The validator's state belongs to its event loop: read it here, on that loop.
        status = validator() if validator is not None else None
        view = await run_in_threadpool(ledger_view)
        finality_svg = ""
        stages: list[tuple[str, dict[str, Any]]] = []
        if status is not None:
            latency = status.get("latency", {})
            stages = [(name, q) for name in ("admit_to_propose", "propose_to_commit",
                                             "commit_to_apply", "admit_to_apply")
                      if isinstance(q := latency.get(name), dict)]
            if stages:
                finality_svg = grouped_chart(
                    [n.replace("_to_", " → ").replace("_", " ") for n, _ in stages],
                    [("p50", [q["p50_s"] for _, q in stages]),
                     ("p99", [q["p99_s"] for _, q in stages])],
                    title="Finality latency per stage, last 10 s (seconds)", unit="s")
        consortium = await _consortium_view(runtime.settings.validator_endpoints)
        return render(request, "ledger.html", status=200, validator=status,
                      finality_svg=finality_svg, stages=stages, consortium=consortium, **view)

    # -- settlement netting ------------------------------------------------------------

    @ui.get("/settlement", response_class=HTMLResponse)
    def settlement(request: Request, period: str = "") -> Response:
        _session, who = current(request)
        store = StatementStore(runtime.db)
        scope = _scope(who)
        result = None
        stored: list[Any] = []
        if period:
            stored = store.statements(period, scope)  # InvalidInput: a 400 page
            if not stored:
                raise NotFound(f"no statements stored for {period}")
            result = _netting_view(stored)
        return render(request, "settlement.html", errors={},
                      values={"signatures": "", "period": ""}, result=result,
                      periods=store.periods(scope), period=period, stored=len(stored),
                      is_admin=who.role != "tenant-viewer")

    @ui.post("/settlement", response_class=HTMLResponse)
    async def settlement_net(request: Request) -> Response:
        session, who = current(request)
        fields = await form_of(request, session)
        text = fields.get("statements", "")
        values = {"statements": text[:_MAX_STATEMENTS_TEXT],
                  "signatures": "1" if fields.get("signatures") else "",
                  "period": fields.get("period", "")[:40]}
        errors: dict[str, str] = {}
        statements: list[Any] = []
        if not text.strip():
            errors["statements"] = "paste the statements: a JSON array of signed statements"
        elif len(text) > _MAX_STATEMENTS_TEXT:
            errors["statements"] = "at most 1,000,000 characters"
        else:
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                errors["statements"] = f"not JSON: {exc.msg} (line {exc.lineno})"
            except ValueError:
                errors["statements"] = "not JSON"
            else:
                if isinstance(parsed, dict) and isinstance(parsed.get("statements"), list):
                    parsed = parsed["statements"]
                if not isinstance(parsed, list) or not parsed:
                    errors["statements"] = "a non-empty JSON array of statements"
                else:
                    statements = parsed
        period = values["period"].strip()
        if period:
            if who.role == "tenant-viewer":
                errors["period"] = "a viewer key cannot store statements; leave the period empty"
            else:
                try:
                    check_period(period)
                except InvalidInput as exc:
                    errors["period"] = exc.detail
        result = None
        if "statements" not in errors:
            try:
                # The rules of POST /v1/settlement/net and POST /v1/settlement/statements.
                check_statements(statements, require_signatures=bool(values["signatures"]))
                result = _netting_view(statements)
            except InvalidInput as exc:
                errors["statements"] = exc.detail
        store = StatementStore(runtime.db)
        if period and not errors:
            tenant = _scope(who)
            stored = await run_in_threadpool(
                store.put, statements, period=period, tenant_id=tenant,
                require_signatures=bool(values["signatures"]), now=runtime.clock())
            runtime.audit.append(actor=who.actor, action="settlement.statements.store",
                                 subject=f"period:{period}", outcome="success",
                                 tenant_id=tenant, details=stored, durable=True)
            return RedirectResponse("/ui/settlement?" + urlencode({"period": period}),
                                    status_code=303)
        return render(request, "settlement.html", status=422 if errors else 200,
                      errors=errors, values=values, result=None if errors else result,
                      periods=store.periods(_scope(who)), period="", stored=0,
                      is_admin=who.role != "tenant-viewer")

    # -- marketplace -------------------------------------------------------------------

    @ui.get("/market", response_class=HTMLResponse)
    def market(request: Request) -> Response:
        _session, who = current(request)
        scope = _scope(who)
        where, params = ("WHERE tenant_id = ?", [scope]) if scope else ("", [])
        rows = runtime.db.query(
            f"SELECT id, tenant_id, state, body, created_at, updated_at FROM market_orders"
            f" {where} ORDER BY created_at DESC, id DESC LIMIT ?", (*params, _LIST))
        orders = []
        for oid, tenant, state, body, created, updated in rows:
            doc = json.loads(str(body))
            items = doc.get("productOrderItem") or []
            orders.append({
                "id": str(oid), "tenant": tenant, "state": str(state), "created": str(created),
                "updated": str(updated),
                "products": [str((i.get("productOffering") or {}).get("name")
                               or (i.get("productOffering") or {}).get("id") or i.get("id", ""))
                          for i in items if isinstance(i, dict)],
                "actions": sorted({str(i.get("action", "")) for i in items
                                   if isinstance(i, dict)} - {""}),
            })
        by_state: dict[str, float] = {}
        for state, n in runtime.db.query(
                f"SELECT state, COUNT(*) FROM market_orders {where} GROUP BY state ORDER BY 1",
                params):
            by_state[str(state)] = float(n)
        return render(request, "market.html", orders=orders, by_state=by_state,
                      chart=bar_chart(list(by_state.items()), title="Product orders by state",
                                      unit="orders") if by_state else "")

    # -- streams and provenance --------------------------------------------------------

    @ui.get("/streams", response_class=HTMLResponse)
    def streams(request: Request) -> Response:
        _session, who = current(request)
        scope = _scope(who)
        service = runtime.streams
        where, params = ("WHERE tenant_id = ?", [scope]) if scope else ("", [])
        data = runtime.db.query(
            f"SELECT datum_id, tenant_id, channel, label, inputs, created_at FROM stream_data"
            f" {where} ORDER BY created_at DESC LIMIT ?", (*params, _LIST))
        return render(request, "streams.html", channels=service.channels(scope, limit=_LIST),
                      meters=service.meters(scope, limit=_LIST),
                      data=[{"id": str(d), "tenant": t, "channel": c, "label": str(label),
                             "inputs": len(json.loads(str(i))), "created": str(at)}
                            for d, t, c, label, i, at in data])

    @ui.get("/provenance/{datum_id}", response_class=HTMLResponse)
    def provenance(request: Request, datum_id: str) -> Response:
        _session, who = current(request)
        missing = NotFound(f"no datum {datum_id[:80]!r}")
        try:
            tenant = runtime.streams.datum_tenant(datum_id)
        except NotFound:
            raise missing from None
        who.check_tenant(tenant, missing)
        graph = runtime.streams.provenance(datum_id)
        nodes = sorted(graph["nodes"].items(), key=lambda kv: kv[0])
        return render(request, "provenance.html", datum=datum_id.lower(), graph=graph,
                      nodes=nodes, svg=provenance_svg(graph))

    # -- credentials -------------------------------------------------------------------

    @ui.get("/credentials", response_class=HTMLResponse)
    def credentials(request: Request, before: int | None = None) -> Response:
        _session, who = current(request)
        scope = _scope(who)
        merged: list[Any] = []
        for action in CREDENTIAL_ACTIONS:
            merged.extend(runtime.audit.recent(action=action, tenant_id=scope,
                                               before_seq=before, limit=_LIST))
        merged.sort(key=lambda e: e.seq, reverse=True)
        issued = merged[:_LIST]
        select = ("SELECT a.credential_id, a.list_id, a.idx, l.purpose FROM identity_status_alloc"
                  " a JOIN identity_status_list l ON l.list_id = a.list_id")
        if who.is_operator:
            entries = runtime.db.query(
                select + " WHERE a.credential_id IS NOT NULL ORDER BY l.updated DESC, a.idx DESC"
                " LIMIT ?", (_LIST,))
        else:  # a tenant: the entries of the credentials issued for it (on this page)
            mine = sorted({e.subject for e in issued})
            entries = runtime.db.query(
                select + f" WHERE a.credential_id IN ({', '.join('?' * len(mine))})"
                " ORDER BY a.list_id, a.idx", mine) if mine else []
        return render(request, "credentials.html", issued=issued, entries=entries,
                      is_operator=who.is_operator,
                      next_before=issued[-1].seq if len(issued) == _LIST else None)


async def _consortium_view(endpoints: tuple[tuple[str, Path], ...]) -> dict[str, Any] | None:
    """The configured validators' health and finality latency (None: none configured)."""
    if not endpoints:
        return None
    reports = await ask_validators(endpoints)
    rounds = [r.status["round"] for r in reports if r.status is not None]
    top = max(rounds, default=0)
    rows: list[dict[str, Any]] = []
    for r in reports:
        if r.status is None:
            rows.append({"address": r.address, "error": r.error})
            continue
        s = r.status
        behind = top - int(s["round"])
        links = s.get("links")
        latency = s.get("latency") or {}
        rows.append({
            "address": r.address, "error": "", "id": s.get("validator"),
            "epoch": s.get("epoch"), "round": s["round"],
            "decided": s.get("last_decided_round"), "commits": s.get("commits"),
            "finalized": s.get("finalized"), "behind": behind, "health": health(behind),
            "links": len(links) if isinstance(links, list | dict) else links,
            "syncing": (s.get("syncing") or {}).get("peer") if s.get("syncing") else None,
            "stages": [(name, q) for name in STAGES
                       if isinstance(q := latency.get(name), dict) and q.get("count")],
        })
    sampled = [row for row in rows if not row["error"] and any(
        name == "admit_to_apply" for name, _ in row["stages"])]
    chart = ""
    if sampled:
        end_to_end: list[dict[str, Any]] = [dict(row["stages"])["admit_to_apply"]
                                            for row in sampled]
        chart = grouped_chart(
            [f"validator {row['id']}" for row in sampled],
            [("p50", [q["p50_s"] for q in end_to_end]),
             ("p99", [q["p99_s"] for q in end_to_end])],
            title="Finality latency per validator, admitted to applied, last 10 s (seconds)",
            unit="s")
    return {"rows": rows, "chart": chart, "highest": top,
            "reachable": len(rounds), "listed": len(reports)}


def _netting_view(statements: list[Any]) -> list[dict[str, Any]]:
    """Per currency: each party's gross owed and due (before netting) and net position (after).

    The gross side nets each statement alone with the same function, so both sides
    apply one set of rules (discounts, dispute resolutions).
    """
    netted = net_statements(statements)
    owes: dict[str, dict[str, int]] = {}
    due: dict[str, dict[str, int]] = {}
    for statement in statements:
        for currency, book in net_statements([statement])["currencies"].items():
            for party, amount in book["positions"].items():
                side = owes if amount < 0 else due
                side.setdefault(currency, {})
                side[currency][party] = side[currency].get(party, 0) + abs(amount)
    out = []
    for currency, book in netted["currencies"].items():
        parties = list(book["positions"])
        o = [owes.get(currency, {}).get(p, 0) for p in parties]
        d = [due.get(currency, {}).get(p, 0) for p in parties]
        n = [int(book["positions"][p]) for p in parties]
        out.append({
            "currency": currency, "book": book,
            "rows": list(zip(parties, o, d, n, strict=True)),
            "chart": grouped_chart(
                parties, [("owes, before netting", [-v for v in o]),
                          ("is owed, before netting", d), ("net position, after", n)],
                title=f"Settlement positions in {currency} before and after netting"
                      " (minor units)", unit=currency),
        })
    return out
