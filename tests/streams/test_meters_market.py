"""Meters (readings, clones, rollbacks) and the local energy market (clearing, delivery,
payment), checked against an independent brute-force clearing."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError, InvalidInput
from simtrust.streams import (
    MeterReading,
    MeterWatch,
    Order,
    clear,
    decode_reading,
    delivered_wh,
    encode_reading,
    settle,
)

METER = "did:simtrust:test:meter1"


def test_reading_round_trips_and_bad_payloads_are_named() -> None:
    reading = MeterReading(METER, 1_234_567, 1_700_000_000)
    assert reading == decode_reading(encode_reading(reading))
    assert b'{"at":1700000000,"meter":"did:simtrust:test:meter1","register_wh":1234567}' == (
        encode_reading(reading))
    for bad in (b"\xff", b"[]", b'{"meter":"m","register_wh":1,"at":1}',
                b'{"meter":"did:x","register_wh":-1,"at":1}',
                b'{"meter":"did:x","register_wh":true,"at":1}',
                b'{"meter":"did:x","register_wh":1,"at":1,"extra":0}'):
        with pytest.raises(DecodeError):
            decode_reading(bad)


def test_a_meter_seen_from_a_second_sim_is_a_clone() -> None:
    alerts = []
    watch = MeterWatch(alerts.append)
    assert [] == watch.observe(MeterReading(METER, 100, 1), "8944000000000000001", "imei-1")
    assert [] == watch.observe(MeterReading(METER, 150, 2), "8944000000000000001", "imei-1")
    raised = watch.observe(MeterReading(METER, 160, 3), "8944000000000000002", "imei-2")
    assert ["cloned-meter"] == [a.kind for a in raised]
    assert "8944000000000000002" in raised[0].explanation
    assert not watch.is_clean(METER)
    assert raised == alerts


def test_a_register_going_back_is_a_rollback() -> None:
    watch = MeterWatch()
    watch.observe(MeterReading(METER, 500, 1), "sim", "dev")
    raised = watch.observe(MeterReading(METER, 400, 2), "sim", "dev")
    assert ["register-rollback"] == [a.kind for a in raised]
    assert {"previous_wh": 500, "reported_wh": 400, "at": 2} == raised[0].evidence


def test_clearing_at_one_price_between_the_marginal_orders() -> None:
    orders = [Order("b1", "buy", 3000, 30), Order("b2", "buy", 2000, 25),
              Order("b3", "buy", 1000, 10), Order("s1", "sell", 2500, 12),
              Order("s2", "sell", 2000, 20), Order("s3", "sell", 5000, 28)]
    result = clear(orders)
    assert 4500 == result.volume_wh
    # last matched bid 25 (b2), last matched offer 20 (s2): price 22
    assert 22 == result.price
    assert [("s1", "b1", 2500), ("s2", "b1", 500), ("s2", "b2", 1500)] == [
        (t.seller, t.buyer, t.wh) for t in result.trades]
    assert clear([Order("b", "buy", 1, 5), Order("s", "sell", 1, 6)]).price is None


def _brute_volume(orders: list[Order]) -> int:
    """Largest volume any single price could clear (the independent check)."""
    best = 0
    for price in sorted({o.price for o in orders}):
        demand = sum(o.wh for o in orders if o.side == "buy" and o.price >= price)
        supply = sum(o.wh for o in orders if o.side == "sell" and o.price <= price)
        best = max(best, min(demand, supply))
    return best


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(Order, st.sampled_from(["p1", "p2", "p3", "p4"]),
                          st.sampled_from(["buy", "sell"]), st.integers(1, 50),
                          st.integers(0, 20)), max_size=12))
def test_clearing_is_efficient_and_individually_rational(orders: list[Order]) -> None:
    result = clear(orders)
    assert _brute_volume(orders) == result.volume_wh
    if result.price is None:
        return
    bought: dict[str, int] = {}
    sold: dict[str, int] = {}
    for trade in result.trades:
        bought[trade.buyer] = bought.get(trade.buyer, 0) + trade.wh
        sold[trade.seller] = sold.get(trade.seller, 0) + trade.wh
    for party, wh in bought.items():
        assert wh <= sum(o.wh for o in orders
                         if o.party == party and o.side == "buy" and o.price >= result.price)
    for party, wh in sold.items():
        assert wh <= sum(o.wh for o in orders
                         if o.party == party and o.side == "sell" and o.price <= result.price)


def test_delivery_needs_trusted_readings_and_payment_follows_it() -> None:
    trusted, doubtful = Fraction(9, 10), Fraction(1, 4)
    readings = [(100, 10_000, trusted), (160, 12_000, doubtful), (200, 11_800, trusted)]
    assert 1_800 == delivered_wh(readings, 100, 200, Fraction(1, 2))
    with pytest.raises(InvalidInput):
        delivered_wh([(100, 10_000, doubtful), (200, 11_000, trusted)], 100, 200,
                     Fraction(1, 2))
    result = clear([Order("b", "buy", 2000, 30), Order("s", "sell", 2000, 20)])
    paid: list[tuple[str, str, int]] = []
    payments = settle(result, {"s": 1_800}, lambda a, b, n: paid.append((a, b, n)))
    assert 25 == result.price
    assert [("b", "s", 45)] == paid  # 1,800 Wh at 25 per kWh
    assert 1_800 == payments[0].delivered_wh
