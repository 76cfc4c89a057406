"""``simtrust tunnels``: enterprise IPsec tunnels per APN (docs/tunnels.md).

``render`` prints the strongSwan swanctl configuration of one tunnel (the gateway's end,
or the enterprise's with ``--enterprise-side``) or, with ``--guard``, the nftables table
that lets the APN's traffic out only through it; ``status`` reads ``swanctl --list-sas``
and exits 1 with one line per tunnel that is down; ``apply`` makes a gateway's charon and
guard run exactly the tunnels of a JSON file, or with ``--stored`` the tunnels stored per
APN in this data directory (``PUT /v1/apns/{name}/tunnel``), through ``TunnelGateway``,
tearing down the ones no longer in it. Bad input: one line, exit 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json, open_runtime, read_text
from simtrust.errors import InvalidInput
from simtrust.policy import (
    TunnelGateway,
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


_SPEC_KEYS = {"name", "tenant_id", "apn", "local_address", "remote_address", "local_id",
              "remote_id", "apn_pool", "enterprise_prefixes", "auth", "psk_hex",
              "local_cert", "remote_ca"}


def _spec(item: object) -> TunnelSpec:
    if not isinstance(item, dict) or not set(item) <= _SPEC_KEYS:
        raise InvalidInput(f"a tunnel is an object with keys {sorted(_SPEC_KEYS)}",
                           field="tunnels")
    try:
        psk_hex = item.get("psk_hex")
        psk = bytes.fromhex(psk_hex) if isinstance(psk_hex, str) else None
        return TunnelSpec(
            item["name"], item["tenant_id"], item["apn"], item["local_address"],
            item["remote_address"], item["local_id"], item["remote_id"],
            tuple(item["apn_pool"]), tuple(item["enterprise_prefixes"]),
            item.get("auth", "psk" if psk is not None else "pubkey"), psk,
            item.get("local_cert", ""), item.get("remote_ca", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"bad tunnel {item.get('name', '?')!r}: {exc}",
                           field="tunnels") from None


@app.command("apply")
def apply(
    directory: Annotated[Path, typer.Option("--dir", help="The gateway's swanctl directory.")],
    file: Annotated[Path | None, typer.Argument(
        help="JSON list of tunnels (TunnelSpec fields, psk_hex for a PSK).")] = None,
    stored: Annotated[bool, typer.Option(
        "--stored", help="The tunnels stored per APN instead of a file.")] = False,
    uri: Annotated[str, typer.Option("--uri", help="charon's VICI socket.")]
    = "unix:///var/run/charon.vici",
    netns: Annotated[str | None, typer.Option("--netns", help="Gateway namespace.")] = None,
) -> None:
    """Run exactly the tunnels of FILE (or the stored ones) on the gateway; removed ones
    are torn down."""
    if (file is None) == (not stored):
        raise InvalidInput("give a tunnels file or --stored (one of them)", field="file")
    if file is None:
        rt = open_runtime()
        try:
            specs = rt.tunnels.tunnels()
        finally:
            rt.close()
    else:
        try:
            items = json.loads(read_text(file))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{file} is not a JSON list of tunnels: {exc}",
                               field="file") from None
        if not isinstance(items, list):
            raise InvalidInput(f"{file} is not a JSON list of tunnels", field="file")
        specs = [_spec(item) for item in items]
    change = TunnelGateway(directory, vici_uri=uri, netns=netns).apply(specs)
    console.print(f"added {', '.join(change.added) or '-'}; removed "
                  f"{', '.join(change.removed) or '-'}; kept {', '.join(change.kept) or '-'}")


def _placeholders(names: list[str]) -> list[TunnelSpec]:
    """Specs that carry only the names (status needs nothing else of them)."""
    return [TunnelSpec(n, "-", "-", "192.0.2.1", "192.0.2.2", "x", "x", ("192.0.2.1/32",),
                       ("192.0.2.2/32",), psk=bytes(16)) for n in names]
