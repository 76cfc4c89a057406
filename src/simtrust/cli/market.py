"""``simtrust market``: publish TMF620 product offerings and follow TMF622 product orders;
buy from partner sellers.

The same service as the ``/tmf-api/`` routes (``docs/market.md``); the CLI
acts as the operator (the seller), so its offerings join the public catalog
unless ``--tenant`` makes one private to a tenant. ``buy``, ``purchase``,
``cancel``, ``order-service``, ``cancel-service-order`` and ``service`` act as a
buyer on a partner seller's API (TMF622 v4/v5, TMF641 v4.1, TMF638 v4:
``market/_buyer.py``), with the seller's API key or signed by this operator's
DID. A refusal by the seller prints one line naming its TMF ``Error`` and exits 2;
a seller that does not answer, exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from simtrust.cli._common import console, emit_json, open_runtime, read_text
from simtrust.errors import InvalidInput
from simtrust.market import PartnerSeller, bearer, matches, sign_request

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


# -- simtrust as a buyer: a partner seller's TMF622 / TMF641 / TMF638 API ------------------

Seller = Annotated[str, typer.Argument(help="The seller's API URL (scheme, host, port).")]
PartnerKey = Annotated[str | None, typer.Option(
    "--key", envvar="SIMTRUST_PARTNER_KEY", show_default=False,
    help="The seller's API key (better in SIMTRUST_PARTNER_KEY); without it the"
         " request is signed with this operator's DID (RFC 9421).")]
BodyFile = Annotated[Path, typer.Option("--file", "-f", help="The JSON body to send.")]
V5Opt = Annotated[bool, typer.Option("--v5", help="TMF622 v5 instead of v4.")]


def _object(path: Path, model: str) -> dict[str, Any]:
    try:
        value = json.loads(read_text(path))
    except ValueError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}", field="file") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{path} must hold a JSON object (a {model})", field="file")
    return value


def _with_seller(url: str, key: str | None, act: Callable[[PartnerSeller], Any]) -> Any:
    """Run ``act`` against the seller, authenticated by ``key`` or by the node's DID."""
    with httpx.Client(timeout=30.0) as client:
        if key is not None:
            return act(PartnerSeller(client, url, bearer(key)))
        rt = open_runtime()
        try:
            signer = rt.identity.issuer()
            return act(PartnerSeller(client, url, lambda r: sign_request(r, signer)))
        finally:
            rt.close()


def _show(doc: dict[str, Any], json_out: bool, what: str) -> None:
    if json_out:
        emit_json(doc)
        return
    state = doc.get("state") or doc.get("status") or ""
    console.print(f"{what} {doc.get('id', '')} {state}".rstrip())


@app.command("buy")
def buy(seller: Seller, file: BodyFile, key: PartnerKey = None, v5: V5Opt = False,
        json_out: JsonOpt = False) -> None:
    """Place a TMF622 product order (ProductOrder_Create in FILE) with a partner seller."""
    body = _object(file, "ProductOrder_Create")
    _show(_with_seller(seller, key, lambda s: s.order_product(body, v5=v5)), json_out,
          "productOrder")


@app.command("purchase")
def purchase(seller: Seller, order_id: Annotated[str, typer.Argument(help="Order id.")],
             key: PartnerKey = None, v5: V5Opt = False, json_out: JsonOpt = False) -> None:
    """The seller's current view of a product order placed there."""
    _show(_with_seller(seller, key, lambda s: s.product_order(order_id, v5=v5)), json_out,
          "productOrder")


@app.command("cancel")
def cancel(seller: Seller, order_id: Annotated[str, typer.Argument(help="Order id.")],
           reason: Annotated[str | None, typer.Option(help="cancellationReason.")] = None,
           delete: Annotated[bool, typer.Option(
               "--delete", help="DELETE productOrder/{id} instead of a cancelProductOrder"
                                " task.")] = False,
           key: PartnerKey = None, v5: V5Opt = False, json_out: JsonOpt = False) -> None:
    """Cancel a product order with the seller (TMF622 cancelProductOrder, or DELETE)."""
    if delete:
        status = _with_seller(seller, key, lambda s: s.delete_product_order(order_id, v5=v5))
        outcome = {"id": order_id, "status": status,
                   "outcome": "cancelling" if status == 202 else "deleted"}
        _show(outcome, json_out, "productOrder")
        return
    _show(_with_seller(seller, key, lambda s: s.cancel_product_order(order_id, reason, v5=v5)),
          json_out, "cancelProductOrder")


@app.command("order-service")
def order_service(seller: Seller, file: BodyFile, key: PartnerKey = None,
                  json_out: JsonOpt = False) -> None:
    """Place a TMF641 service order (ServiceOrder_Create in FILE) with a partner seller."""
    body = _object(file, "ServiceOrder_Create")
    _show(_with_seller(seller, key, lambda s: s.order_service(body)), json_out,
          "serviceOrder")


@app.command("cancel-service-order")
def cancel_service_order(seller: Seller,
                         order_id: Annotated[str, typer.Argument(help="Service order id.")],
                         reason: Annotated[str | None, typer.Option(
                             help="cancellationReason.")] = None,
                         key: PartnerKey = None, json_out: JsonOpt = False) -> None:
    """Cancel a TMF641 service order with the seller (cancelServiceOrder)."""
    _show(_with_seller(seller, key, lambda s: s.cancel_service_order(order_id, reason)),
          json_out, "cancelServiceOrder")


@app.command("service")
def service(seller: Seller,
            action: Annotated[str, typer.Argument(help="create, patch or delete.")],
            service_id: Annotated[str | None, typer.Argument(
                help="The service's id (patch, delete).")] = None,
            file: Annotated[Path | None, typer.Option(
                "--file", "-f", help="Service_Create (create) or a merge patch (patch).")
            ] = None,
            key: PartnerKey = None, json_out: JsonOpt = False) -> None:
    """Write the seller's TMF638 service inventory: create, merge-patch or delete a service."""
    if action not in ("create", "patch", "delete"):
        raise InvalidInput("action must be create, patch or delete", field="action")
    if action == "create":
        if file is None:
            raise InvalidInput("create needs --file with a Service_Create", field="file")
        body = _object(file, "Service_Create")
        _show(_with_seller(seller, key, lambda s: s.create_service(body)), json_out, "service")
        return
    if service_id is None:
        raise InvalidInput(f"{action} needs the service's id", field="service_id")
    if action == "patch":
        if file is None:
            raise InvalidInput("patch needs --file with a merge patch", field="file")
        patch = _object(file, "Service_Update")
        _show(_with_seller(seller, key, lambda s: s.patch_service(service_id, patch)),
              json_out, "service")
        return
    status = _with_seller(seller, key, lambda s: s.delete_service(service_id))
    _show({"id": service_id, "status": status, "outcome": "deleted"}, json_out, "service")
