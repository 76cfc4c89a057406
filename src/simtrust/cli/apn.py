"""``simtrust apn``: a tenant's APNs, their address pools, access settings and
second-level credentials (the user names and passwords a private APN asks the
gateway for, TS 29.061 §16.3). Passwords are sealed at rest and never printed.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from simtrust.aaa import AUTH_METHODS
from simtrust.cli._common import console, emit_json, open_runtime

__all__ = ["NAME", "app"]

NAME = "apn"
ACTOR = "cli"

app = typer.Typer(name=NAME, help="APNs: address pools, RADIUS access settings, users.",
                  no_args_is_help=True)
users_app = typer.Typer(help="Second-level credentials of an APN.", no_args_is_help=True)
app.add_typer(users_app, name="users")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="The APN's tenant.")]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="APN name, e.g. acme.iot.")],
    tenant: TenantOpt,
    pool: Annotated[str | None, typer.Option("--pool", help="Address pool (CIDR).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an APN, optionally with an address pool."""
    rt = open_runtime()
    try:
        apn = rt.subscriber.inventory.create_apn(tenant, name, actor=ACTOR, pool=pool)
    finally:
        rt.close()
    if json_out:
        emit_json(apn.to_json())
        return
    console.print(f"APN {apn.name} of {apn.tenant_id}" + (f", pool {apn.pool}" if apn.pool else ""))


@app.command("list")
def list_apns(tenant: TenantOpt, json_out: JsonOpt = False) -> None:
    """A tenant's APNs with pools and access settings."""
    rt = open_runtime()
    try:
        apns = rt.subscriber.inventory.list_apns(tenant)
        docs = [{**a.to_json(), **rt.aaa.apns.access(tenant, a.name).to_json()} for a in apns]
    finally:
        rt.close()
    if json_out:
        emit_json({"apns": docs})
        return
    table = Table("name", "pool", "auth", "session timeout")
    for d in docs:
        table.add_row(str(d["name"]), str(d["pool"] or ""), str(d["auth"]),
                      str(d["session_timeout"]))
    console.print(table)


@app.command("access")
def access(
    name: Annotated[str, typer.Argument(help="APN name.")],
    tenant: TenantOpt,
    auth: Annotated[str | None, typer.Option(
        "--auth", help=f"Second-level authentication: {', '.join(AUTH_METHODS)}.")] = None,
    session_timeout: Annotated[int | None, typer.Option(
        "--session-timeout", help="Session-Timeout sent in Access-Accept (s).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show or set an APN's RADIUS access settings."""
    rt = open_runtime()
    try:
        rt.subscriber.inventory.get_apn(tenant, name)
        if auth is None and session_timeout is None:
            result = rt.aaa.apns.access(tenant, name)
        else:
            result = rt.aaa.apns.set_access(tenant, name, actor=ACTOR, auth=auth,
                                            session_timeout=session_timeout)
    finally:
        rt.close()
    if json_out:
        emit_json(result.to_json())
        return
    console.print(f"APN {name}: auth {result.auth}, Session-Timeout {result.session_timeout} s")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="APN name.")],
    username: Annotated[str, typer.Argument(help="User name the device presents.")],
    tenant: TenantOpt,
    password: Annotated[str, typer.Option("--password", help="Password (sealed at rest).")],
) -> None:
    """Add a user to an APN."""
    rt = open_runtime()
    try:
        rt.subscriber.inventory.get_apn(tenant, name)
        rt.aaa.apns.add_user(tenant, name, username, password, actor=ACTOR)
    finally:
        rt.close()
    console.print(f"user {username} added to APN {name}")


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="APN name.")],
    username: Annotated[str, typer.Argument()],
    tenant: TenantOpt,
) -> None:
    """Remove a user from an APN."""
    rt = open_runtime()
    try:
        rt.aaa.apns.remove_user(tenant, name, username, actor=ACTOR)
    finally:
        rt.close()
    console.print(f"user {username} removed from APN {name}")


@users_app.command("list")
def users_list(
    name: Annotated[str, typer.Argument(help="APN name.")],
    tenant: TenantOpt,
    json_out: JsonOpt = False,
) -> None:
    """The user names of an APN (never their passwords)."""
    rt = open_runtime()
    try:
        users = rt.aaa.apns.users(tenant, name)
    finally:
        rt.close()
    if json_out:
        emit_json({"users": users})
        return
    for user in users:
        console.print(user)
