"""``simtrust tunnels``: enterprise IPsec tunnels per APN (docs/tunnels.md).

``render`` prints the strongSwan swanctl configuration of one tunnel (the gateway's end,
or the enterprise's with ``--enterprise-side``) or, with ``--guard``, the nftables table
that lets the APN's traffic out only through it; ``status`` reads ``swanctl --list-sas``
and exits 1 with one line per tunnel that is down. Bad input: one line, exit 2.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json
from simtrust.errors import InvalidInput
from simtrust.policy import (
    TunnelSpec,
    parse_list_sas,
    render_swanctl,
    render_tunnel_guard,
    tunnel_alerts,
)

__all__ = ["NAME", "app"]

NAME = "tunnels"

app = typer.Typer(name=NAME, help="Enterprise IPsec tunnels (strongSwan swanctl, IKEv2).",
                  no_args_is_help=True)


@app.command("render")
def render(
    name: Annotated[str, typer.Option("--name", help="Tunnel name (a-z, 0-9, -).")],
    tenant: Annotated[str, typer.Option("--tenant")],
    apn: Annotated[str, typer.Option("--apn")],
    local: Annotated[str, typer.Option("--local", help="Gateway's public address.")],
    remote: Annotated[str, typer.Option("--remote", help="Enterprise endpoint address.")],
    local_id: Annotated[str, typer.Option("--local-id")],
    remote_id: Annotated[str, typer.Option("--remote-id")],
    pool: Annotated[list[str], typer.Option("--apn-pool", help="APN address pool (CIDR).")],
    prefix: Annotated[list[str], typer.Option("--enterprise-prefix", help="CIDR.")],
    psk_hex: Annotated[str, typer.Option("--psk-hex", envvar="SIMTRUST_TUNNEL_PSK",
                                         help="PSK in hex (or use certificates).")] = "",
    cert: Annotated[str, typer.Option("--cert", help="Local certificate file.")] = "",
    ca: Annotated[str, typer.Option("--ca", help="CA certificate file trusted for the "
                                    "other end.")] = "",
    enterprise_side: Annotated[bool, typer.Option("--enterprise-side")] = False,
    guard: Annotated[bool, typer.Option("--guard", help="Print the nftables guard.")] = False,
) -> None:
    """Print the swanctl.conf (or the nftables guard) of one tunnel."""
    try:
        psk = bytes.fromhex(psk_hex) if psk_hex else None
    except ValueError as exc:
        raise InvalidInput("--psk-hex is hexadecimal", field="psk") from exc
    spec = TunnelSpec(name, tenant, apn, local, remote, local_id, remote_id, tuple(pool),
                      tuple(prefix), "psk" if psk is not None else "pubkey", psk, cert, ca)
    if guard:
        sys.stdout.write(render_tunnel_guard([spec]))
        return
    sys.stdout.write(render_swanctl([spec.mirrored() if enterprise_side else spec],
                                    start=not enterprise_side))


@app.command("status")
def status(
    name: Annotated[list[str], typer.Argument(help="Tunnels expected up.")],
    uri: Annotated[str, typer.Option("--uri", help="charon's VICI socket.")]
    = "unix:///var/run/charon.vici",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Exit 1 with one line per expected tunnel that is down."""
    swanctl = shutil.which("swanctl")
    if swanctl is None:
        raise InvalidInput("swanctl (strongswan) is not installed", field="swanctl")
    done = subprocess.run([swanctl, "--list-sas", "--uri", uri],  # noqa: S603 - fixed argv
                          capture_output=True, text=True, timeout=30, check=False)
    states = parse_list_sas(done.stdout)
    if json_out:
        emit_json(states)
    down = [n for n in name if states.get(n, {}).get("ike") != "ESTABLISHED"]
    stamp = datetime.now(UTC).isoformat()
    for alert in tunnel_alerts(_placeholders(down), states, stamp):
        console.print(alert.summary)
    if down:
        raise typer.Exit(1)


def _placeholders(names: list[str]) -> list[TunnelSpec]:
    """Specs that carry only the names (status needs nothing else of them)."""
    return [TunnelSpec(n, "-", "-", "192.0.2.1", "192.0.2.2", "x", "x", ("192.0.2.1/32",),
                       ("192.0.2.2/32",), psk=bytes(16)) for n in names]
