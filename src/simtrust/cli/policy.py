"""``simtrust policy``: write, read and test policies; render the gateway's nftables rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.domain import DeviceContext, FlowRecord, imsi_digits
from simtrust.errors import InvalidInput
from simtrust.policy import (
    GatewayDevice,
    PolicySet,
    Scope,
    apply_ruleset,
    policy_from_dict,
    render_ruleset,
)

__all__ = ["NAME", "app"]

NAME = "policy"

app = typer.Typer(name=NAME, help="Network policies: destinations, time windows, caps, roaming.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _load_rules(path: Path) -> list[dict[str, Any]]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    rules = raw.get("rules") if isinstance(raw, dict) else raw
    if not isinstance(rules, list):
        raise InvalidInput(f"{path} must hold a list of rules or an object with 'rules'")
    return rules


@app.command("set")
def set_policy(tenant: str, scope: str,
               file: Annotated[Path, typer.Option("--file", "-f", help="JSON rules file.")],
               json_out: JsonOpt = False) -> None:
    """Write a new version of TENANT's policy at SCOPE (tenant, apn:X, group:X, device:IMSI)."""
    rt = open_runtime()
    try:
        policy = policy_from_dict({"tenant_id": tenant, "scope": scope,
                                   "rules": _load_rules(file)})
        stored = rt.policy.store.put(policy, actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(stored.to_dict())
    else:
        console.print(f"{stored.key} version {stored.version}: {len(stored.rules)} rules")


@app.command("show")
def show_policy(tenant: str, scope: str,
                version: Annotated[int | None, typer.Option(help="A past version.")] = None,
                json_out: JsonOpt = False) -> None:
    """Show the latest (or a given) version of a policy."""
    rt = open_runtime()
    try:
        policy = rt.policy.store.get(tenant, Scope.parse(scope), version)
    finally:
        rt.close()
    if json_out:
        emit_json(policy.to_dict())
    else:
        console.print_json(json.dumps(policy.to_dict()))


@app.command("list")
def list_policies(tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
                  json_out: JsonOpt = False) -> None:
    """List the current policies."""
    rt = open_runtime()
    try:
        policies = rt.policy.store.current(tenant)
    finally:
        rt.close()
    if json_out:
        emit_json([p.to_dict() for p in policies])
        return
    for p in policies:
        kinds = ", ".join(sorted(p.kinds()))
        console.print(f"{p.key}  v{p.version}  {kinds}")


@app.command("history")
def history(tenant: str, scope: str, json_out: JsonOpt = False) -> None:
    """Every version of a policy, with who wrote it and when."""
    rt = open_runtime()
    try:
        rows = rt.policy.store.history(tenant, Scope.parse(scope))
    finally:
        rt.close()
    if json_out:
        emit_json([{**p.to_dict(), "actor": a, "created_at": c} for p, a, c in rows])
        return
    for p, actor, created in rows:
        state = "active" if p.active else "deleted"
        console.print(f"v{p.version}  {created}  {actor}  {state}  {len(p.rules)} rules")


@app.command("delete")
def delete_policy(tenant: str, scope: str, json_out: JsonOpt = False) -> None:
    """Deactivate a policy (stored as a new, inactive version)."""
    rt = open_runtime()
    try:
        stored = rt.policy.store.delete(tenant, Scope.parse(scope), actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(stored.to_dict())
    else:
        console.print(f"{stored.key} deactivated (version {stored.version})")


@app.command("check")
def check(tenant: str, imsi: str,
          dst: Annotated[str, typer.Option(help="Destination address.")],
          port: Annotated[int, typer.Option(help="Destination port.")] = 0,
          proto: Annotated[int, typer.Option(help="IP protocol number.")] = 6,
          apn: str = "", group: str = "", tz: str = "UTC",
          mcc: Annotated[str | None, typer.Option(help="Serving MCC.")] = None,
          at: Annotated[float | None, typer.Option(help="UNIX time (default now).")] = None,
          json_out: JsonOpt = False) -> None:
    """Would this flow be allowed? Evaluates the stored policies without side effects."""
    rt = open_runtime()
    try:
        policies = PolicySet(rt.policy.store.current(tenant))
        when = at if at is not None else rt.clock().timestamp()
    finally:
        rt.close()
    device = DeviceContext(imsi_digits(imsi), tenant, apn, group, tz, mcc)
    decision = policies.evaluate(FlowRecord(when, when, "", dst, 0, port, proto, 0, 0), device)
    if json_out:
        emit_json(decision.to_dict())
    else:
        verdict = "[green]allowed[/]" if decision.allowed else "[red]denied[/]"
        console.print(f"{verdict} ({decision.reason})")
        for v in decision.violations:
            console.print(f"  {v.kind}: {v.detail} -> {', '.join(v.actions)}")
    if not decision.allowed:
        raise typer.Exit(1)


@app.command("render")
def render(tenant: str,
           devices: Annotated[Path, typer.Option(help="CSV: imsi,address[,apn,group]")],
           removed: Annotated[list[str] | None, typer.Option(help="IMSIs cut off.")] = None,
           apply: Annotated[bool, typer.Option(help="Load it with nft -f.")] = False,
           json_out: Annotated[bool, typer.Option(
               "--json", help="One JSON object: tenant, devices, ruleset, applied.")] = False,
           ) -> None:
    """Print (or apply) TENANT's nftables ruleset for the listed devices."""
    gateway = []
    try:
        with devices.open(newline="") as fh:
            for row in csv.DictReader(fh):
                ctx = DeviceContext(imsi_digits(row["imsi"]), tenant, row.get("apn") or "",
                                    row.get("group") or "")
                gateway.append(GatewayDevice(ctx, row["address"]))
    except (OSError, KeyError) as exc:
        raise InvalidInput(f"cannot read {devices}: {exc}") from None
    rt = open_runtime()
    try:
        policies = PolicySet(rt.policy.store.current(tenant))
    finally:
        rt.close()
    text = render_ruleset(tenant, policies, gateway, removed or [])
    if apply:
        apply_ruleset(text)
    if json_out:
        emit_json({"tenant": tenant, "devices": len(gateway), "ruleset": text,
                   "applied": apply})
    elif apply:
        console.print(f"applied {len(gateway)} devices to table inet simtrust_{tenant}")
    else:
        typer.echo(text, nl=False)
