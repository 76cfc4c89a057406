"""``simtrust meter``: meters registered by their device certificates, and their alerts.

``register CHANNEL CREDENTIAL.json --tenant T`` binds a channel to a meter:
the credential is a ``DeviceCertificate`` VC whose subject is the SIM's DID
(holding the channel's key), with ``meter``, ``iccid`` and ``imei`` claims;
an untrusted issuer or a revoked certificate is refused (docs/streams.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json, open_runtime, read_text
from simtrust.errors import InvalidInput

__all__ = ["NAME", "app"]

NAME = "meter"

app = typer.Typer(name=NAME, help="Trusted smart meters: register, list, alerts.",
                  no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@app.command("register")
def register(
    channel: Annotated[str, typer.Argument(help="The meter's channel id (hex).")],
    credential: Annotated[Path, typer.Argument(help="DeviceCertificate VC (JSON file).")],
    tenant: Annotated[str, typer.Option("--tenant", help="Owner tenant.")],
    json_out: JsonOut = False,
) -> None:
    """Register a meter by its device certificate."""
    try:
        document = json.loads(read_text(credential))
    except ValueError as exc:
        raise InvalidInput(f"{credential} is not JSON") from exc
    rt = open_runtime()
    try:
        doc = rt.streams.register_meter(tenant, channel, document, actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(doc)
    else:
        console.print(f"meter {doc['meter']} on channel {doc['channel']} (SIM {doc['iccid']})")


@app.command("list")
def list_meters(tenant: Annotated[str | None, typer.Option("--tenant")] = None,
                json_out: JsonOut = False) -> None:
    """Meters (of one tenant) with their last register and open alerts."""
    rt = open_runtime()
    try:
        meters = rt.streams.meters(tenant)
    finally:
        rt.close()
    if json_out:
        emit_json({"meters": meters})
        return
    for m in meters:
        console.print(f"{m['meter']}  {m['iccid']}  {m['register_wh']} Wh  "
                      f"{len(m['alerts'])} open alerts")


@app.command("show")
def show(meter: Annotated[str, typer.Argument(help="Meter id (a DID).")],
         json_out: JsonOut = False) -> None:
    """One meter."""
    rt = open_runtime()
    try:
        doc = rt.streams.meter(meter)
    finally:
        rt.close()
    if json_out:
        emit_json(doc)
        return
    for name in ("meter", "tenant_id", "channel", "sim_did", "iccid", "imei", "status",
                 "register_wh"):
        console.print(f"{name}: {doc[name]}")
    for alert in doc["alerts"]:
        console.print(f"alert {alert['id']} {alert['kind']}: {alert['explanation']}")


@app.command("verify")
def verify(meter: Annotated[str, typer.Argument(help="Meter id (a DID).")],
           json_out: JsonOut = False) -> None:
    """Verify a meter's device certificate now (a revoked one stops its readings)."""
    rt = open_runtime()
    try:
        doc = rt.streams.verify_meter(meter, actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(doc)
    else:
        console.print(f"meter {doc['meter']}: {doc['status']} (verified {doc['verified_at']})")


@app.command("alerts")
def alerts(meter: Annotated[str, typer.Argument(help="Meter id (a DID).")],
           json_out: JsonOut = False) -> None:
    """Every alert of a meter."""
    rt = open_runtime()
    try:
        rt.streams.meter(meter)
        found = rt.streams.alerts(meter=meter)
    finally:
        rt.close()
    if json_out:
        emit_json({"alerts": found})
        return
    for alert in found:
        state = "closed" if alert["closed_at"] else "open"
        console.print(f"{alert['id']} {state} {alert['kind']}: {alert['explanation']}")


@app.command("close-alert")
def close_alert(alert_id: Annotated[int, typer.Argument(min=1)],
                json_out: JsonOut = False) -> None:
    """Close an alert after investigation."""
    rt = open_runtime()
    try:
        doc = rt.streams.close_alert(alert_id, actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(doc)
    else:
        console.print(f"alert {alert_id} closed")
