"""Fraud signals over HTTP: voice/SMS usage records, the GSMA TAC database (operator-admin).

``POST /v1/fraud/usage-records`` takes the mediation's voice and SMS records
of SIMs (docs/fraud.md "Usage records"), maps each SIM (IMSI or ICCID) through
the inventory and puts them on the one per-SIM event path of the fraud
detectors (an API worker forwards them to the serving process,
docs/decisions/fraud-shared-event-stream.md). ``PUT /v1/fraud/tac-database``
replaces the imported GSMA TAC database (its CSV export as the body), ``GET``
says what is imported, and ``GET /v1/fraud/tac-database/{tac}`` checks one
TAC. Bad input is an RFC 9457 problem naming the record or line.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from starlette.concurrency import run_in_threadpool

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.api.problems import problem_responses
from simtrust.detect import parse_tac_csv, usage_events, usage_record
from simtrust.errors import InvalidInput

__all__ = ["router"]

router = APIRouter(prefix="/v1/fraud", tags=["fraud"])

#: Records one request may carry (the request body limit bounds it too).
MAX_RECORDS = 5_000
_ERRORS = problem_responses({
    400: "Invalid input (names the record or line)",
    401: "No or unknown API key",
    403: "Not an operator-admin key",
    413: "Request body too large",
    422: "Request does not validate",
})
_RECORD: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["kind", "direction", "start"],
    "properties": {
        "imsi": {"type": "string", "description": "The SIM's IMSI (or give iccid)"},
        "iccid": {"type": "string", "description": "The SIM's ICCID (or give imsi)"},
        "kind": {"type": "string", "enum": ["voice", "sms"]},
        "direction": {"type": "string", "enum": ["mo", "mt"],
                      "description": "mo: the SIM called or sent; mt: it was called or sent to"},
        "start": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
                  "description": "RFC 3339 time with offset, or UNIX seconds"},
        "duration": {"type": "number", "minimum": 0, "maximum": 86400,
                     "description": "Seconds of a call (voice only)"},
        "counterpart": {"type": "string",
                        "description": "The other party's number: accepted, never kept"},
    },
}


class UsageRecordsIn(BaseModel):
    """Voice calls and SMS of SIMs, as the operator's mediation delivers them."""

    model_config = ConfigDict(extra="forbid")
    records: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_RECORDS,
        json_schema_extra=cast("JsonDict", {"items": _RECORD}),
        description="One object per call or SMS (docs/fraud.md \"Usage records\")")


@router.post("/usage-records", responses=_ERRORS, status_code=status.HTTP_202_ACCEPTED,
             summary="Voice and SMS usage records for the phone-like-use detector")
def post_usage_records(body: UsageRecordsIn, rt: CurrentRuntime,
                       who: CurrentPrincipal) -> dict[str, Any]:
    """Accepted for the fraud detectors (queued to the serving process); records of
    SIMs the inventory does not hold are counted in ``unknown_sims`` and skipped."""
    who.require_operator()
    parsed = []
    for i, doc in enumerate(body.records):
        try:
            parsed.append(usage_record(doc))
        except InvalidInput as exc:
            raise InvalidInput(f"records[{i}]: {exc.detail}", field=f"records[{i}]") from None
    events, unknown = usage_events(parsed, rt.resolve_sim)
    alerts = rt.detect.observe_sims(events)
    return {"records": len(parsed), "queued": len(events), "unknown_sims": unknown,
            "alerts": len(alerts)}


_CSV_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"},
                 "example": "TAC,Marketing Name,Manufacturer (or) Applicant,"
                            "Allocation Date\n35328611,Module X,Example Ltd,01-Jan-2024\n"}}}}


@router.put("/tac-database", responses=_ERRORS, openapi_extra=_CSV_BODY,
            summary="Replace the imported GSMA TAC database (its CSV export)")
async def put_tac_database(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                           source: str = "GSMA TAC database") -> dict[str, Any]:
    """The body is the export: a header naming a ``TAC`` column, one TAC a row."""
    who.require_operator()
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the TAC database is not UTF-8 text", field="body") from None
    tacs = await run_in_threadpool(parse_tac_csv, text)
    return await run_in_threadpool(rt.tac_database.save, tacs, source, rt.clock())


@router.get("/tac-database", responses=_ERRORS, summary="What TAC database is imported")
def get_tac_database(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return {"imported": rt.tac_database.summary()}


@router.get("/tac-database/{tac}", responses=_ERRORS,
            summary="Whether a TAC is allocated (reporting bodies, imported database)")
def get_tac(tac: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    if len(tac) != 8 or not tac.isascii() or not tac.isdigit():
        raise InvalidInput("a TAC is 8 digits", field="tac")
    db = rt.tac_database
    problem = db.current().problem(tac)
    return {"tac": tac, "allocated": not problem, "reason": problem or None,
            "model": db.model(tac)}
