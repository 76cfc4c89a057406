"""The stored local energy market (issue 17 item 3) on SQLite and PostgreSQL: registered
meters post orders until gate closure, the interval clears at one price, delivery is read
from stored readings scoring at least the threshold (a cloned meter's do not), and the node
key pays each seller one settlement-token transfer per interval, durably and only once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from simtrust.api.app import create_app
from simtrust.errors import Conflict, InvalidInput, NotFound, Rejected
from simtrust.runtime import Runtime
from simtrust.settlement import SettlementTokens
from simtrust.streams import EnergyMarket, MeterReading, encode_reading
from tests.conftest import close_runtime, make_runtime
from tests.streams.test_service import Box, _reopen
from tests.streams.world import TENANT, Meter, setup_tenant, sim_meter
from tests.subscriber.conftest import imei

INTERVAL = 900


@pytest.fixture
def box(store_kind: str, tmp_path: Path) -> Iterator[Box]:
    holder = Box(make_runtime(store_kind, tmp_path / "home"))
    yield holder
    close_runtime(holder.rt)


def _market(rt: Runtime, at: datetime) -> EnergyMarket:
    """The runtime's market seen at time ``at`` (gate closure is tested)."""
    return rt.energy.with_clock(lambda: at)


def _meter(rt: Runtime, n: int) -> tuple[Meter, str]:
    meter = sim_meter(rt, n)
    channel = rt.streams.open_channel(TENANT, meter.author.announce.to_bytes(),
                                      actor="t")["id"]
    rt.streams.register_meter(TENANT, channel, meter.credential, actor="t")
    assert rt.subscriber.attach.decide(meter.imsi, meter.imei, "00101").allowed
    return meter, channel


def _read(rt: Runtime, meter: Meter, channel: str, wh: int, at: int) -> str:
    frame = meter.author.publish(encode_reading(MeterReading(meter.meter_did, wh, at)))
    address = rt.subscriber.addresses.address_of(meter.imsi)
    done = rt.streams.publish(channel, frame.to_bytes(), source=address, actor="t")
    return str(done["message_id"])


def test_orders_clear_deliver_and_pay_in_tokens(box: Box) -> None:
    rt = box.rt
    setup_tenant(rt, sims=3)
    (alba, alba_ch), (brook, brook_ch), (dune, _dune_ch) = (_meter(rt, n) for n in (1, 2, 3))
    now = datetime.now(UTC)
    start = (int(now.timestamp()) // INTERVAL + 2) * INTERVAL
    before = _market(rt, now)
    # The buyer's deposit in escrow first: its SIM key pays 60 tokens to the node key.
    node = rt.ledger
    token = SettlementTokens(node).create(node.signer, 10**6, 10**5).token_id
    node.transfer(node.signer, dune.author.announce.author, 100, token=token)
    deposit = node.transfer(dune.sim.signer, node.signer.public_key, 60,  # type: ignore[arg-type]
                            token=token)
    with pytest.raises(Rejected) as nothing:  # no deposit registered yet: no bid
        before.post_order(TENANT, interval_start=start, meter=dune.meter_did, side="buy",
                          wh=2_000, price=30, actor="t")
    assert "insufficient-deposit" == nothing.value.reason
    with pytest.raises(Conflict):  # not alba's transfer
        before.deposit(TENANT, meter=alba.meter_did, message_id=deposit, actor="t")
    made = before.deposit(TENANT, meter=dune.meter_did, message_id=deposit, actor="t")
    assert {token.hex(): 60} == made["balances"]
    with pytest.raises(Conflict):  # counted once
        before.deposit(TENANT, meter=dune.meter_did, message_id=deposit, actor="t")
    for meter, side, wh, price in ((alba, "sell", 1_000, 20), (brook, "sell", 1_000, 22),
                                   (dune, "buy", 2_000, 30)):  # 2,000 Wh x 30 / 1000 = 60
        before.post_order(TENANT, interval_start=start, meter=meter.meter_did, side=side,
                          wh=wh, price=price, actor="t")
    # Another bid would commit more than the deposit: refused with a clear problem.
    with pytest.raises(Rejected) as short:
        before.post_order(TENANT, interval_start=start + INTERVAL, meter=dune.meter_did,
                          side="buy", wh=1, price=1, actor="t")
    assert ("insufficient-deposit", 1, 0) == (short.value.reason,
                                              short.value.context["required"],
                                              short.value.context["available"])
    with pytest.raises(Rejected):  # nor can committed deposit be withdrawn
        before.withdraw(TENANT, meter=dune.meter_did, token=token, amount=1, actor="t")
    assert {"balance": 60, "committed": 60, "available": 0} == before.funds(
        TENANT, dune.meter_did)["tokens"][token.hex()]
    with pytest.raises(Conflict):
        before.clear_interval(TENANT, start, actor="t")  # the gate has not closed yet
    for bad in ({"interval_start": start + 1}, {"wh": 0}, {"side": "hold"},
                {"meter": "did:example:nobody"}, {"price": 2**64}):
        args = {"interval_start": start, "meter": alba.meter_did, "side": "sell", "wh": 1,
                "price": 1, **bad}
        with pytest.raises((InvalidInput, NotFound)):
            before.post_order(TENANT, actor="t", **args)  # type: ignore[arg-type]

    # Readings bracketing the interval: alba delivers 800 Wh of its 1,000 ...
    _read(rt, alba, alba_ch, 10_000, start)
    _read(rt, alba, alba_ch, 10_800, start + INTERVAL)
    # ... brook's SIM turns up in another device: a cloned meter, its readings untrusted.
    _read(rt, brook, brook_ch, 5_000, start)
    rt.subscriber.attach.decide(brook.imsi, imei(99).value, "00101")
    clone = rt.streams.publish(channel_id=brook_ch, frame=brook.author.publish(encode_reading(
        MeterReading(brook.meter_did, 6_000, start + INTERVAL))).to_bytes(), actor="t")
    assert "cloned-meter" in {a["kind"] for a in clone["alerts"]}

    after = _market(rt, datetime.fromtimestamp(start + INTERVAL + 1, UTC))
    assert [] == before.clear_due(TENANT, actor="t")  # nothing due before the gate closed
    assert [start] == [d["interval_start"] for d in after.clear_due(TENANT, actor="t")]
    assert [] == after.clear_due(TENANT, actor="t")  # cleared once
    cleared = after.clear_interval(TENANT, start, actor="t")
    assert ("cleared", 26) == (cleared["status"], cleared["price"])
    # Once cleared, the bid commits what its trades cost: 2 x 1,000 Wh x 26 / 1000 = 52.
    assert {"balance": 60, "committed": 52, "available": 8} == after.funds(
        TENANT, dune.meter_did)["tokens"][token.hex()]
    assert [[alba.meter_did, dune.meter_did, 1_000], [brook.meter_did, dune.meter_did, 1_000]
            ] == cleared["trades"]
    assert cleared == after.clear_interval(TENANT, start, actor="t")  # cleared once
    with pytest.raises(Conflict):
        after.post_order(TENANT, interval_start=start, meter=dune.meter_did, side="buy",
                         wh=1, price=1, actor="t")

    with pytest.raises(Conflict):  # the bids are paid in `token`, not another
        after.settle_interval(TENANT, start, token=b"\x01" * 38, actor="t")
    settled = after.settle_interval(TENANT, start, token=token, actor="t")
    plan = settled["payments"]
    assert "settled" == settled["status"]
    assert {alba.meter_did: 800, brook.meter_did: 0} == plan["delivered_wh"]
    assert [brook.meter_did] == list(plan["refused"])
    assert [[dune.meter_did, alba.meter_did, 800, 21, 21],
            [dune.meter_did, brook.meter_did, 0, 0, 0]] == [
        [p["buyer"], p["seller"], p["delivered_wh"], p["amount"], p["paid"]]
        for p in plan["payments"]]  # 800 Wh x 26 / 1000 = 20.8 -> 21
    assert ({dune.meter_did: 21}, {dune.meter_did: 21}, {}) == (
        plan["buyers_owe"], plan["buyers_paid"], plan["unpaid"])
    assert {token.hex(): 39} == after.balances(TENANT, dune.meter_did)
    assert [(alba.meter_did, "paid")] == [(t["to_meter"], t["state"])
                                          for t in plan["transfers"]]
    seller_key = bytes.fromhex(rt.streams.channel(alba_ch)["author"])
    assert 21 == rt.ledger.balance(seller_key).tokens.get(token)
    # The unused deposit goes back to the buyer's key, on the ledger, audited.
    buyer_key = dune.author.announce.author
    held = rt.ledger.balance(buyer_key).tokens.get(token, 0)
    with pytest.raises(Rejected):
        after.withdraw(TENANT, meter=dune.meter_did, token=token, amount=40, actor="t")
    back = after.withdraw(TENANT, meter=dune.meter_did, token=token, amount=39, actor="t")
    assert ("paid", {token.hex(): 0}) == (back["status"], back["balances"])
    assert "finalized" == rt.ledger.status(bytes.fromhex(back["message_id"]))["state"]
    assert held + 39 == rt.ledger.balance(buyer_key).tokens.get(token)
    with pytest.raises(Conflict):
        after.settle_interval(TENANT, start, token=token, actor="t")  # never pays twice
    actions = {e.action for e in rt.audit.query(limit=1_000)}
    assert {"energy.order", "energy.clear", "energy.deposit", "energy.settle",
            "energy.withdraw", "energy.withdraw.paid"} <= actions

    # Everything is in the store: a restarted process sees the same interval.
    box.rt = _reopen(rt)
    again = _market(box.rt, datetime.fromtimestamp(start + 2 * INTERVAL, UTC))
    assert settled == again.interval(TENANT, start)


def test_gate_closure_uses_the_interval_start(box: Box) -> None:
    rt = box.rt
    setup_tenant(rt, sims=1)
    meter, _ = _meter(rt, 1)
    market = _market(rt, datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    with pytest.raises(Conflict):
        market.post_order(TENANT, interval_start=start, meter=meter.meter_did, side="sell",
                          wh=1, price=1, actor="t")
    nothing = market.clear_interval(TENANT, start, actor="t")
    assert (None, []) == (nothing["price"], nothing["trades"])
    later = start + 3 * INTERVAL
    ordered = market.post_order(TENANT, interval_start=later, meter=meter.meter_did,
                                side="sell", wh=5, price=7, actor="t")
    assert [ordered["order_id"]] == [o["order_id"] for o in market.orders(TENANT, later)]
    assert timedelta(seconds=INTERVAL) == timedelta(
        seconds=market.interval(TENANT, later)["interval_end"] - later)


def test_api_orders_clear_and_settle(sqlite_runtime: Runtime) -> None:
    """Over HTTP: a tenant admin posts orders; a past interval's gate is closed (409); an
    operator clears and settles; another tenant sees nothing; bad input is a problem."""
    rt = sqlite_runtime
    setup_tenant(rt, sims=2)
    seller, _ = _meter(rt, 1)
    buyer, _ = _meter(rt, 2)
    admin = rt.tenants.create_key("tenant-admin", "acme admin", TENANT)
    operator = rt.tenants.create_key("operator-admin", "operator")
    rt.tenants.create_tenant("other", "Other")
    stranger = rt.tenants.create_key("tenant-admin", "other admin", "other")
    as_admin = {"Authorization": f"Bearer {admin.secret}"}
    as_operator = {"Authorization": f"Bearer {operator.secret}"}
    start = (int(datetime.now(UTC).timestamp()) // INTERVAL + 4) * INTERVAL
    with TestClient(create_app(rt)) as api:
        node = rt.ledger
        token = SettlementTokens(node).create(node.signer, 1_000, 100).token_id
        node.transfer(node.signer, buyer.author.announce.author, 40, token=token)
        paid = node.transfer(buyer.sim.signer, node.signer.public_key, 30,  # type: ignore[arg-type]
                             token=token)
        made = api.post("/v1/energy/deposits", headers=as_admin, json={
            "meter": buyer.meter_did, "message_id": paid.hex()})
        assert (201, {token.hex(): 30}) == (made.status_code, made.json()["balances"]), made.text
        for meter, side, price in ((seller, "sell", 10), (buyer, "buy", 40)):
            made = api.post("/v1/energy/orders", headers=as_admin, json={
                "interval_start": start, "meter": meter.meter_did, "side": side, "wh": 500,
                "price": price})
            assert 201 == made.status_code, made.text
        assert token.hex() == made.json()["token"]  # the buyer's only deposit
        short = api.post("/v1/energy/orders", headers=as_admin, json={
            "interval_start": start, "meter": buyer.meter_did, "side": "buy", "wh": 500,
            "price": 40, "token_id": token.hex()})  # 20 more, 10 left uncommitted
        assert (422, "insufficient-deposit", 20, 10) == (
            short.status_code, short.json()["reason"], short.json()["required"],
            short.json()["available"])
        assert short.headers["content-type"].startswith("application/problem+json")
        back = api.post("/v1/energy/withdrawals", headers=as_admin, json={
            "meter": buyer.meter_did, "token_id": token.hex(), "amount": 10})
        assert (201, "paid") == (back.status_code, back.json()["status"]), back.text
        over = api.post("/v1/energy/withdrawals", headers=as_admin, json={
            "meter": buyer.meter_did, "token_id": token.hex(), "amount": 1})
        assert (422, "insufficient-deposit") == (over.status_code, over.json()["reason"])
        hidden_withdrawal = api.post("/v1/energy/withdrawals", headers={
            "Authorization": f"Bearer {stranger.secret}"}, json={
            "meter": buyer.meter_did, "token_id": token.hex(), "amount": 1})
        assert 404 == hidden_withdrawal.status_code
        shown = api.get(f"/v1/energy/intervals/{start}", headers=as_admin).json()
        assert ("open", 2) == (shown["status"], len(shown["orders"]))
        other = api.get(f"/v1/energy/intervals/{start}", headers={
            "Authorization": f"Bearer {stranger.secret}"}).json()
        assert [] == other["orders"]
        hidden = api.post("/v1/energy/orders", headers={
            "Authorization": f"Bearer {stranger.secret}"}, json={
            "interval_start": start, "meter": seller.meter_did, "side": "sell", "wh": 1,
            "price": 1})
        assert 404 == hidden.status_code  # another tenant's meter answers like a missing one
        early = api.post(f"/v1/energy/intervals/{start}/clear", headers=as_admin, json={})
        assert 409 == early.status_code
        assert early.headers["content-type"].startswith("application/problem+json")
        past = start - 10 * INTERVAL
        closed = api.post("/v1/energy/orders", headers=as_admin, json={
            "interval_start": past, "meter": seller.meter_did, "side": "sell", "wh": 1,
            "price": 1})
        assert 409 == closed.status_code
        cleared = api.post(f"/v1/energy/intervals/{past}/clear", headers=as_operator,
                           json={"tenant_id": TENANT})
        assert (200, None) == (cleared.status_code, cleared.json()["price"])
        refused = api.post(f"/v1/energy/intervals/{past}/settle", headers=as_admin,
                           json={"token_id": "00" * 32})
        assert 403 == refused.status_code
        again = api.post("/v1/energy/deposits", headers=as_admin, json={
            "meter": buyer.meter_did, "message_id": paid.hex()})
        assert 409 == again.status_code
        unknown = api.post("/v1/energy/deposits", headers=as_admin, json={
            "meter": buyer.meter_did, "message_id": "00" * 32})
        assert 409 == unknown.status_code  # no such finalized transfer
        shown = api.get("/v1/energy/balances", headers=as_admin,
                        params={"meter": buyer.meter_did})
        assert {token.hex(): 20} == shown.json()["balances"]
        assert {"balance": 20, "committed": 20, "available": 0} == shown.json()["funds"][
            token.hex()]
        hidden_balance = api.get("/v1/energy/balances", headers={
            "Authorization": f"Bearer {stranger.secret}"}, params={"meter": buyer.meter_did})
        assert 404 == hidden_balance.status_code
        for bad in ({"interval_start": start + 1}, {"side": "hold"}, {"wh": 0}, {"wh": 2**64}):
            body = {"interval_start": start, "meter": seller.meter_did, "side": "sell",
                    "wh": 1, "price": 1, **bad}
            answer = api.post("/v1/energy/orders", headers=as_admin, json=body)
            assert answer.status_code in (400, 422), bad  # rule broken / schema mismatch
            assert answer.headers["content-type"].startswith("application/problem+json")
