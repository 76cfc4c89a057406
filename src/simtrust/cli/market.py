"""``simtrust market``: publish TMF620 product offerings and follow TMF622 product orders.

The same service as the ``/tmf-api/`` routes (``docs/market.md``); the CLI
acts as the operator (the seller), so its offerings join the public catalog
unless ``--tenant`` makes one private to a tenant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from simtrust.cli._common import console, emit_json, open_runtime, read_text
from simtrust.errors import InvalidInput
from simtrust.market import matches

__all__ = ["NAME", "app"]

NAME = "market"

app = typer.Typer(name=NAME, help="TM Forum marketplace: publish offerings, follow orders.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_ACTOR = "cli"


def _document(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = json.loads(read_text(path))
    except ValueError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}", field="file") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{path} must hold a JSON object (a TMF620 ProductOffering)",
                           field="file")
    return value


@app.command("publish")
def publish(
    name: Annotated[str, typer.Argument(help="The offering's name.")],
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    status: Annotated[str, typer.Option("--status", help="lifecycleStatus.")] = "Launched",
    spec: Annotated[str | None, typer.Option(help="productSpecification id it sells.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Private to this tenant.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", exists=True, dir_okay=False, readable=True,
        help="More ProductOffering members (JSON).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Publish a ProductOffering (TMF620) in the catalog."""
    body = {**_document(file), "name": name, "lifecycleStatus": status}
    if description is not None:
        body["description"] = description
    if spec is not None:
        body["productSpecification"] = {"id": spec}
    rt = open_runtime()
    try:
        if tenant is not None:
            rt.tenants.get_tenant(tenant)
        item = rt.market.create_item("productOffering", tenant, body, _ACTOR)
    finally:
        rt.close()
    if json_out:
        emit_json(item.document)
    else:
        console.print(f"published {item.document['id']} ({name}, {status})")


@app.command("offerings")
def offerings(
    tenant: Annotated[str | None, typer.Option(help="What this tenant sees.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List product offerings (all, or those a tenant can order)."""
    rt = open_runtime()
    try:
        items = rt.market.list_items("productOffering", tenant, tenant is None)
    finally:
        rt.close()
    if json_out:
        emit_json([i.document for i in items])
        return
    table = Table("id", "name", "lifecycleStatus", "tenant")
    for item in items:
        doc = item.document
        table.add_row(doc["id"], doc["name"], doc.get("lifecycleStatus", ""),
                      item.tenant_id or "(public)")
    console.print(table)


@app.command("orders")
def orders(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's orders.")] = None,
    state: Annotated[str | None, typer.Option(help="Only orders in this state.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List product orders (TMF622) with their state."""
    rt = open_runtime()
    try:
        found = rt.market.list_orders(tenant, tenant is None)
    finally:
        rt.close()
    docs = [o.document for o in found if matches(o.document, {"state": state} if state else {})]
    if json_out:
        emit_json(docs)
        return
    table = Table("id", "state", "orderDate", "items")
    for doc in docs:
        table.add_row(doc["id"], doc["state"], doc["orderDate"],
                      str(len(doc["productOrderItem"])))
    console.print(table)


@app.command("advance")
def advance(
    order_id: Annotated[str, typer.Argument(help="The product order's id.")],
    state: Annotated[str, typer.Argument(help="inProgress, pending, held, completed, ...")],
    json_out: JsonOpt = False,
) -> None:
    """Move an order to STATE as the seller; an impossible transition is refused."""
    rt = open_runtime()
    try:
        order = rt.market.get_order(order_id)
        moved = rt.market.patch_order(order, {"state": state}, _ACTOR, may_change_state=True)
    finally:
        rt.close()
    if json_out:
        emit_json(moved.document)
    else:
        console.print(f"{order_id}: {order.state} -> {moved.state}")


@app.command("publish-catalog")
def publish_catalog(
    api: Annotated[str | None, typer.Option(
        help="Base URL partners reach this operator's API at (default: the public URL).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Publish the public, launched offerings on the consortium ledger, signed by the DID."""
    rt = open_runtime()
    try:
        launched = [i.document for i in rt.market.list_items("productOffering", None, False)
                    if i.tenant_id is None
                    and str(i.document.get("lifecycleStatus", "")).lower() == "launched"]
        if not launched:
            raise InvalidInput("no launched public offering to publish", field="catalog")
        publication = rt.federation.publish(api or rt.settings.public_url, launched)
    finally:
        rt.close()
    if json_out:
        emit_json({"seller": publication.seller, "api": publication.api,
                   "offerings": publication.offerings, "sha256": publication.sha256,
                   "message_id": publication.message_id})
    else:
        console.print(f"published {len(publication.offerings)} offerings as "
                      f"{publication.seller} (ledger message {publication.message_id[:16]}…)")


@app.command("discover")
def discover(json_out: JsonOpt = False) -> None:
    """List the catalog publications on the ledger whose seller signature verifies."""
    rt = open_runtime()
    try:
        found = rt.federation.discover()
    finally:
        rt.close()
    if json_out:
        emit_json([{"seller": p.seller, "api": p.api, "offerings": p.offerings,
                    "sha256": p.sha256, "published": p.published,
                    "message_id": p.message_id} for p in found])
        return
    table = Table("seller", "api", "offerings", "published")
    for p in found:
        table.add_row(p.seller, p.api, ", ".join(o["name"] for o in p.offerings), p.published)
    console.print(table)
