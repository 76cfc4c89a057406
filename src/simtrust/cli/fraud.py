"""``simtrust fraud``: the fraud detectors offline, their alerts, status and shared reports.

``simtrust fraud analyse EVENTS.jsonl [--models MODELS.csv] [--blocklist FILE] [--json]``
reads one :class:`~simtrust.detect.SimEvent` JSON object per line (``at`` in
UNIX seconds, ``imsi``, ``kind`` and the optional ``plmn``, ``imei``, ``cell``,
``lat``/``lon``, ``session``, ``tenant``), in time order, and prints the
alerts: with ``--json`` one JSON object per alert per line, otherwise a
summary. ``--models`` is a CSV of ``imsi,tac`` rows (the TACs of the device
model registered for each SIM); ``--blocklist`` one IMEI or TAC per line. A
malformed line or file: one line on stderr, exit 2, nothing printed before it.
The scenario generator and evaluation are test gear:
``python -m simtrust.testing.fraud generate|evaluate``.

On the data directory (``SIMTRUST_HOME``): ``alerts`` lists the detectors'
alerts from the audit log, ``status`` the serving process's detector and
signalling-storm counters and the sharing state; with a consortium
(``SIMTRUST_FRAUD_CONSORTIUM``, docs/fraud.md "Sharing") ``publish`` signs
and puts a fraud report on the ledger (``--alert EVENT_ID`` or
``--indicator`` with ``--imsi``/``--imei``/``--tac``), ``reports`` lists the
consortium's reports, ``revoke`` withdraws one's own, ``confirm`` a partner's;
``consortium rotate|accept|show`` is the key membership protocol
(:mod:`simtrust.cli._fraud_consortium`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from simtrust.cli._common import emit_json, open_runtime, read_text
from simtrust.cli._fraud_consortium import app as consortium_app
from simtrust.cli._fraud_records import register as _register_records
from simtrust.detect import (
    VERDICTS,
    FraudDetector,
    SimEvent,
)
from simtrust.errors import InvalidInput, Rejected, SimtrustError
from simtrust.fraudshare import (
    INDICATORS,
    SEVERITIES,
    fraud_report,
    report_from_alert,
)
from simtrust.runtime import Runtime

__all__ = ["NAME", "app"]

NAME = "fraud"

app = typer.Typer(
    name=NAME,
    help="Fraud detection: impossible travel, cloned SIMs, equipment; shared fraud reports.",
    no_args_is_help=True,
)
app.add_typer(consortium_app, name="consortium")


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust fraud: error: {message}", err=True)
    raise typer.Exit(2)


def _events(path: Path) -> list[SimEvent]:
    out: list[SimEvent] = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(SimEvent.from_json(json.loads(line)))
        except json.JSONDecodeError as exc:
            _fail(f"{path}:{n}: not JSON ({exc.msg})")
        except SimtrustError as exc:
            _fail(f"{path}:{n}: {exc.detail}")
    return out


def _models(path: Path) -> dict[str, frozenset[str]]:
    tacs: dict[str, set[str]] = {}
    for n, row in enumerate(csv.reader(io.StringIO(read_text(path))), 1):
        if not row or row[0].strip().lower() == "imsi":
            continue
        if len(row) != 2 or not row[0].strip().isdigit() or len(row[1].strip()) != 8 \
                or not row[1].strip().isdigit():
            _fail(f"{path}:{n}: expected 'imsi,tac' with an 8-digit TAC")
        tacs.setdefault(row[0].strip(), set()).add(row[1].strip())
    shared: dict[frozenset[str], frozenset[str]] = {}
    return {imsi: shared.setdefault(frozenset(t), frozenset(t)) for imsi, t in tacs.items()}


@app.command("analyse")
def analyse(
    events: Annotated[Path, typer.Argument(help="JSON lines of SIM events, in time order.")],
    models: Annotated[Path | None, typer.Option(help="CSV imsi,tac of registered models.")] = None,
    blocklist: Annotated[Path | None, typer.Option(help="Blocklisted IMEIs/TACs, one a line.")]
    = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per alert.")] = False,
) -> None:
    """Run the impossible-travel, cloned-SIM and equipment detectors over EVENTS."""
    try:
        stream = _events(events)
        registered = _models(models) if models else {}
        blocked = [x.strip() for x in read_text(blocklist).splitlines() if x.strip()] \
            if blocklist else []
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except SimtrustError as exc:
        _fail(exc.detail)
    bad = [b for b in blocked if not b.isdigit() or len(b) not in (8, 14, 15)]
    if bad:
        _fail(f"blocklist entry {bad[0]!r} is not a TAC or an IMEI")
    detector = FraudDetector(models=registered, blocked=blocked)
    alerts = detector.observe_many(stream)
    if json_out:
        for alert in alerts:
            emit_json(alert.to_json())
        return
    counts = Counter(a.kind for a in alerts)
    typer.echo(f"{len(stream)} events, {len(detector)} SIMs, {len(alerts)} alerts"
               + "".join(f", {k}: {v}" for k, v in sorted(counts.items())))
    for alert in alerts:
        typer.echo(f"  {alert.to_json()['raised_at']} {alert.kind} {alert.summary}")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ACTOR = "cli:fraud"


@app.command("alerts")
def alerts(
    kind: Annotated[str | None, typer.Option(help="Only this kind of fraud alert.")] = None,
    imsi: Annotated[str | None, typer.Option(help="Only this SIM's alerts.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """The fraud detectors' alerts with their case state, newest first (audit log)."""
    rt = open_runtime()
    try:
        rows = rt.fraud_cases.alerts(kind=kind, imsi=imsi, limit=limit)
    finally:
        rt.close()
    if json_out:
        emit_json({"alerts": rows})
        return
    for row in rows:
        typer.echo(f"{row['event_id']} {row.get('raised_at')} {row.get('kind')} "
                   f"[{row['case']['state']}] {row.get('summary')}")


@app.command("verdict")
def verdict(
    alert: Annotated[str, typer.Argument(help="The alert's audit event id.")],
    decision: Annotated[str, typer.Argument(metavar="confirmed|dismissed")],
    note: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Close an alert's case as confirmed or dismissed (audited)."""
    if decision not in VERDICTS:
        raise InvalidInput(f"the verdict is one of {', '.join(VERDICTS)}")
    rt = open_runtime()
    try:
        cases = rt.fraud_cases
        case = cases.verdict(cases.alert(alert), decision, note, actor=ACTOR)
    finally:
        rt.close()
    if json_out:
        emit_json({"alert": alert, "case": case})
        return
    typer.echo(f"alert {alert}: {case['state']}")


@app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """Detector and storm counters of the serving process; the sharing state."""
    rt = open_runtime()
    try:
        path = rt.fraud_status_file
        serving = json.loads(path.read_text("utf-8")) if path.is_file() else None
        sharing = None
        if rt.settings.fraud_consortium:
            rt.fraud_intel.catch_up(rt.ledger)
            sharing = rt.fraud_intel.stats()
    finally:
        rt.close()
    out = {"serving": serving, "sharing": sharing}
    if json_out:
        emit_json(out)
        return
    if serving is None:
        typer.echo("no serving process has written counters (simtrust serve)")
    else:
        det = serving["detector"]
        typer.echo(f"detector: {det['sims']} SIMs, {det['events']} events, "
                   f"{det['alerts']} alerts (at {serving['at']})")
        for name, stats in sorted(serving.get("storm", {}).items()):
            if stats:
                typer.echo(f"storm {name}: admitted {stats['admitted']}, refused "
                           f"{stats['refused']}")
    if sharing is not None:
        typer.echo(f"sharing: {sharing['reports']} reports ({sharing['revoked']} revoked), "
                   f"{sharing['matches']} matches, {sharing['refused']} refused, "
                   f"key epoch {sharing['key_epoch']}")


def _applied(rt: Runtime, message_id: bytes) -> dict[str, Any]:
    intel = rt.fraud_intel
    intel.catch_up(rt.ledger)
    found = intel.outcome(message_id)
    if found is not None and found[0] == "refused":
        raise Rejected(found[1], f"the fraud intelligence was refused: {found[1]}")
    return {"message_id": message_id.hex(), "outcome": found[0] if found else "pending"}


@app.command("publish")
def publish(
    alert: Annotated[str | None, typer.Option(help="Report this alert (audit event id).")]
    = None,
    indicator: Annotated[str | None, typer.Option(help=f"One of {', '.join(INDICATORS)}.")]
    = None,
    severity: Annotated[str, typer.Option(help=f"One of {', '.join(SEVERITIES)}.")] = "high",
    imsi: Annotated[list[str] | None, typer.Option(help="An IMSI (keyed-hashed).")] = None,
    imei: Annotated[list[str] | None, typer.Option(help="An IMEI (keyed-hashed).")] = None,
    tac: Annotated[list[str] | None, typer.Option(help="A TAC (in clear).")] = None,
    evidence: Annotated[Path | None, typer.Option(help="JSON evidence (only its digest is "
                                                       "published).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign a fraud report as the platform issuer and put it on the ledger."""
    if severity not in SEVERITIES:
        raise InvalidInput(f"--severity is one of {', '.join(SEVERITIES)}")
    kept: dict[str, Any] = {}
    if evidence is not None:
        try:
            kept = json.loads(read_text(evidence))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{evidence}: not JSON ({exc.msg})") from None
        if not isinstance(kept, dict):
            raise InvalidInput(f"{evidence}: evidence is a JSON object")
    rt = open_runtime()
    try:
        intel = rt.fraud_intel
        now = rt.clock()
        if alert is not None:
            event = rt.fraud_cases.alert(alert)
            args = report_from_alert(event.details)
            if indicator is not None:
                args["indicator"] = indicator
        else:
            if indicator is None:
                raise InvalidInput("give --alert or --indicator")
            args = {"indicator": indicator, "imsis": imsi or [], "imeis": imei or [],
                    "tacs": tac or [], "evidence": kept, "observed_at": now.astimezone(UTC)}
        if args["indicator"] not in INDICATORS:
            raise InvalidInput(f"--indicator is one of {', '.join(INDICATORS)}")
        credential = fraud_report(rt.identity.issuer(), intel.keys.get(intel.keys.current),
                                  severity=severity, now=now, **args,
                                  status_entry=intel.status_entry)
        out = {"id": credential["id"],
               **_applied(rt, intel.publish(rt.ledger.issue_data, credential))}
    finally:
        rt.close()
    if json_out:
        emit_json(out)
        return
    typer.echo(f"fraud report {out['id']} {out['outcome']} (message {out['message_id']})")


@app.command("reports")
def reports(json_out: JsonOpt = False) -> None:
    """The consortium's fraud reports this member holds."""
    rt = open_runtime()
    try:
        intel = rt.fraud_intel
        intel.catch_up(rt.ledger)
        found = intel.reports()
    finally:
        rt.close()
    if json_out:
        emit_json({"reports": found})
        return
    for r in found:
        state = f"revoked: {r['revoked']}" if r["revoked"] else \
            f"{len(r['confirmed_by'])} confirmations"
        typer.echo(f"{r['id']} {r['indicator']} {r['severity']} by {r['issuer']} ({state})")


@app.command("revoke")
def revoke(
    report: Annotated[str, typer.Argument(help="The id of one of this operator's reports.")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn.")] = "withdrawn",
    json_out: JsonOpt = False,
) -> None:
    """Withdraw one of this operator's reports (a wrong report)."""
    rt = open_runtime()
    try:
        intel = rt.fraud_intel
        intel.catch_up(rt.ledger)
        out = _applied(rt, intel.revoke(rt.ledger.issue_data, rt.identity.issuer(), report,
                                        reason, rt.clock()))
    finally:
        rt.close()
    if json_out:
        emit_json(out)
        return
    typer.echo(f"revocation of {report} {out['outcome']}")


@app.command("confirm")
def confirm(
    report: Annotated[str, typer.Argument(help="The id of a partner's report.")],
    json_out: JsonOpt = False,
) -> None:
    """Confirm a partner's report that matched and proved right."""
    rt = open_runtime()
    try:
        intel = rt.fraud_intel
        intel.catch_up(rt.ledger)
        out = _applied(rt, intel.confirm(rt.ledger.issue_data, rt.identity.issuer(), report,
                                         rt.clock()))
    finally:
        rt.close()
    if json_out:
        emit_json(out)
        return
    typer.echo(f"confirmation of {report} {out['outcome']}")




_register_records(app)  # usage-import, tac-import, tac-status (cli/_fraud_records.py)
