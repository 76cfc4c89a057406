"""Product orders accepted and orchestrated end to end on one node, next to the store's limit.

Figures (issue 16): ``metrics.orders_per_s`` — single-item IoT connectivity
orders (one SIM each) created through :class:`~simtrust.market.MarketService`
(validated, plan resolved, acknowledged durably) and orchestrated to
``completed`` (product order → TMF641 service order → SIM moved from the
seller's stock to the buyer's tenant, journaled → TMF638 service and TMF637
product, completed durably) by ``THREADS`` concurrent buyers on a SQLite
store; ``metrics.order_complete_p99_s`` / ``_p50_s`` from the create call to
``completed``. The limit measured in the same run on the same store is
``limits.durable_commits_per_s``: one-row durable transactions from the same
number of threads (an order needs two durable commits and four plain ones, so
``ratios.orders_to_durable_commits`` near 0.5 would mean orchestration costs
nothing beyond its commits). The run fails unless every order completed and
every SIM moved.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from simtrust.benchmark import BenchResult
from simtrust.domain import Iccid, Imsi
from simtrust.runtime import Runtime
from simtrust.subscriber import OpKind, SimSecrets, SimSpec, SimState, luhn_check_digit

NAME = "market"
DESCRIPTION = "TMF622 connectivity orders orchestrated to completed per second vs durable commits"

THREADS = 4
_FULL = 4000
_QUICK = 400
_BUYERS = 8
_K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
_OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")


def _iccid(n: int) -> Iccid:
    body = f"89882{n:013d}"
    return Iccid(body + str(luhn_check_digit(body)))


def _catalog(rt: Runtime) -> str:
    market = rt.market
    spec = market.create_item("serviceSpecification", None, {
        "name": "IoT SIMs", "lifecycleStatus": "Active",
        "targetEntitySchema": {"@type": "SimBatch"},
        "specCharacteristic": [{"name": "stockTenant", "configurable": False,
                                "characteristicValueSpecification": [
                                    {"value": "stock", "isDefault": True}]}]}, "bench")
    product = market.create_item("productSpecification", None, {
        "name": "IoT connectivity", "serviceSpecification": [{"id": spec.document["id"]}]},
        "bench")
    offering = market.create_item("productOffering", None, {
        "name": "IoT connectivity 1 SIM", "lifecycleStatus": "Launched", "isSellable": True,
        "productSpecification": {"id": product.document["id"]}}, "bench")
    return str(offering.document["id"])


def _stock(rt: Runtime, count: int) -> None:
    rt.tenants.create_tenant("stock", "SIM stock")
    for b in range(_BUYERS):
        rt.tenants.create_tenant(f"buyer{b}", f"Buyer {b}")
    inventory = rt.subscriber.inventory
    now = rt.clock().isoformat()
    secrets = SimSecrets(_K, _OPC, OpKind.OPC)
    rows = [inventory.seal_row(SimSpec(_iccid(n), Imsi(f"00101{n:010d}", 2), secrets,
                                       state=SimState.INVENTORY), "stock", now)
            for n in range(count)]
    with rt.db.transaction():
        inventory.insert_sealed_rows(rows)


def _durable_commits(rt: Runtime, seconds: float) -> float:
    rt.db.execute("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, v TEXT)")
    counts = [0] * THREADS
    deadline = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        while time.perf_counter() < deadline:
            with rt.db.transaction(durable=True):
                rt.db.execute("INSERT INTO bench_commit (v) VALUES (?)", ("x" * 200,))
            counts[slot] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def _orders(rt: Runtime, offering: str, total: int) -> tuple[float, list[float]]:
    market, orchestrator = rt.market, rt.orchestrator
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []
    per_thread = total // THREADS

    def worker(slot: int) -> None:
        mine = []
        for n in range(per_thread):
            tenant = f"buyer{(slot + n) % _BUYERS}"
            began = time.perf_counter()
            order = market.create_order(tenant, {"productOrderItem": [
                {"id": "1", "action": "add", "quantity": 1,
                 "productOffering": {"id": offering}}]}, f"bench-{tenant}")
            state = orchestrator.process(order.document["id"])
            mine.append(time.perf_counter() - began)
            if state != "completed":
                failures.append(state)
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} orders did not complete: {failures[:3]}")
    return (per_thread * THREADS) / elapsed, latencies


def run(quick: bool) -> BenchResult:
    total = _QUICK if quick else _FULL
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-market-") as folder:
        rt = Runtime.ephemeral(Path(folder) / "home")
        try:
            _stock(rt, total)
            offering = _catalog(rt)
            # Warm-up: the first order builds the services and caches.
            _orders_warm(rt, offering)
            rate, latencies = _orders(rt, offering, total - THREADS * 2)
            limit = _durable_commits(rt, 1.0 if quick else 3.0)
            moved = rt.subscriber.inventory.count_sims("stock").get("inventory", 0)
            products = rt.db.query_one("SELECT COUNT(*) FROM market_products")
        finally:
            rt.close()
    done = (products[0] if products else 0)
    if moved != total - done:
        raise RuntimeError(f"{total - moved} SIMs moved for {done} completed orders")
    latencies.sort()
    result = BenchResult(bench=NAME)
    result.metrics["orders_per_s"] = round(rate, 1)
    result.metrics["order_complete_p50_s"] = round(statistics.median(latencies), 5)
    result.metrics["order_complete_p99_s"] = round(
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 5)
    result.limits["durable_commits_per_s"] = round(limit, 1)
    result.ratio("orders_to_durable_commits", "orders_per_s", "durable_commits_per_s")
    result.notes.update(orders=len(latencies), threads=THREADS, store="sqlite",
                        target_orders_per_s=200, offering="SimBatch, quantity 1")
    return result


def _orders_warm(rt: Runtime, offering: str) -> Any:
    market = rt.market
    for b in range(THREADS * 2):
        order = market.create_order(f"buyer{b % _BUYERS}", {"productOrderItem": [
            {"id": "1", "action": "add", "productOffering": {"id": offering}}]}, "bench")
        rt.orchestrator.process(order.document["id"])
