"""``simtrust energy``: clear one interval of the local energy market, offline.

``clear ORDERS.csv`` reads orders (header ``party,side,wh,price``: side ``buy``
or ``sell``, energy in Wh, limit price in minor units per kWh, integers) and
prints the uniform clearing price and the trades; with ``--deliveries D.csv``
(header ``party,delivered_wh``: what each seller's trusted meter readings show)
it adds the payment per trade (docs/streams.md "Meters and the local energy
market"). Unreadable input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json
from simtrust.errors import InvalidInput
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
