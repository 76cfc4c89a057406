"""Dashboard benchmark: search, list and SIM pages and a 100,000-SIM bulk suspend at 1,000,000 SIMs.

The fleet comes from a SIM-vendor file through the importer (the million-SIM
import path), 950,000 SIMs for one tenant and 50,000 for another, in ten
groups and two APNs, with device bindings and labels on 20,000 SIMs, address
leases on 10,000 and alerts on 1,000. Page times are measured in-process
through the ASGI app (routing, session, query and rendering: the server's
time). Limits from the same run: the store's own keyset page and point select
(raw SQL, p95) and a raw 100,000-row UPDATE in one transaction.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from simtrust.audit import AuditEntry
from simtrust.benchmark import BenchResult
from simtrust.runtime import Runtime
from simtrust.subscriber import luhn_check_digit
from simtrust.web import create_site

NAME = "web"
DESCRIPTION = "dashboard search/list/SIM page p95 and a 100k bulk suspend at 1M SIMs"

GROUPS = 10
LABELS = ("meter", "pump", "tracker", "gateway", "camera")


def _iccid(i: int) -> str:
    body = f"89882{i:013d}"
    return body + str(luhn_check_digit(body))


def _imsi(i: int) -> str:
    return f"00101{i:010d}"


def _imei(i: int) -> str:
    body = f"35209900{i:06d}"
    return body + str(luhn_check_digit(body))


def _vendor_file(path: Path, start: int, count: int) -> Path:
    keys = os.urandom(32 * count).hex()
    with path.open("w", encoding="utf-8") as fh:
        fh.write("ICCID,IMSI,KI,OPC,STATE,APN,GROUP\n")
        lines = []
        for k in range(count):
            i = start + k
            lines.append(f"{_iccid(i)},{_imsi(i)},{keys[64 * k:64 * k + 32]},"
                         f"{keys[64 * k + 32:64 * k + 64]},active,iot{i % 2},g{i % GROUPS}\n")
            if len(lines) >= 10_000:
                fh.writelines(lines)
                lines = []
        fh.writelines(lines)
    return path


def _p95(samples: list[float]) -> float:
    if len(samples) < 20:
        return max(samples)
    return statistics.quantiles(samples, n=20)[-1]


def _timed(fn: Callable[[], object], runs: list[float]) -> None:
    start = time.perf_counter()
    fn()
    runs.append(time.perf_counter() - start)


def _sign_in(rt: Runtime, key: str) -> tuple[TestClient, str]:
    client = TestClient(create_site(rt))
    form = client.get("/ui/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token is not None
    page = client.post("/ui/login", data={"api_key": key, "login_csrf": token.group(1)})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    if page.status_code != 200 or csrf is None:
        raise RuntimeError(f"sign-in failed: {page.status_code}")
    return client, csrf.group(1)


def _populate(rt: Runtime, tmp: Path, total: int) -> dict[str, float]:
    rt.tenants.create_tenant("fleet", "Bench fleet")
    rt.tenants.create_tenant("other", "Other enterprise")
    inventory = rt.subscriber.inventory
    for tenant in ("fleet", "other"):
        for apn in ("iot0", "iot1"):
            inventory.create_apn(tenant, apn, actor="bench")
        for g in range(GROUPS):
            inventory.create_group(tenant, f"g{g}", actor="bench")
    other = total // 20
    started = time.perf_counter()
    rt.subscriber.importer.import_file(_vendor_file(tmp / "fleet.csv", 0, total - other),
                                       "fleet", actor="bench")
    rt.subscriber.importer.import_file(_vendor_file(tmp / "other.csv", total - other, other),
                                       "other", actor="bench")
    seconds = time.perf_counter() - started
    rng = random.Random(3)
    bound = sorted(rng.sample(range(total - other), min(20_000, total // 50)))
    now = rt.clock().isoformat()
    with rt.db.transaction():
        rt.db.executemany(
            "INSERT INTO sub_devices (imei, imeisv, tac, tenant_id, group_id, label, created_at)"
            " VALUES (?, NULL, '35209900', 'fleet', NULL, ?, ?)",
            [(_imei(k), f"{LABELS[i % len(LABELS)]} {i}", now) for k, i in enumerate(bound)])
        rt.db.executemany(
            "INSERT INTO sub_bindings (iccid, imei, mode, sim_lock, dev_lock, bound_at)"
            " VALUES (?, ?, 'exact', NULL, NULL, ?)",
            [(_iccid(i), _imei(k), now) for k, i in enumerate(bound)])
        rt.db.executemany(
            "INSERT INTO sub_leases (address, imsi, tenant_id, apn, kind, leased_at)"
            " VALUES (?, ?, 'fleet', 'iot0', 'pool', ?)",
            [(f"10.{k // 65536}.{k // 256 % 256}.{k % 256}", _imsi(i), now)
             for k, i in enumerate(bound[: len(bound) // 2])])
    alerted = rng.sample(range(total - other), min(1000, total // 100))
    rt.audit.append_many([AuditEntry("detect", "detect.alert.scan", f"sim:{_imsi(i)}", "alert",
                                     "scan", "fleet", {"evidence": {"observed": 1}})
                          for i in alerted])
    return {"import_s": seconds, "bound": float(len(bound))}


def run(quick: bool = False) -> BenchResult:
    total = 50_000 if quick else 1_000_000
    bulk = 10_000 if quick else 100_000  # a power of ten: one ICCID prefix selects it
    rounds = 3 if quick else 8
    result = BenchResult(NAME)
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-web-") as tmp:
        rt = Runtime.ephemeral(Path(tmp) / "home")
        try:
            facts = _populate(rt, Path(tmp), total)
            result.notes.update(sims=total, store="sqlite", import_s=round(facts["import_s"], 1),
                                pages="in-process through the ASGI app (TestClient)")
            operator = rt.tenants.create_key("operator-admin", "bench").secret
            tenant = rt.tenants.create_key("tenant-admin", "bench other", "other").secret
            client, csrf = _sign_in(rt, operator)
            scoped, _ = _sign_in(rt, tenant)
            rng = random.Random(11)
            fleet_n = total - total // 20

            lists = ["/ui/sims", "/ui/sims?state=active&sort=imsi&dir=desc", "/ui/sims?apn=iot1",
                     "/ui/sims?group=3", "/ui/sims?tenant=other", "/ui/sims?online=online",
                     "/ui/sims?alerts=1", "/ui/sims?online=offline&apn=iot0&sort=imsi",
                     "/ui/sims?state=suspended"]
            list_runs: list[float] = []
            for _ in range(rounds):
                for url in lists:
                    _timed(lambda u=url: client.get(u), list_runs)
                _timed(lambda: scoped.get("/ui/sims?sort=imsi"), list_runs)
                # A deep page: the keyset cursor of a SIM in the middle of the fleet.
                middle = _iccid(rng.randrange(fleet_n))
                _timed(lambda m=middle: client.get(f"/ui/sims?after={m}"), list_runs)

            search_runs: list[float] = []
            for _ in range(rounds * 4):
                i = rng.randrange(fleet_n)
                queries = [_iccid(i), _iccid(i)[:15], _imsi(i), _imsi(i)[:12],
                           _iccid(i)[-8:], _imsi(i)[-6:],  # trailing digits
                           _imei(rng.randrange(int(facts["bound"])))[:12],
                           f"{LABELS[i % len(LABELS)]} {i % 997}"]
                for q in queries:
                    _timed(lambda q=q: client.get("/ui/sims", params={"q": q}), search_runs)

            sim_runs: list[float] = []
            for _ in range(rounds * 12):
                iccid = _iccid(rng.randrange(fleet_n))
                _timed(lambda c=iccid: client.get(f"/ui/sims/{c}"), sim_runs)

            result.metrics["list_p95_s"] = round(_p95(list_runs), 4)
            result.metrics["search_p95_s"] = round(_p95(search_runs), 4)
            result.metrics["sim_page_p95_s"] = round(_p95(sim_runs), 4)
            result.notes["requests"] = {"list": len(list_runs), "search": len(search_runs),
                                        "sim_page": len(sim_runs)}

            # Bulk suspend through the dashboard's endpoint: the first `bulk` ICCIDs
            # share a prefix, so the selection is a filter (search) of exactly `bulk` SIMs.
            prefix = "89882" + "0" * (13 - len(str(bulk - 1)))
            form = {"csrf": csrf, "action": "suspend", "scope": "filter", "f_q": prefix}
            confirm = client.post("/ui/sims/bulk", data=form)
            if f"<strong>{bulk:,}</strong>" not in confirm.text:
                raise RuntimeError("the bulk selection is not the expected size")
            started = time.perf_counter()
            job = client.post("/ui/sims/bulk", data={**form, "confirm": "yes"})
            progress = str(job.url) + "/progress"
            while True:
                state = client.get(progress).json()
                if state["status"] != "running":
                    break
                time.sleep(0.05)
            result.metrics["bulk_suspend_100k_s" if not quick else "bulk_suspend_s"] = round(
                time.perf_counter() - started, 3)
            if state["status"] != "done" or state["changed"] != bulk:
                raise RuntimeError(f"bulk suspend ended {state['status']}: {state['error']}")
            result.notes["bulk_sims"] = bulk

            raw_page: list[float] = []
            raw_point: list[float] = []
            for _ in range(rounds * 12):
                after = _iccid(rng.randrange(fleet_n))
                _timed(lambda a=after: rt.db.query(
                    "SELECT iccid, imsi, tenant_id, state FROM sub_sims WHERE iccid > ?"
                    " ORDER BY iccid LIMIT 51", (a,)), raw_page)
                _timed(lambda a=after: rt.db.query_one(
                    "SELECT iccid, imsi, state FROM sub_sims WHERE iccid = ?", (a,)), raw_point)
            result.limits["raw_page_p95_s"] = round(_p95(raw_page), 5)
            result.limits["raw_point_p95_s"] = round(_p95(raw_point), 5)
            rows = [(_iccid(i),) for i in range(total - bulk, total)]
            started = time.perf_counter()
            with rt.db.transaction():
                rt.db.executemany("UPDATE sub_sims SET updated_at = updated_at WHERE iccid = ?",
                                  rows)
            result.limits["raw_update_100k_s" if not quick else "raw_update_s"] = round(
                time.perf_counter() - started, 3)
        finally:
            rt.close()
    result.ratio("list_to_raw_page", "list_p95_s", "raw_page_p95_s")
    result.ratio("search_to_raw_page", "search_p95_s", "raw_page_p95_s")
    result.ratio("sim_page_to_raw_point", "sim_page_p95_s", "raw_point_p95_s")
    if quick:
        result.ratio("bulk_to_raw_update", "bulk_suspend_s", "raw_update_s")
    else:
        result.ratio("bulk_to_raw_update", "bulk_suspend_100k_s", "raw_update_100k_s")
    result.notes["targets"] = {"page_p95_s": 0.3, "bulk_suspend_100k_s": 60}
    return result
