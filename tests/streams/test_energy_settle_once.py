"""Each cleared interval is settled exactly once, by the scheduler on its own, whatever
number of settlers share the store (on SQLite and PostgreSQL): the claim lives in the
interval's row, not in a process. A second store connection cannot settle, recover or
tick an interval another settler is paying; once the holder's lease ended it takes over
from the recorded plan, sends the transfer the holder had signed (not a new one), and the
old holder stops without writing. A claim of a process that no longer runs is taken at
once; one of a live process is left to it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simtrust.audit import AuditLog
from simtrust.errors import Conflict
from simtrust.runtime import Runtime
from simtrust.store import Database, PostgresDatabase, SqliteDatabase
from simtrust.streams import EnergyMarket
from simtrust.streams._settle_claim import LEASE_SECONDS, SettleClaims
from tests.conftest import PG_URL, close_runtime, make_runtime
from tests.streams.test_energy_escrow import START, _cleared
from tests.streams.test_energy_market import INTERVAL, _market
from tests.streams.world import TENANT


@pytest.fixture
def rt(store_kind: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(store_kind, tmp_path / "home")
    yield runtime
    close_runtime(runtime)


@pytest.fixture
def second(rt: Runtime) -> Iterator[Database]:
    """Another connection to the same store, as a second process would hold."""
    db = rt.db
    other: Database = (SqliteDatabase(db.path) if isinstance(db, SqliteDatabase)
                       else PostgresDatabase(PG_URL, schema=db.schema))  # type: ignore[attr-defined]
    yield other
    other.close()


class Interleaved:
    """The real clearing house; runs ``meanwhile`` once, before the first submit."""

    def __init__(self, house: object, meanwhile: Callable[[], None]) -> None:
        self._house = house
        self._meanwhile: Callable[[], None] | None = meanwhile

    def __getattr__(self, name: str) -> object:
        return getattr(self._house, name)

    def submit(self, raw: bytes) -> bytes:
        if self._meanwhile is not None:
            run, self._meanwhile = self._meanwhile, None
            run()
        return self._house.submit(raw)  # type: ignore[attr-defined, no-any-return]


def _paid_once(rt: Runtime, token: bytes, keys: dict[str, bytes]) -> dict[str, int]:
    plan = rt.energy.interval(TENANT, START)["payments"]
    assert "settled" == rt.energy.interval(TENANT, START)["status"]
    owed = {t["to_meter"]: t["amount"] for t in plan["transfers"]}
    assert set(keys) == set(owed)
    assert all(amount > 0 for amount in owed.values())
    assert owed == {m: rt.ledger.balance(k).tokens.get(token, 0) for m, k in keys.items()}
    assert len(keys) == len({t["message_id"] for t in plan["transfers"]})
    assert 1 == [e.action for e in rt.audit.query(limit=1_000)].count("energy.settle")
    return owed


def test_the_scheduler_settles_each_cleared_interval_once(rt: Runtime) -> None:
    token, _meters, keys = _cleared(rt, 3)
    # Before the closing readings had time to arrive, nothing is settled.
    early = _market(rt, datetime.fromtimestamp(START + INTERVAL + 60, UTC))
    assert [] == early.tick(actor="scheduler")["settled"]
    assert "cleared" == rt.energy.interval(TENANT, START)["status"]
    later = _market(rt, datetime.fromtimestamp(START + 2 * INTERVAL, UTC))
    assert [{"tenant_id": TENANT, "interval_start": START, "status": "settled"}] == later.tick(
        actor="scheduler")["settled"]
    assert [] == later.tick(actor="scheduler")["settled"]
    _paid_once(rt, token, keys)


def test_a_second_connection_never_pays_an_interval_being_paid(rt: Runtime,
                                                                second: Database) -> None:
    token, _meters, keys = _cleared(rt, 3)
    now = datetime.fromtimestamp(START + 2 * INTERVAL, UTC)
    house = rt.energy.escrow.house
    other = EnergyMarket(second, rt.streams, AuditLog(second, lambda: now), lambda: now, house)
    took_over: list[str] = []

    def meanwhile() -> None:
        # The holder has signed and recorded its first transfer and not submitted it yet.
        with pytest.raises(Conflict, match="paying"):
            other.settle_interval(TENANT, START, token=token, actor="other")
        assert [] == [r for r in other.recover(actor="other") if "interval_start" in r]
        assert [] == other.tick(actor="other")["settled"]
        assert all(0 == rt.ledger.balance(k).tokens.get(token, 0) for k in keys.values())
        # The holder's lease ends (it stalled): the other settler takes over and sends the
        # transfer the holder recorded, then the rest.
        expired = other.with_clock(lambda: now + timedelta(seconds=LEASE_SECONDS + 1))
        done = [r for r in expired.recover(actor="other") if "interval_start" in r]
        took_over.extend(r["status"] for r in done)

    holder = EnergyMarket(rt.db, rt.streams, rt.audit, lambda: now,
                          Interleaved(house, meanwhile))  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="another settler"):
        holder.settle_interval(TENANT, START, token=token, actor="holder")
    assert ["settled"] == took_over
    _paid_once(rt, token, keys)


def test_a_claim_of_a_live_process_holds_one_of_a_dead_process_is_taken(
        rt: Runtime) -> None:
    token, _meters, keys = _cleared(rt, 2)
    now = datetime.fromtimestamp(START + 2 * INTERVAL, UTC)
    market = _market(rt, now)
    # The plan a settler that crashed before its first transfer left behind.
    plan = market._plan(TENANT, START, token)
    claims = SettleClaims(rt.db, lambda: now)
    with rt.db.transaction():
        claim = claims.take_cleared(TENANT, START, plan)
    claims.release(claim)
    host = claim.split("/", 1)[0]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=60)
    lease = int(now.timestamp()) + LEASE_SECONDS
    for payer, taken in ((f"{host}/{os.getppid()}/live", False),
                         (f"elsewhere/{os.getppid()}/remote", False),
                         (f"{host}/{dead.stdout.strip()}/dead", True)):
        with rt.db.transaction():
            rt.db.execute("UPDATE energy_intervals SET payer = ?, lease_until = ?"
                          " WHERE tenant_id = ? AND interval_start = ?",
                          (payer, lease, TENANT, START))
        found = [r for r in market.recover(actor="restart") if "interval_start" in r]
        assert taken == (found == [{"tenant_id": TENANT, "interval_start": START,
                                    "status": "settled"}]), payer
    _paid_once(rt, token, keys)
