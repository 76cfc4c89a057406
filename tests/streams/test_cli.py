"""``simtrust energy clear``: one JSON document, and one line with exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def test_clear_prints_price_trades_and_payments(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("party,side,wh,price\nb,buy,2000,30\ns,sell,2000,20\n", encoding="utf-8")
    deliveries = tmp_path / "d.csv"
    deliveries.write_text("party,delivered_wh\ns,1800\n", encoding="utf-8")
    code, out, _ = _run(capsys, "energy", "clear", str(orders), "--deliveries", str(deliveries),
                        "--json")
    assert 0 == code
    document = json.loads(out)
    assert 25 == document["price"]
    assert [{"buyer": "b", "seller": "s", "delivered_wh": 1800, "amount": 45}] == (
        document["payments"])


def test_bad_orders_exit_2_with_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    orders = tmp_path / "orders.csv"
    for text in ("party,side,wh\nb,buy,1\n", "party,side,wh,price\nb,buy,x,1\n",
                 "party,side,wh,price\nb,hold,1,1\n"):
        orders.write_text(text, encoding="utf-8")
        code, out, err = _run(capsys, "energy", "clear", str(orders), "--json")
        assert (2, "") == (code, out)
        assert 1 == len(err.strip().splitlines())
    orders.write_bytes(b"\xff\xfe\x00")
    assert 2 == _run(capsys, "energy", "clear", str(orders))[0]
