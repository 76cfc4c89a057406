"""Recovery of a ``paying`` interval from the ledger's word, on SQLite and PostgreSQL: a
transfer the ledger applied is never sent again, one recorded but never submitted is sent,
one only planned is made; a settlement that cannot make any transfer rolls back to
``cleared`` and releases the buyers' debits. Settlement reads the readings index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simtrust.errors import InvalidInput
from simtrust.ledger import message_id
from simtrust.runtime import Runtime
from simtrust.settlement import SettlementTokens
from tests.conftest import close_runtime, make_runtime
from tests.streams.test_energy_market import INTERVAL, _market, _meter, _read
from tests.streams.test_service import Box
from tests.streams.world import TENANT, setup_tenant

START = 1_767_225_600


@pytest.fixture
def box(store_kind: str, tmp_path: Path) -> Iterator[Box]:
    holder = Box(make_runtime(store_kind, tmp_path / "home"))
    yield holder
    close_runtime(holder.rt)


def _cleared(rt: Runtime, sellers: int) -> tuple[bytes, list[str], dict[str, bytes]]:
    """``sellers`` sellers who delivered, one buyer with a deposit, START cleared."""
    setup_tenant(rt, sims=sellers + 1)
    buyer, _ = _meter(rt, sellers + 1)
    node = rt.ledger
    token = SettlementTokens(node).create(node.signer, 10**6, 10**5).token_id
    node.transfer(node.signer, buyer.author.announce.author, 1_000, token=token)
    deposit = node.transfer(buyer.sim.signer, node.signer.public_key, 1_000,  # type: ignore[arg-type]
                            token=token)
    before = _market(rt, datetime.fromtimestamp(START - 60, UTC))
    before.deposit(TENANT, meter=buyer.meter_did, message_id=deposit, actor="t")
    meters, keys = [], {}
    for n in range(1, sellers + 1):
        seller, channel = _meter(rt, n)
        meters.append(seller.meter_did)
        keys[seller.meter_did] = bytes.fromhex(rt.streams.channel(channel)["author"])
        before.post_order(TENANT, interval_start=START, meter=seller.meter_did, side="sell",
                          wh=1_000, price=10, actor="t")
        for at, wh in ((START - 300, 1), (START, 5), (START + INTERVAL, 1_005),
                       (START + INTERVAL + 300, 2_000)):
            _read(rt, seller, channel, wh, at)
    before.post_order(TENANT, interval_start=START, meter=buyer.meter_did, side="buy",
                      wh=1_000 * sellers, price=30, actor="t")
    _market(rt, datetime.fromtimestamp(START + 2 * INTERVAL, UTC)).clear_interval(
        TENANT, START, actor="t")
    return token, meters, keys


def test_recover_finishes_a_paying_interval_from_the_ledger(box: Box) -> None:
    rt = box.rt
    token, meters, keys = _cleared(rt, 3)
    market = _market(rt, datetime.fromtimestamp(START + 2 * INTERVAL, UTC))
    # Readings stored before the index existed are indexed once.
    with rt.db.transaction():
        rt.db.execute("DELETE FROM stream_readings")
        rt.db.execute("DELETE FROM stream_backfills")
    assert 12 == rt.streams.meter_registry.index_stored_readings()
    assert 0 == rt.streams.meter_registry.index_stored_readings()
    # Readings nearest the bounds, from the index: the last at or before the start, the
    # first at or after the end.
    assert [(START, 5), (START + INTERVAL, 1_005)] == [
        (at, wh) for at, wh, _score, _datum in market.readings(meters[0], START,
                                                                START + INTERVAL)]
    # What a crash leaves: the plan recorded `paying`; the first transfer submitted and
    # applied but not marked, the second signed and recorded but never submitted, the
    # third only planned (the state settle_interval writes step by step).
    house = market.escrow.house
    transfers = []
    for n, meter in enumerate(meters):
        transfer = {"to_meter": meter, "amount": 20, "state": "planned"}
        if n < 2:
            raw = house.prepare(token, keys[meter], 20)
            transfer.update(state="sending", raw=raw.hex(), message_id=message_id(raw).hex())
            if n == 0:
                house.submit(raw)
        transfers.append(transfer)
        if n == 1:
            break  # the second is built on the node key's outputs the first left
    transfers.append({"to_meter": meters[2], "amount": 20, "state": "planned"})
    plan = {"token": token.hex(), "buyers_paid": {}, "transfers": transfers}
    with rt.db.transaction(durable=True):
        rt.db.execute("UPDATE energy_intervals SET status = 'paying', payments = ?"
                      " WHERE tenant_id = ? AND interval_start = ?",
                      (json.dumps(plan), TENANT, START))
    done = market.recover(actor="t")
    assert [{"tenant_id": TENANT, "interval_start": START, "status": "settled"}] == done
    settled = market.interval(TENANT, START)["payments"]
    assert ["paid"] * 3 == [t["state"] for t in settled["transfers"]]
    assert transfers[0]["message_id"] == settled["transfers"][0]["message_id"]
    assert transfers[1]["message_id"] == settled["transfers"][1]["message_id"]
    assert dict.fromkeys(meters, 20) == {m: rt.ledger.balance(k).tokens.get(token, 0)
                                       for m, k in keys.items()}  # each paid once
    assert [] == market.recover(actor="t")  # nothing left to do


def test_a_settlement_that_cannot_pay_rolls_back_to_cleared(box: Box) -> None:
    rt = box.rt
    token, _meters, _keys = _cleared(rt, 2)
    market = _market(rt, datetime.fromtimestamp(START + 2 * INTERVAL, UTC))
    buyer = market.interval(TENANT, START)["trades"][0][1]
    before = market.balances(TENANT, buyer)
    # The node key's tokens are spent elsewhere: no transfer of the plan can be made.
    node = rt.ledger
    held = node.balance(node.signer.public_key).tokens[token]
    node.transfer(node.signer, b"\x07" * 32, held, token=token)
    with pytest.raises(InvalidInput):
        market.settle_interval(TENANT, START, token=token, actor="t")
    state = market.interval(TENANT, START)
    assert ("cleared", None) == (state["status"], state["payments"])
    assert before == market.balances(TENANT, buyer)  # the debits are released
    assert "energy.settle.rollback" in {e.action for e in rt.audit.query(limit=1_000)}
    assert [] == market.recover(actor="t")
