"""``simtrust keys``: the master keys that seal secrets at rest (rotate, list; never the keys)."""

from __future__ import annotations

from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json, open_runtime, progress_bar

__all__ = ["NAME", "app"]

NAME = "keys"

app = typer.Typer(name=NAME, help="Master keys that seal secrets at rest.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


@app.command("rotate")
def keys_rotate(
    json_out: JsonOpt = False,
    retire: Annotated[
        bool, typer.Option("--retire", help="Drop the old master keys after re-wrapping.")
    ] = False,
) -> None:
    """Add a master key and re-wrap every sealed secret under it."""
    rt = open_runtime()
    try:
        old = list(rt.keyring.key_ids)
        with progress_bar("re-wrapping sealed secrets", rt.sealed_count(),
                          enabled=not json_out) as advance:
            new_kid, count = rt.rotate_master_key(progress=lambda n: advance(1))
        retired = []
        if retire:
            for kid in old:
                rt.keyring.retire(kid)
                retired.append(kid)
        rt.audit.append(actor="cli:keys", action="masterkey.rotate", subject=f"masterkey:{new_kid}",
                        outcome="success", details={"rewrapped": count, "retired": retired})
    finally:
        rt.close()
    if json_out:
        emit_json({"active": new_kid, "rewrapped": count, "retired": retired})
    else:
        console.print(f"active master key {new_kid}; re-wrapped {count} sealed values")


@app.command("list")
def keys_list(json_out: JsonOpt = False) -> None:
    """Show master key ids (never the keys)."""
    rt = open_runtime()
    try:
        info = {"active": rt.keyring.active_key_id, "keys": rt.keyring.key_ids}
    finally:
        rt.close()
    if json_out:
        emit_json(info)
    else:
        for kid in info["keys"]:
            marker = " (active)" if kid == info["active"] else ""
            console.print(f"{kid}{marker}")
