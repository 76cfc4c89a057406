"""``simtrust sim``: the SIM inventory — bulk import of vendor files, list, show, life cycle,
attach settings (``set``: binding mode, APN, static address) and the tenant's identifier
ranges (``allocate``) and IP networks (``allocate-addresses``).

``import`` reads a SIM-vendor output file (headers in docs/subscriber.md) in one
transaction with a progress bar; on bad rows nothing is written and every bad
row is reported by line number (exit code 2). ``--json`` prints one object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args

import typer
from rich.table import Table

from simtrust.cli._common import console, emit_json, err_console, open_runtime, progress_bar
from simtrust.errors import InvalidInput
from simtrust.subscriber import (
    BindingMode,
    Iccid,
    ImportRejected,
    Roaming,
    SimState,
    count_rows,
)

__all__ = ["NAME", "app"]

NAME = "sim"

app = typer.Typer(name=NAME, help="SIM inventory: import vendor files, list, show, life cycle.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
ACTOR = "cli"


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="SIM-vendor CSV (ICCID, IMSI, KI, OPC|OP, ...)")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant the SIMs belong to.")],
    json_out: JsonOpt = False,
    errors_file: Annotated[
        Path | None, typer.Option("--errors", help="Also write the bad-row report here.")
    ] = None,
) -> None:
    """Import a vendor file all-or-nothing, with a progress bar."""
    if not file.is_file():
        err_console.print(f"simtrust sim: error: {file} is not a readable file")
        raise typer.Exit(2)
    rt = open_runtime()
    try:
        importer = rt.subscriber.importer
        total = count_rows(file)
        try:
            if json_out:
                summary = importer.import_file(file, tenant, actor=ACTOR)
            else:
                with progress_bar(f"importing {file.name}", total, unit="rows") as advance:
                    summary = importer.import_file(
                        file, tenant, actor=ACTOR, progress=lambda rows: advance(completed=rows))
        except ImportRejected as exc:
            _report_rejection(exc, json_out, errors_file)
            raise typer.Exit(2) from None
    finally:
        rt.close()
    if json_out:
        emit_json(summary.to_json())
        return
    console.print(
        f"imported [bold]{summary.imported:,}[/bold] SIMs for {tenant} in "
        f"{summary.seconds:.1f} s ({summary.rows_per_s:,.0f} rows/s); sha256 {summary.sha256}"
    )
    if summary.ignored_columns:
        console.print(f"ignored columns (not stored): {', '.join(summary.ignored_columns)}")


def _report_rejection(exc: ImportRejected, json_out: bool, errors_file: Path | None) -> None:
    lines = [str(e) for e in exc.errors]
    if errors_file is not None:
        errors_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if json_out:
        emit_json({"ok": False, "rows": exc.rows, "bad_rows": exc.context["bad_rows"],
                   "errors": [e.to_json() for e in exc.errors]})
        return
    err_console.print(f"[red]rejected:[/red] {exc.detail}")
    for line in lines:
        err_console.print(f"  {line}", markup=False, highlight=False)


@app.command("list")
def list_sims(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
    state: Annotated[SimState | None, typer.Option("--state")] = None,
    after: Annotated[str, typer.Option("--after", help="ICCID to continue after.")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List SIMs by ICCID (never their secrets)."""
    rt = open_runtime()
    try:
        inventory = rt.subscriber.inventory
        sims = inventory.list_sims(tenant, state=state, after=after, limit=limit)
        counts = inventory.count_sims(tenant)
    finally:
        rt.close()
    if json_out:
        emit_json({"sims": [s.to_json() for s in sims], "counts": counts})
        return
    table = Table("ICCID", "IMSI", "tenant", "state", "algorithm", "op", "APN")
    for sim in sims:
        table.add_row(sim.iccid.value, sim.imsi.value, sim.tenant_id, str(sim.state),
                      str(sim.algorithm), str(sim.op_kind), sim.apn or "")
    console.print(table)
    console.print(", ".join(f"{k}: {v:,}" for k, v in counts.items() if v) or "no SIMs")


@app.command("show")
def show(iccid: Annotated[str, typer.Argument()], json_out: JsonOpt = False) -> None:
    """Show one SIM, its bindings and address."""
    rt = open_runtime()
    try:
        services = rt.subscriber
        sim = services.inventory.get_sim(Iccid(iccid))
        doc: dict[str, Any] = sim.to_json()
        doc["bindings"] = services.inventory.bindings(sim.iccid)
        doc["address"] = services.addresses.address_of(sim.imsi.value)
    finally:
        rt.close()
    if json_out:
        emit_json(doc)
        return
    table = Table("field", "value", show_header=False)
    for key, value in doc.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


@app.command("transition")
def transition(
    iccid: Annotated[str, typer.Argument()],
    state: Annotated[SimState, typer.Argument(help="Target life-cycle state.")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Move a SIM along inventory → test → active → suspended → terminated."""
    rt = open_runtime()
    try:
        sim = rt.subscriber.inventory.transition(Iccid(iccid), state, actor=ACTOR,
                                                           reason=reason)
    finally:
        rt.close()
    if json_out:
        emit_json(sim.to_json())
        return
    console.print(f"SIM {sim.iccid} is now [bold]{sim.state}[/bold]")


@app.command("sessions")
def sessions(
    iccid: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """The SIM's RADIUS accounting sessions (newest first): volumes, time, network."""
    rt = open_runtime()
    try:
        sim = rt.subscriber.inventory.get_sim(Iccid(iccid))
        found = rt.aaa.accounting.sessions_of(sim.iccid.value, limit=limit)
    finally:
        rt.close()
    if json_out:
        emit_json({"iccid": iccid, "sessions": [s.to_json() for s in found]})
        return
    table = Table("session", "status", "started", "APN", "address", "in", "out", "time",
                  "visited")
    for s in found:
        table.add_row(s.acct_session_id, s.status, s.started_at, s.apn or "", s.framed_ip or "",
                      str(s.in_octets), str(s.out_octets), str(s.session_time),
                      s.visited_plmn or "")
    console.print(table)


ClearField = Literal["group_id", "apn", "static_ip", "binding_mode", "roaming"]


@app.command("set")
def set_attach_settings(
    iccid: Annotated[str, typer.Argument(help="The SIM's ICCID.")],
    binding_mode: Annotated[
        BindingMode | None,
        typer.Option("--binding-mode", help="IMEI binding of this SIM (overrides group/tenant)."),
    ] = None,
    apn: Annotated[str | None, typer.Option("--apn", help="APN the SIM attaches to.")] = None,
    static_ip: Annotated[
        str | None, typer.Option("--static-ip", help="Fixed address (no two SIMs share one).")
    ] = None,
    group: Annotated[int | None, typer.Option("--group", min=1, help="Device group id.")] = None,
    roaming: Annotated[
        list[str] | None,
        typer.Option("--roaming", help="Permitted network: *, MCC or MCC-MNC (repeatable)."),
    ] = None,
    clear: Annotated[
        list[str] | None,
        typer.Option("--clear", help="Unset: group_id, apn, static_ip, binding_mode, roaming."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Change a SIM's attach settings: binding mode, APN, static address, group, roaming."""
    cleared: list[ClearField] = []
    for name in clear or []:
        if name not in get_args(ClearField):
            raise InvalidInput(f"--clear takes one of {', '.join(get_args(ClearField))}")
        cleared.append(cast("ClearField", name))
    rt = open_runtime()
    try:
        sim = rt.subscriber.inventory.update_sim(
            Iccid(iccid), actor=ACTOR, binding_mode=binding_mode, apn=apn, static_ip=static_ip,
            group_id=group, roaming=Roaming.parse(roaming) if roaming is not None else None,
            clear=cleared,
        )
    finally:
        rt.close()
    if json_out:
        emit_json(sim.to_json())
        return
    console.print(f"SIM {sim.iccid}: binding {sim.binding_mode or '(group/tenant)'}, "
                  f"APN {sim.apn or '-'}, static address {sim.static_ip or '-'}")


@app.command("allocate")
def allocate(
    tenant: Annotated[str, typer.Argument(help="Tenant the ranges are allocated to.")],
    iccid_prefix: Annotated[
        list[str] | None, typer.Option("--iccid-prefix", help="ICCID prefix (repeatable).")
    ] = None,
    imsi_prefix: Annotated[
        list[str] | None, typer.Option("--imsi-prefix", help="IMSI prefix (repeatable).")
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Only print the current ranges.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Set the ICCID/IMSI ranges a tenant's keys may provision (replaces the old ones)."""
    rt = open_runtime()
    try:
        allocations = rt.subscriber.inventory.allocations
        if show:
            result = allocations.get(tenant)
        else:
            result = allocations.set(tenant, iccid_prefixes=iccid_prefix or [],
                                     imsi_prefixes=imsi_prefix or [], actor=ACTOR)
    finally:
        rt.close()
    if json_out:
        emit_json(result.to_json())
        return
    console.print(f"{tenant}: ICCID {', '.join(result.iccid_prefixes) or '-'}; "
                  f"IMSI {', '.join(result.imsi_prefixes) or '-'}")


@app.command("allocate-addresses")
def allocate_addresses(
    tenant: Annotated[str, typer.Argument(help="Tenant the networks are allocated to.")],
    network: Annotated[
        list[str] | None,
        typer.Option("--network", help="CIDR block, IPv4 or IPv6 (repeatable)."),
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Only print the current networks.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Set the IP networks a tenant's static addresses and APN pools lie in (replaces
    the old ones; networks of different tenants never overlap)."""
    rt = open_runtime()
    try:
        rt.tenants.get_tenant(tenant)
        allocations = rt.subscriber.inventory.allocations
        if show:
            result = allocations.addresses(tenant)
        else:
            result = allocations.set_addresses(tenant, networks=network or [], actor=ACTOR)
    finally:
        rt.close()
    if json_out:
        emit_json(result.to_json())
        return
    console.print(f"{tenant}: {', '.join(result.networks) or '-'}")
