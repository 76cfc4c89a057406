"""The audit trail over HTTP: query records and verify the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from simtrust.api.deps import INT64, INT64_MAX, CurrentPrincipal, CurrentRuntime
from simtrust.audit.anchoring import anchor_pending, prove_event
from simtrust.errors import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/events", summary="Query audit records (a tenant sees only its own)")
def query_events(
    rt: CurrentRuntime,
    who: CurrentPrincipal,
    subject: str | None = None,
    tenant_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = Query(0, ge=0, le=INT64_MAX, json_schema_extra=INT64),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    scope = who.scope(tenant_id)
    events = rt.audit.query(subject=subject, tenant_id=scope, action=action, since=since,
                            until=until, after_seq=after_seq, limit=limit)
    return {"events": [e.to_json() for e in events]}


@router.get("/events/{event_id}", summary="Get one audit record")
def get_event(event_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    event = rt.audit.get(event_id)
    if event is None:
        raise NotFound(f"no audit event {event_id!r}")
    who.check_tenant(event.tenant_id, NotFound(f"no audit event {event_id!r}"))
    return event.to_json()


@router.get("/events/{event_id}/proof",
            summary="Inclusion proof of a record against its finalized ledger anchor")
def prove(event_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:

    event = rt.audit.get(event_id)
    if event is None:
        raise NotFound(f"no audit event {event_id!r}")
    who.check_tenant(event.tenant_id, NotFound(f"no audit event {event_id!r}"))
    return prove_event(rt.audit, rt.ledger, event_id)


@router.post("/anchor", summary="Anchor every record not anchored yet (operator-admin)")
def anchor(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:

    who.require_operator()
    receipt = anchor_pending(rt.audit, rt.ledger)
    return receipt.to_json() if receipt else {"anchored": 0}


@router.post("/verify", summary="Verify the whole hash chain (operator-admin)")
def verify_chain(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    breaks = rt.audit.verify()
    return {
        "intact": not breaks,
        "records": rt.audit.count(),
        "breaks": [
            {"seq": b.seq, "event_id": b.event_id, "problem": b.problem, "detail": b.detail}
            for b in breaks
        ],
    }
