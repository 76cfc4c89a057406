"""Fraud over HTTP: alerts with their evidence and cases, status and storm counters, reports.

Alerts are the fraud detectors' entries in the audit log (a tenant key sees
its own SIMs'), each with its case state; a verdict (confirmed, dismissed)
closes a case and is audited. Status carries the serving process's detector, sharing and
signalling-storm counters of the Diameter, SBI and RADIUS listeners (written
by ``simtrust serve``; the API workers are other processes). Shared fraud
reports (docs/fraud.md "Sharing") are operator-admin: publish a report (from
an alert or given values), revoke one's own, confirm a partner's, read
reports and reporters' reputation.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import INT64, INT64_MAX, CurrentPrincipal, CurrentRuntime
from simtrust.api.problems import problem_responses
from simtrust.detect import (
    FRAUD_ALERT_KINDS,
    VERDICTS,
)
from simtrust.errors import InvalidInput, NotFound, Rejected
from simtrust.fraudshare import (
    INDICATORS,
    SEVERITIES,
    fraud_report,
    report_from_alert,
)
from simtrust.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/v1/fraud", tags=["fraud"])

_ERRORS = problem_responses({
    400: "Invalid input",
    401: "No or unknown API key",
    403: "Not allowed for this key (or not the reporter)",
    404: "No such alert or report",
    409: "Fraud sharing is not configured",
    422: "Request does not validate, or the ledger refused it",
})
_ACTIONS = tuple(f"detect.alert.{k}" for k in FRAUD_ALERT_KINDS)


class ReportIn(BaseModel):
    """A report from one of this operator's fraud alerts, or from the values given."""

    model_config = ConfigDict(extra="forbid")
    alert: str | None = Field(None, max_length=100, description="Audit event id of an alert.")
    indicator: str | None = Field(None, description=f"One of {', '.join(INDICATORS)}.")
    severity: str = Field("high", description=f"One of {', '.join(SEVERITIES)}.")
    imsis: list[str] = Field(default_factory=list, max_length=64)
    imeis: list[str] = Field(default_factory=list, max_length=64)
    tacs: list[str] = Field(default_factory=list, max_length=64)
    evidence: dict[str, Any] = Field(default_factory=dict)
    observed_at: datetime | None = None


class RevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report: str = Field(min_length=1, max_length=200)
    reason: str = Field("withdrawn", min_length=1, max_length=200)


class ConfirmationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report: str = Field(min_length=1, max_length=200)


def _outcome(rt: Runtime, message_id: bytes) -> dict[str, Any]:
    """Applied (or pending consensus); a refusal by this member's own rules is a 422."""
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    found = intel.outcome(message_id)
    if found is not None and found[0] == "refused":
        raise Rejected(found[1], f"the fraud intelligence was refused: {found[1]}")
    return {"message_id": message_id.hex(), "outcome": found[0] if found else "pending"}


@router.get("/status", responses=_ERRORS, summary="Fraud detector, sharing and storm counters")
def fraud_status(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    path = rt.fraud_status_file
    serving: dict[str, Any] | None = None
    if path.is_file():
        serving = json.loads(path.read_text("utf-8"))
    sharing = None
    if rt.settings.fraud_consortium:
        rt.fraud_intel.catch_up(rt.ledger)
        sharing = rt.fraud_intel.stats()
    return {"serving": serving, "sharing": sharing}


@router.get("/alerts", responses=_ERRORS, summary="Fraud alerts with their case state")
def list_alerts(
    rt: CurrentRuntime, who: CurrentPrincipal, kind: str | None = None, imsi: str | None = None,
    tenant_id: str | None = None,
    before_seq: int = Query(INT64_MAX, ge=1, le=INT64_MAX, json_schema_extra=INT64,
                           description="Only alerts recorded before this audit sequence."),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    return {"alerts": rt.fraud_cases.alerts(kind=kind, imsi=imsi, tenant_id=who.scope(tenant_id),
                                            before_seq=before_seq, limit=limit)}


def _visible_alert(rt: Runtime, who: Any, event_id: str) -> Any:
    event = rt.fraud_cases.alert(event_id)
    who.check_tenant(event.tenant_id, NotFound(f"no fraud alert {event_id!r}"))
    return event


@router.get("/alerts/{event_id}", responses=_ERRORS,
            summary="One fraud alert with its evidence and case state")
def get_alert(event_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    event = _visible_alert(rt, who, event_id)
    return rt.fraud_cases.view(event, rt.fraud_cases.case(event))


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: str = Field(description=f"One of {', '.join(VERDICTS)}.")
    note: str = Field("", max_length=500)


@router.post("/alerts/{event_id}/verdict", responses=_ERRORS,
             status_code=status.HTTP_201_CREATED,
             summary="Close an alert's case: confirmed or dismissed (audited)")
def put_verdict(event_id: str, body: VerdictIn, rt: CurrentRuntime,
                who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    event = _visible_alert(rt, who, event_id)
    case = rt.fraud_cases.verdict(event, body.verdict, body.note, actor=who.actor)
    out: dict[str, Any] = {"alert": event_id, "case": case, "confirmation": None}
    report = event.details.get("evidence", {}).get("report")
    if (body.verdict == "confirmed" and event.action == "detect.alert.shared-report"
            and who.is_operator and rt.settings.fraud_consortium and isinstance(report, str)):
        # the partner's report proved right: confirm it, which raises its reputation
        intel = rt.fraud_intel
        intel.catch_up(rt.ledger)
        out["confirmation"] = _outcome(
            rt, intel.confirm(rt.ledger.issue_data, rt.identity.issuer(), report, rt.clock()))
    return out


@router.get("/reports", responses=_ERRORS, summary="Shared fraud reports (operator-admin)")
def list_reports(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    return {"reports": intel.reports()}


@router.get("/reports/{report_id}", responses=_ERRORS, summary="One shared fraud report")
def get_report(report_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    report = intel.report(report_id)
    return {**report, "reputation": intel.reputation(report["issuer"])}


@router.post("/reports", responses=_ERRORS, status_code=status.HTTP_201_CREATED,
             summary="Publish a signed fraud report to the consortium (keyed-hash identifiers)")
def publish_report(body: ReportIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    intel = rt.fraud_intel
    now = rt.clock()
    if body.alert is not None:
        event = rt.fraud_cases.alert(body.alert)
        args = report_from_alert(event.details)
        if body.indicator is not None:
            args["indicator"] = body.indicator
    else:
        if body.indicator is None:
            raise InvalidInput("indicator is required without an alert", field="indicator")
        args = {"indicator": body.indicator, "imsis": body.imsis, "imeis": body.imeis,
                "tacs": body.tacs, "evidence": body.evidence,
                "observed_at": body.observed_at or now}
    if args["indicator"] not in INDICATORS:
        raise InvalidInput(f"indicator is one of {', '.join(INDICATORS)}", field="indicator")
    if body.severity not in SEVERITIES:
        raise InvalidInput(f"severity is one of {', '.join(SEVERITIES)}", field="severity")
    observed = args["observed_at"]
    if observed.tzinfo is None:
        args["observed_at"] = observed.replace(tzinfo=UTC)
    credential = fraud_report(rt.identity.issuer(), intel.keys.get(intel.keys.current),
                              severity=body.severity, now=now, **args,
                              status_entry=intel.status_entry)
    message_id = intel.publish(rt.ledger.issue_data, credential)
    return {"id": credential["id"], **_outcome(rt, message_id)}


@router.post("/revocations", responses=_ERRORS, status_code=status.HTTP_201_CREATED,
             summary="Revoke one of this operator's reports")
def revoke(body: RevocationIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    message_id = intel.revoke(rt.ledger.issue_data, rt.identity.issuer(), body.report, body.reason,
                              rt.clock())
    return _outcome(rt, message_id)


@router.post("/confirmations", responses=_ERRORS, status_code=status.HTTP_201_CREATED,
             summary="Confirm a partner's report (its reporter's reputation rises)")
def confirm(body: ConfirmationIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    message_id = intel.confirm(rt.ledger.issue_data, rt.identity.issuer(), body.report, rt.clock())
    return _outcome(rt, message_id)


@router.get("/reporters/{did:path}", responses=_ERRORS, summary="A reporter's reputation")
def reporter(did: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    return intel.reputation(did)
