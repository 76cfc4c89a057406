"""A settlement killed with SIGKILL mid-payment is finished by the next `simtrust serve` from
the ledger's word: every seller paid exactly once. The same serve clears and settles a due
interval on its own (the scheduler inside serve, no external timer)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.settlement import SettlementTokens
from simtrust.streams import MeterReading, encode_reading
from tests.streams.world import TENANT, Meter, setup_tenant, sim_meter

SELLERS = 30
INTERVAL = 900
START = 1_767_225_600  # 2026-01-01T00:00:00Z
LATER = START + 4 * INTERVAL


def _wait_until(condition: Callable[[], bool], what: str, bound: float = 300.0,
                pause: float = 0.002) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(pause)


def _meter(rt: Runtime, n: int) -> tuple[Meter, str]:
    meter = sim_meter(rt, n)
    channel = rt.streams.open_channel(TENANT, meter.author.announce.to_bytes(),
                                      actor="t")["id"]
    rt.streams.register_meter(TENANT, channel, meter.credential, actor="t")
    assert rt.subscriber.attach.decide(meter.imsi, meter.imei, "00101").allowed
    return meter, channel


def _read(rt: Runtime, meter: Meter, channel: str, wh: int, at: int) -> None:
    frame = meter.author.publish(encode_reading(MeterReading(meter.meter_did, wh, at)))
    rt.streams.publish(channel, frame.to_bytes(),
                       source=rt.subscriber.addresses.address_of(meter.imsi), actor="t")


def _setup(home: Path) -> tuple[bytes, dict[str, bytes]]:
    """SELLERS sellers and one buyer; START cleared (to settle), LATER due (to clear)."""
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        setup_tenant(rt, sims=SELLERS + 1)
        buyer, _ = _meter(rt, SELLERS + 1)
        node = rt.ledger
        token = SettlementTokens(node).create(node.signer, 10**9, 10**8).token_id
        node.transfer(node.signer, buyer.author.announce.author, 10**6, token=token)
        deposit = node.transfer(buyer.sim.signer, node.signer.public_key,  # type: ignore[arg-type]
                                10**6, token=token)
        before = rt.energy.with_clock(lambda: datetime.fromtimestamp(START - 60, UTC))
        before.deposit(TENANT, meter=buyer.meter_did, message_id=deposit, actor="t")
        keys = {}
        for n in range(1, SELLERS + 1):
            seller, channel = _meter(rt, n)
            keys[seller.meter_did] = bytes.fromhex(rt.streams.channel(channel)["author"])
            for start in (START, LATER):
                before.post_order(TENANT, interval_start=start, meter=seller.meter_did,
                                  side="sell", wh=100, price=10, actor="t")
            _read(rt, seller, channel, 1_000, START)
            _read(rt, seller, channel, 1_000 + 100 * n // SELLERS + 50, START + INTERVAL)
        for start in (START, LATER):
            before.post_order(TENANT, interval_start=start, meter=buyer.meter_did, side="buy",
                              wh=100 * SELLERS, price=50, actor="t")
        after = rt.energy.with_clock(lambda: datetime.fromtimestamp(START + 2 * INTERVAL, UTC))
        assert after.clear_interval(TENANT, START, actor="t")["price"] == 30
        return token, keys
    finally:
        rt.close()


def _status(db: Path, start: int) -> tuple[str | None, list[str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        row = conn.execute("SELECT status, payments FROM energy_intervals WHERE tenant_id = ?"
                           " AND interval_start = ?", (TENANT, start)).fetchone()
    if row is None:
        return None, []
    plan = json.loads(row[1]) if row[1] else {"transfers": []}
    return row[0], [t.get("state", "") for t in plan["transfers"]]


def test_a_settlement_killed_mid_payment_is_finished_by_the_next_serve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    token, keys = _setup(home)
    db = home / "simtrust.db"
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0",
           "SIMTRUST_ENERGY_CLEAR_INTERVAL_S": "1"}
    settle = subprocess.Popen(
        [sys.executable, "-m", "simtrust", "energy", "settle", str(START), "--tenant", TENANT,
         "--token", token.hex()], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def midway() -> bool:
            assert settle.poll() is None, "the settlement ended before it was killed"
            status, states = _status(db, START)
            return status == "paying" and 0 < states.count("paid") < len(states)

        _wait_until(midway, "the settlement to be half paid")
        os.kill(settle.pid, signal.SIGKILL)
        settle.wait(timeout=60)
    finally:
        if settle.poll() is None:
            settle.kill()
            settle.wait(timeout=60)
    assert -signal.SIGKILL == settle.returncode
    status, states = _status(db, START)
    assert "paying" == status
    assert 0 < states.count("paid") < SELLERS

    log = (tmp_path / "serve.log").open("w+b")
    server = subprocess.Popen([sys.executable, "-m", "simtrust", "serve", "--bind",
                               "127.0.0.1:0", "--workers", "1"], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        def finished() -> bool:
            assert server.poll() is None, "serve exited"
            return (_status(db, START)[0] == "settled"
                    and _status(db, LATER)[0] == "settled")

        _wait_until(finished, "serve to finish the settlement, clear and settle the due interval",
                    pause=0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=60)
        log.close()

    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        plan = rt.energy.interval(TENANT, START)["payments"]
        owed = {t["to_meter"]: t["amount"] for t in plan["transfers"]}
        assert SELLERS == len(owed)
        assert {"paid"} == {t["state"] for t in plan["transfers"]}
        # Exactly once, on the ledger: each seller's key holds what it was owed, no more.
        assert owed == {meter: rt.ledger.balance(key).tokens.get(token, 0)
                        for meter, key in keys.items()}
        assert len({t["message_id"] for t in plan["transfers"]}) == SELLERS
        actions = [e.action for e in rt.audit.query(limit=5_000)]
        # START once (finished by recovery), LATER once (by the scheduler, on its own).
        assert 2 == actions.count("energy.settle")
        cleared = rt.energy.interval(TENANT, LATER)
        assert (30, SELLERS) == (cleared["price"], len(cleared["trades"]))
        # No reading after LATER: nothing delivered, nothing paid, the record says why.
        assert [] == cleared["payments"]["transfers"]
        assert SELLERS == len(cleared["payments"]["refused"])
    finally:
        rt.close()
