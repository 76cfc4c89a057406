"""``simtrust energy``: the local energy market, offline and stored.

``clear ORDERS.csv`` reads orders (header ``party,side,wh,price``: side ``buy``
or ``sell``, energy in Wh, limit price in minor units per kWh, integers) and
prints the uniform clearing price and the trades; with ``--deliveries D.csv``
(header ``party,delivered_wh``: what each seller's trusted meter readings show)
it adds the payment per trade (docs/streams.md "Meters and the local energy
market"). The stored market of the data directory: ``order`` posts a registered
meter's bid or offer for an interval (until the interval starts), ``interval``
shows it, ``clear-interval`` clears it once its gate closed (``clear-due`` clears
every such interval; ``simtrust serve`` does that itself every
``SIMTRUST_ENERGY_CLEAR_INTERVAL_S``) and ``settle`` checks
delivery against the stored readings that reach the confidence threshold and
pays the sellers in a settlement token from the node key, out of the buyers'
escrow deposits (``deposit`` registers a buyer's finalized transfer to the node
key, ``balance`` shows what is left and what bids commit, ``withdraw`` pays the
unused deposit back to the meter's key, ``recover`` finishes or rolls back what
a crash left half paid). Unreadable input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import InvalidInput
from simtrust.ledger import parse_hex_id
from simtrust.streams import Order, clear, settle

__all__ = ["NAME", "app"]

NAME = "energy"

app = typer.Typer(name=NAME, help="Local energy market: clear an interval, pay for delivery.",
                  no_args_is_help=True)


def _rows(path: Path, header: list[str]) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != header:
                raise InvalidInput(f"{path}: the header must be {','.join(header)}")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc


def _int(value: str, what: str, line: int) -> int:
    if not value.isascii() or not value.strip().lstrip("-").isdigit():
        raise InvalidInput(f"line {line}: {what} must be an integer, got {value!r}")
    return int(value)


@app.command("clear")
def clear_command(
    orders: Annotated[Path, typer.Argument(help="Orders CSV: party,side,wh,price.")],
    deliveries: Annotated[
        Path | None, typer.Option("--deliveries", help="CSV party,delivered_wh: pay per trade.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """The interval's clearing price and trades (and payments, given deliveries)."""
    parsed = []
    for line, row in enumerate(_rows(orders, ["party", "side", "wh", "price"]), start=2):
        parsed.append(Order(row["party"], row["side"], _int(row["wh"], "wh", line),
                            _int(row["price"], "price", line)))
    result = clear(parsed)
    document: dict[str, object] = {
        "price": result.price,
        "volume_wh": result.volume_wh,
        "trades": [{"seller": t.seller, "buyer": t.buyer, "wh": t.wh} for t in result.trades],
    }
    if deliveries is not None:
        delivered = {
            row["party"]: _int(row["delivered_wh"], "delivered_wh", line)
            for line, row in enumerate(_rows(deliveries, ["party", "delivered_wh"]), start=2)
        }
        payments = settle(result, delivered, lambda *_: None)
        document["payments"] = [
            {"buyer": p.buyer, "seller": p.seller, "delivered_wh": p.delivered_wh,
             "amount": p.amount} for p in payments
        ]
    if json_out:
        emit_json(document)
        return
    if result.price is None:
        console.print("no bid meets an offer: nothing trades")
        return
    console.print(f"clears {result.volume_wh} Wh at {result.price} per kWh")
    for trade in result.trades:
        console.print(f"  {trade.seller} -> {trade.buyer}: {trade.wh} Wh")


JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Tenant = Annotated[str, typer.Option("--tenant", help="The market's tenant.")]
Start = Annotated[int, typer.Argument(help="Interval start, Unix seconds.", min=0)]


def _show(document: dict[str, object], json_out: bool) -> None:
    if json_out:
        emit_json(document)
        return
    console.print(f"interval {document['interval_start']}: {document['status']}, price "
                  f"{document['price']}, {len(document['orders'])} orders")  # type: ignore[arg-type]


@app.command("order")
def order_command(
    interval_start: Annotated[int, typer.Option("--interval", help="Interval start (Unix s).",
                                                min=0)],
    meter: Annotated[str, typer.Option("--meter", help="A registered meter's id.")],
    side: Annotated[str, typer.Option("--side", help="buy or sell.")],
    wh: Annotated[int, typer.Option("--wh", help="Energy in Wh.")],
    price: Annotated[int, typer.Option("--price", help="Limit price, minor units per kWh.")],
    tenant: Tenant,
    token: Annotated[str | None, typer.Option(
        "--token", help="Bids: the token it is paid in (hex; default the interval's, else "
                        "the buyer's only deposit).")] = None,
    json_out: JsonOut = False,
) -> None:
    """Post a meter's bid or offer for an interval (until the interval starts); a bid must
    stay within the buyer's unused deposit."""
    token_id = None if token is None else parse_hex_id(token, "token id")
    rt = open_runtime()
    try:
        made = rt.energy.post_order(tenant, interval_start=interval_start, meter=meter,
                                    side=side, wh=wh, price=price, actor="cli", token=token_id)
    finally:
        rt.close()
    if json_out:
        emit_json(made)
    else:
        console.print(f"order {made['order_id']}: {side} {wh} Wh at {price}")


@app.command("interval")
def interval_command(interval_start: Start, tenant: Tenant, json_out: JsonOut = False) -> None:
    """An interval's orders, clearing and settlement."""
    rt = open_runtime()
    try:
        document = rt.energy.interval(tenant, interval_start)
    finally:
        rt.close()
    _show(document, json_out)


@app.command("clear-interval")
def clear_interval_command(interval_start: Start, tenant: Tenant,
                           json_out: JsonOut = False) -> None:
    """Clear a stored interval at one price once its gate closed (once)."""
    rt = open_runtime()
    try:
        document = rt.energy.clear_interval(tenant, interval_start, actor="cli")
    finally:
        rt.close()
    _show(document, json_out)


@app.command("clear-due")
def clear_due_command(tenant: Tenant, json_out: JsonOut = False) -> None:
    """Clear every interval whose gate closed and that has orders (run it from a timer)."""
    rt = open_runtime()
    try:
        cleared = rt.energy.clear_due(tenant, actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json({"cleared": cleared})
        return
    for document in cleared:
        _show(document, False)


@app.command("deposit")
def deposit_command(
    meter: Annotated[str, typer.Option("--meter", help="The buyer's meter id.")],
    message_id: Annotated[str, typer.Option("--message-id", help="Its finalized token "
                                            "transfer to the node key (hex).")],
    tenant: Tenant,
    json_out: JsonOut = False,
) -> None:
    """Register a buyer's escrow deposit: its finalized token transfer to the node key."""
    transfer = parse_hex_id(message_id, "message id")
    rt = open_runtime()
    try:
        made = rt.energy.deposit(tenant, meter=meter, message_id=transfer, actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(made)
    else:
        console.print(f"{meter}: balances {made['balances']}")


@app.command("balance")
def balance_command(
    meter: Annotated[str, typer.Option("--meter", help="A meter id.")],
    tenant: Tenant,
    json_out: JsonOut = False,
) -> None:
    """A meter's escrow balance per token, what its bids commit and what it can withdraw."""
    rt = open_runtime()
    try:
        balances = rt.energy.meter_balances(tenant, meter)
        funds = rt.energy.funds(tenant, meter)["tokens"]
    finally:
        rt.close()
    if json_out:
        emit_json({"meter": meter, "balances": balances, "funds": funds})
    else:
        for token_id, line in funds.items():
            console.print(f"{meter} {token_id}: balance {line['balance']}, committed "
                          f"{line['committed']}, available {line['available']}")


@app.command("withdraw")
def withdraw_command(
    meter: Annotated[str, typer.Option("--meter", help="The depositing meter's id.")],
    token: Annotated[str, typer.Option("--token", help="Token id (hex).")],
    amount: Annotated[int, typer.Option("--amount", help="How much to pay back.", min=1)],
    tenant: Tenant,
    json_out: JsonOut = False,
) -> None:
    """Pay unused deposit back to the meter's key with a ledger transfer."""
    token_id = parse_hex_id(token, "token id")
    rt = open_runtime()
    try:
        made = rt.energy.withdraw(tenant, meter=meter, token=token_id, amount=amount,
                                  actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json(made)
    else:
        console.print(f"withdrawal {made['withdrawal_id']}: {made['amount']} of {made['token']}"
                      f" {made['status']} ({made['message_id']})")


@app.command("recover")
def recover_command(json_out: JsonOut = False) -> None:
    """Finish or roll back settlements and withdrawals a crash left half done (from the
    ledger); `simtrust serve` does this at start and on every clearing tick."""
    rt = open_runtime()
    try:
        done = rt.energy.recover(actor="cli")
    finally:
        rt.close()
    if json_out:
        emit_json({"recovered": done})
    else:
        console.print(f"{len(done)} recovered: {done}")


@app.command("settle")
def settle_command(
    interval_start: Start,
    tenant: Tenant,
    token: Annotated[str, typer.Option("--token", help="Settlement token id (hex).")],
    json_out: JsonOut = False,
) -> None:
    """Check delivery against trusted readings and pay the sellers in the token."""
    token_id = parse_hex_id(token, "token id")
    rt = open_runtime()
    try:
        document = rt.energy.settle_interval(tenant, interval_start, token=token_id,
                                             actor="cli")
    finally:
        rt.close()
    _show(document, json_out)
