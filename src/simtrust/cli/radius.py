"""``simtrust radius``: the RADIUS gateway clients, and Disconnect/CoA of a SIM's sessions.

``clients add CIDR --secret S [--coa-port N]`` registers a packet gateway (its
shared secret is sealed at rest and never printed); ``disconnect ICCID`` and
``coa ICCID`` act on every open session of the SIM (RFC 5176); ``clients cert
NAME --out DIR`` issues a gateway's RadSec client certificate (RFC 6614) from the
operator CA. Bad input: one
line on stderr, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from rich.table import Table

from simtrust.aaa import DEFAULT_COA_PORT, CoaResult
from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.subscriber import Iccid

__all__ = ["NAME", "app"]

NAME = "radius"
ACTOR = "cli"

app = typer.Typer(name=NAME, help="RADIUS AAA: gateway clients, Disconnect and CoA.",
                  no_args_is_help=True)
clients_app = typer.Typer(help="Packet gateways allowed to ask (CIDR + shared secret).",
                          no_args_is_help=True)
app.add_typer(clients_app, name="clients")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


@clients_app.command("add")
def clients_add(
    cidr: Annotated[str, typer.Argument(help="Source addresses of the gateway, e.g. 10.0.0.5/32.")],
    secret: Annotated[str, typer.Option("--secret", help="Shared secret (sealed at rest).")],
    coa_port: Annotated[int, typer.Option("--coa-port", help="Gateway's Disconnect/CoA port.")]
    = DEFAULT_COA_PORT,
    name: Annotated[str, typer.Option("--name", help="A label (default: the CIDR).")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Register a gateway."""
    rt = open_runtime()
    try:
        client = rt.aaa.clients.add(cidr, secret, actor=ACTOR, name=name, coa_port=coa_port)
    finally:
        rt.close()
    if json_out:
        emit_json(client.to_json())
        return
    console.print(f"RADIUS client {client.id} for {client.network} (CoA port {client.coa_port})")


@clients_app.command("list")
def clients_list(json_out: JsonOpt = False) -> None:
    """List the gateways (never their secrets)."""
    rt = open_runtime()
    try:
        clients = rt.aaa.clients.list()
    finally:
        rt.close()
    if json_out:
        emit_json({"clients": [c.to_json() for c in clients]})
        return
    table = Table("id", "cidr", "name", "coa port")
    for c in clients:
        table.add_row(str(c.id), str(c.network), c.name, str(c.coa_port))
    console.print(table)


@clients_app.command("remove")
def clients_remove(
    ref: Annotated[str, typer.Argument(help="Client id or CIDR.")],
    json_out: JsonOpt = False,
) -> None:
    """Remove a gateway."""
    rt = open_runtime()
    try:
        client = rt.aaa.clients.remove(ref, actor=ACTOR)
    finally:
        rt.close()
    if json_out:
        emit_json({"removed": client.to_json()})
        return
    console.print(f"removed RADIUS client {client.id} ({client.network})")


@clients_app.command("cert")
def clients_cert(
    name: Annotated[str, typer.Argument(help="The gateway's name (certificate CN).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for gateway.pem, gateway.key,"
                                      " ca.pem.")],
    days: Annotated[int, typer.Option("--days", min=1, max=825)] = 365,
    json_out: JsonOpt = False,
) -> None:
    """Issue a RadSec client certificate for a gateway from the operator CA (RFC 6614)."""
    rt = open_runtime()
    try:
        chain, key = rt.bootstrap.cas.gateway_certificate(name, days=days, actor=ACTOR)
        ca = rt.bootstrap.cas.operator_ca().certificate.public_bytes(serialization.Encoding.PEM)
    finally:
        rt.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "gateway.pem").write_bytes(chain)
    key_file = out / "gateway.key"
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    key_file.write_bytes(key)
    (out / "ca.pem").write_bytes(ca)
    if json_out:
        emit_json({"name": name, "directory": str(out)})
        return
    console.print(f"RadSec certificate for {name} in {out} (gateway.pem, gateway.key, ca.pem)")


@app.command("disconnect")
def disconnect(
    iccid: Annotated[str, typer.Argument(help="The SIM whose sessions end.")],
    reason: Annotated[str, typer.Option("--reason")] = "operator",
    json_out: JsonOpt = False,
) -> None:
    """Send a Disconnect-Request for every open session of a SIM."""
    rt = open_runtime()
    try:
        sim = rt.subscriber.inventory.get_sim(Iccid(iccid))
        results = rt.aaa.disconnect_sim(sim.imsi.value, actor=ACTOR, reason=reason)
    finally:
        rt.close()
    _print_results(results, json_out)


@app.command("coa")
def coa(
    iccid: Annotated[str, typer.Argument(help="The SIM whose sessions change.")],
    session_timeout: Annotated[int | None, typer.Option("--session-timeout", min=1)] = None,
    filter_id: Annotated[str | None, typer.Option("--filter-id")] = None,
    reason: Annotated[str, typer.Option("--reason")] = "operator",
    json_out: JsonOpt = False,
) -> None:
    """Send a CoA-Request (Session-Timeout, Filter-Id) for every open session of a SIM."""
    if session_timeout is None and filter_id is None:
        raise typer.BadParameter("give --session-timeout and/or --filter-id")
    rt = open_runtime()
    try:
        sim = rt.subscriber.inventory.get_sim(Iccid(iccid))
        results = rt.aaa.change_sim(sim.imsi.value, actor=ACTOR, reason=reason,
                                    session_timeout=session_timeout, filter_id=filter_id)
    finally:
        rt.close()
    _print_results(results, json_out)


def _print_results(results: list[CoaResult], json_out: bool) -> None:
    if json_out:
        emit_json({"results": [r.to_json() for r in results]})
        return
    if not results:
        console.print("no open session")
    for r in results:
        console.print(f"session {r.session_id} at {r.target}: {r.outcome}"
                      + (f" (Error-Cause {r.error_cause})" if r.error_cause else ""))
