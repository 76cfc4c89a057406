"""``simtrust attach``: attach decisions, the equipment blocklist, the address map, and
each tenant's attach policy (``policy``: binding mode, swap action, roaming, webhook).

``check`` decides one attach exactly as the API does (binding on first use,
SIM-swap actions and alerts, audit) unless ``--dry-run`` is given; the exit
code is 0 for allow and 3 for deny so scripts can branch on it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from simtrust.cli._common import console, emit_json, err_console, open_runtime, read_text
from simtrust.subscriber import (
    BindingMode,
    ImportRejected,
    Plmn,
    Roaming,
    SwapAction,
    UnknownDevice,
)

__all__ = ["NAME", "app"]

NAME = "attach"

app = typer.Typer(name=NAME, help="Attach decisions, equipment blocklist, address map.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
DENIED_EXIT = 3


@app.command("check")
def check(
    imsi: Annotated[str, typer.Option("--imsi", help="IMSI of the SIM.")],
    imei: Annotated[str, typer.Option("--imei", help="IMEI (15) or IMEISV (16 digits).")],
    plmn: Annotated[str, typer.Option("--plmn", help="Serving PLMN, e.g. 00101 or 310-410.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Evaluate only: no binding, action or audit.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Decide whether a SIM in a device may attach in a serving network."""
    rt = open_runtime()
    try:
        decision = rt.subscriber.attach.decide(
            imsi, imei, Plmn.parse(plmn), actor="cli", dry_run=dry_run
        )
    finally:
        rt.close()
    if json_out:
        emit_json(decision.to_json())
    else:
        colour = "green" if decision.allowed else "red"
        console.print(
            f"[{colour}]{'ALLOW' if decision.allowed else 'DENY'}[/{colour}] "
            f"{decision.reason}: {decision.detail}"
            + (f" (address {decision.address})" if decision.address else "")
        )
    if not decision.allowed:
        raise typer.Exit(DENIED_EXIT)


@app.command("blocklist-import")
def blocklist_import(
    file: Annotated[Path, typer.Argument(help="CSV: type,value[,value_to][,reason]")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant scope (default: global CEIR list).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Import IMEIs and TAC ranges into the blocklist, all-or-nothing."""
    text = read_text(file)
    rt = open_runtime()
    try:
        try:
            added = rt.subscriber.blocklist.import_csv(
                text, actor="cli", tenant_id=tenant, source=f"file:{file.name}"
            )
        except ImportRejected as exc:
            if json_out:
                emit_json({"ok": False, "errors": [e.to_json() for e in exc.errors]})
            else:
                err_console.print(f"[red]rejected:[/red] {exc.detail}")
                for error in exc.errors:
                    err_console.print(f"  {error}", markup=False, highlight=False)
            raise typer.Exit(2) from None
    finally:
        rt.close()
    if json_out:
        emit_json({"ok": True, "added": added})
    else:
        console.print(f"added {added} blocklist entries")


@app.command("lookup")
def lookup(
    address: Annotated[str, typer.Argument(help="IP address a SIM was given at attach.")],
    json_out: JsonOpt = False,
) -> None:
    """Which SIM holds an IP address (the flow collector's question)."""
    rt = open_runtime()
    try:
        imsi = rt.subscriber.addresses.lookup(address)
    finally:
        rt.close()
    if json_out:
        emit_json({"address": address, "imsi": imsi})
    else:
        console.print(imsi or f"no SIM holds {address}")
    if imsi is None:
        raise typer.Exit(1)


@app.command("policy")
def policy(
    tenant: Annotated[str, typer.Argument(help="The tenant.")],
    binding_mode: Annotated[
        BindingMode | None, typer.Option("--binding-mode", help="Default IMEI binding.")
    ] = None,
    swap_action: Annotated[
        SwapAction | None, typer.Option("--swap-action", help="What a SIM swap does.")
    ] = None,
    unknown_device: Annotated[
        UnknownDevice | None,
        typer.Option("--unknown-device", help="Devices not in the inventory: allow or deny."),
    ] = None,
    roaming: Annotated[
        list[str] | None,
        typer.Option("--roaming", help="Permitted network: *, MCC or MCC-MNC (repeatable)."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="http(s) URL SIM-swap alerts are posted to.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a tenant's attach policy, or change the settings given."""
    rt = open_runtime()
    try:
        inventory = rt.subscriber.inventory
        current = inventory.policy(tenant)
        changes: dict[str, Any] = {
            "binding_mode": binding_mode, "swap_action": swap_action,
            "unknown_device": unknown_device, "webhook_url": webhook,
            "roaming": Roaming.parse(roaming) if roaming is not None else None,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes:
            current = inventory.set_policy(dataclasses.replace(current, **changes), actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(current.to_json())
        return
    for key, value in current.to_json().items():
        console.print(f"{key}: {value}")
