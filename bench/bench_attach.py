"""Attach decisions in-process and over HTTP, next to this machine's own limits.

Every decision is answered only once its audit record is on disk (group commit:
decisions made at the same time share one transaction and one fsync).
Figures: ``metrics.decisions_per_wall_s`` (in-process decisions on SQLite from
``THREADS`` threads, per wall second; ``notes.decisions_per_commit`` is how many
shared each commit), ``metrics.decisions_per_s`` (the same run per CPU second of
this process), ``metrics.sequential_decisions_per_s`` (one caller: one commit and
fsync per decision), ``decisions_per_s_record_audit`` (one audit record per
decision, per CPU second), ``metrics.http_decisions_per_s`` (POST
/v1/attach/decisions against ``simtrust serve`` on 127.0.0.1 started here, one
API worker process per core; load from ``wrk`` with ``WRK_CONNECTIONS``
keep-alive connections, or ``HTTP_CLIENTS`` httpx clients without wrk), ``metrics.http_p50_s`` /
``metrics.http_p99_s`` (one client, sequential requests).
``limits.point_select_per_s`` is the rate of the least a cache-less decision
would do: one dict lookup plus one SQLite point select of the SIM row;
``limits.fsync_per_s`` is 4 KiB appends with fsync in the store's folder (the
disk's own ceiling for one-at-a-time durable answers);
``limits.http_healthz_per_s`` is the same server answering ``/healthz`` to the
same clients (the HTTP stack's own ceiling on this machine, in the same run);
``limits.http_server_cpu_us_per_decision`` / ``..._per_healthz``: CPU time (user +
system) of the ``serve`` process and its workers per answer in those two passes
(raw-connection load only), a figure other work on the machine moves less.

The fleet: ``SIMS`` active SIMs imported from a vendor file, exact-pair binding,
an APN pool, each SIM attaching in its own device; the first pass binds every
pair and leases its address (``metrics.first_use_decisions_per_s``), the
measured passes are re-attaches, with one in ``SWAP_EVERY`` coming from another
device (a SIM swap: denied, alerted, audited at once);
``metrics.swap_decisions_per_s`` is the rate of swap decisions alone.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from simtrust.alerts import MemorySink
from simtrust.benchmark import BenchResult, fsync_rate, process_cpu_s
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    AttachEngine,
    AttachPolicy,
    BindingMode,
    Imei,
    Imsi,
    Plmn,
    build_services,
    luhn_check_digit,
)

NAME = "attach"
DESCRIPTION = "Attach decisions in-process (SQLite) and over HTTP vs a dict+point-select limit"

TENANT = "bench"
SWAP_EVERY = 1000
HTTP_CLIENTS = 4
WRK_CONNECTIONS = 32
THREADS = 8
HOME = Plmn("001", "01")


def _fleet_file(path: Path, count: int) -> Path:
    keys = os.urandom(32 * count).hex()
    with path.open("w", encoding="utf-8") as fh:
        fh.write("ICCID,IMSI,KI,OPC,STATE,APN\n")
        for i in range(count):
            body = f"89882{i:013d}"
            fh.write(f"{body}{luhn_check_digit(body)},00101{i:010d},{keys[64 * i:64 * i + 32]},"
                     f"{keys[64 * i + 32:64 * i + 64]},active,iot\n")
    return path


def _imsi(i: int) -> Imsi:
    return Imsi(f"00101{i:010d}", 2)


def _imei(i: int) -> Imei:
    return Imei.from_tac_snr("35209900", f"{i % 1_000_000:06d}")


def _cpu_rate(step: Callable[[], int], seconds: float) -> float:
    done = 0
    start = time.process_time()
    while True:
        done += step()
        now = time.process_time()
        if now - start >= seconds:
            return done / (now - start)


def _concurrent(work: Callable[[int], object], items: range) -> tuple[float, float]:
    """Run ``work`` over ``items`` from ``THREADS`` threads: (per wall s, per CPU s)."""
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for k in items[offset::THREADS]:
                work(k)
        except BaseException as exc:  # noqa: BLE001 - reported after join
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    wall, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if errors:
        raise RuntimeError(f"decision failed: {errors[0]!r}")
    return len(items) / wall, len(items) / max(cpu, 1e-9)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wrk_rate(base: str, headers: dict[str, str], path: str, bodies: list[str] | None,
              seconds: float, folder: Path) -> float:
    """Requests per second wrk reaches (2 threads, ``WRK_CONNECTIONS`` connections)."""
    script = folder / "wrk.lua"
    auth = headers["Authorization"]
    if bodies:
        table = ",\n".join("'" + b + "'" for b in bodies)
        script.write_text(
            f"local bodies = {{\n{table}\n}}\nlocal n = 0\n"
            "request = function()\n  n = n + 1\n"
            f"  return wrk.format('POST', '{path}', {{['Authorization'] = '{auth}', "
            "['Content-Type'] = 'application/json'}, bodies[(n % #bodies) + 1])\nend\n"
            "response = function(status)\n  if status ~= 200 then wrk.thread:stop() end\nend\n",
            encoding="utf-8")
    else:
        script.write_text(
            f"request = function()\n  return wrk.format('GET', '{path}', "
            f"{{['Authorization'] = '{auth}'}})\nend\n", encoding="utf-8")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s", "-s", str(script),
         base], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error answers: {out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"no rate in wrk output: {out}")


_SOCKET_LOAD = r"""
import asyncio, json, sys, time
cfg = json.loads(sys.stdin.read())
requests = [r.encode() for r in cfg["requests"]]
done = [0]
bad = []

async def conn(k):
    reader, writer = await asyncio.open_connection("127.0.0.1", cfg["port"])
    n = k
    while time.monotonic() < stop:
        writer.write(requests[n % len(requests)])
        n += cfg["connections"]
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        if status != 200:
            bad.append(status)
            break
        done[0] += 1
    writer.close()

async def main():
    global stop
    started = time.monotonic()
    stop = started + cfg["seconds"]
    await asyncio.gather(*(conn(k) for k in range(cfg["connections"])))
    print(json.dumps({"rate": done[0] / (time.monotonic() - started), "done": done[0],
                      "bad": bad[:3]}))

asyncio.run(main())
"""


def _socket_rate(port: int, headers: dict[str, str], path: str, bodies: list[str] | None,
                 seconds: float, answered: list[int] | None = None) -> float:
    """Requests per second of ``WRK_CONNECTIONS`` keep-alive HTTP/1.1 connections driven
    by one asyncio process of pre-encoded requests (the load generator when wrk is
    missing: a second process, a few µs of its CPU per request)."""
    auth = headers["Authorization"]
    if bodies:
        reqs = [f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(b.encode())}\r\n"
                f"\r\n{b}" for b in bodies]
    else:
        reqs = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\r\n"]
    cfg = {"port": port, "requests": reqs, "connections": WRK_CONNECTIONS, "seconds": seconds}
    out = subprocess.run([sys.executable, "-c", _SOCKET_LOAD], input=json.dumps(cfg),
                         capture_output=True, text=True, timeout=seconds + 60, check=True)
    result = json.loads(out.stdout)
    if result["bad"]:
        raise RuntimeError(f"error answers: {result['bad']}")
    if answered is not None:
        answered.append(int(result["done"]))
    return float(result["rate"])


def _http(home: Path, key: str, sims: int, requests: int) -> dict[str, float]:
    port = _free_port()
    log = (home / "server.log").open("w+b")
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    # The production API tier: `simtrust serve` with one worker process per core.
    server = subprocess.Popen(
        [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        # Only how long a broken start is waited for: on a loaded two-core machine the
        # workers' imports alone have taken over 30 s (the tests wait up to 300 s too).
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                    raise RuntimeError(f"the API server did not start: {tail}") from None
                time.sleep(0.1)

        def body(i: int) -> dict[str, str]:
            n = i % sims
            return {"imsi": _imsi(n).value, "imei": _imei(n).value, "serving_plmn": "00101"}

        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for i in range(min(sims, 200)):  # warm the server's cache and connection
                client.post("/v1/attach/decisions", json=body(i)).raise_for_status()
            latencies = []
            for i in range(requests):
                started = time.perf_counter()
                response = client.post("/v1/attach/decisions", json=body(i))
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
        latencies.sort()
        per_client = max(1, requests // HTTP_CLIENTS)

        def decide(client: httpx.Client, i: int) -> None:
            client.post("/v1/attach/decisions", json=body(i)).raise_for_status()

        def healthz(client: httpx.Client, _i: int) -> None:
            client.get("/healthz").raise_for_status()

        if shutil.which("wrk"):
            bodies = [json.dumps(body(i), separators=(",", ":")) for i in range(min(sims, 4096))]
            seconds = 2.0 if requests < 1000 else 8.0
            server_cpu: dict[str, float] = {}
            decisions = _wrk_rate(base, headers, "/v1/attach/decisions", bodies, seconds, home)
            health = _wrk_rate(base, headers, "/healthz", None, seconds, home)
        elif os.environ.get("SIMTRUST_BENCH_HTTPX"):
            server_cpu = {}
            decisions = _parallel(base, headers, decide, per_client)
            health = _parallel(base, headers, healthz, per_client)
        else:
            bodies = [json.dumps(body(i), separators=(",", ":")) for i in range(min(sims, 4096))]
            seconds = 2.0 if requests < 1000 else 8.0
            answered: list[int] = []
            cpu0 = process_cpu_s(server.pid, children=True)
            decisions = _socket_rate(port, headers, "/v1/attach/decisions", bodies, seconds,
                                     answered)
            cpu1 = process_cpu_s(server.pid, children=True)
            health = _socket_rate(port, headers, "/healthz", None, seconds, answered)
            cpu2 = process_cpu_s(server.pid, children=True)
            server_cpu = {"http_server_cpu_us_per_decision": (cpu1 - cpu0) / answered[0],
                          "http_server_cpu_us_per_healthz": (cpu2 - cpu1) / answered[1]}
        return {
            **{k: round(v * 1e6, 1) for k, v in server_cpu.items()},
            "http_decisions_per_s": round(decisions, 1),
            "http_healthz_per_s": round(health, 1),
            "http_p50_s": round(statistics.median(latencies), 6),
            "http_p99_s": round(latencies[min(len(latencies) - 1,
                                              int(len(latencies) * 0.99))], 6),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _parallel(
    base: str, headers: dict[str, str], call: Callable[[httpx.Client, int], None],
    per_client: int,
) -> float:
    """Requests per second of ``HTTP_CLIENTS`` keep-alive clients doing ``call`` in turn."""
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
                for i in range(per_client):
                    call(client, offset + i)
        except BaseException as exc:  # noqa: BLE001 - reported after join
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k * per_client,))
               for k in range(HTTP_CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"HTTP client failed: {errors[0]!r}")
    return per_client * HTTP_CLIENTS / elapsed


def run(quick: bool) -> BenchResult:
    sims = 400 if quick else 20_000
    measured = 2_000 if quick else 40_000
    seconds = 0.3 if quick else 3.0
    requests = 100 if quick else 3_000
    result = BenchResult(NAME)
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-attach-") as tmp:
        home = Path(tmp) / "home"
        rt = Runtime.initialise(load_settings(env={}, home=home))
        try:
            rt.tenants.create_tenant(TENANT, "Bench fleet")
            operator = rt.tenants.create_key("operator-admin", "bench")
            sink = MemorySink()
            services = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[sink])
            inventory = services.inventory
            inventory.create_apn(TENANT, "iot", actor="bench", pool="10.64.0.0/16")
            inventory.set_policy(AttachPolicy(TENANT, binding_mode=BindingMode.EXACT_PAIR),
                                 actor="bench")
            summary = services.importer.import_file(_fleet_file(Path(tmp) / "fleet.csv", sims),
                                                    TENANT, actor="bench")
            result.notes["import_rows_per_s"] = round(summary.rows_per_s, 1)
            engine = services.attach
            imsis = [_imsi(i) for i in range(sims)]
            imeis = [_imei(i) for i in range(sims)]

            def first(i: int) -> None:
                decision = engine.decide(imsis[i], imeis[i], HOME)
                if not decision.allowed:
                    raise RuntimeError(f"first attach denied: {decision.reason}")

            first_wall, _ = _concurrent(first, range(sims))
            result.metrics["first_use_decisions_per_s"] = round(first_wall, 1)

            rng = random.Random(7)
            order = [rng.randrange(sims) for _ in range(4096)]
            stranger = _imei(sims + 1)

            def reattach(k: int) -> None:
                n = order[k & 4095]
                engine.decide(imsis[n], stranger if k % SWAP_EVERY == 0 else imeis[n], HOME)

            # One caller at a time: every decision waits for its own commit and fsync.
            lone = measured // 20
            started = time.perf_counter()
            for k in range(lone):
                reattach(k)
            result.metrics["sequential_decisions_per_s"] = round(
                lone / (time.perf_counter() - started), 1)
            before = engine.group_commit.batches, engine.group_commit.items
            wall_rate, cpu_rate = _concurrent(reattach, range(measured))
            batches = engine.group_commit.batches - before[0]
            items = engine.group_commit.items - before[1]
            result.metrics["decisions_per_s"] = round(cpu_rate, 1)
            result.metrics["decisions_per_wall_s"] = round(wall_rate, 1)
            result.notes["decisions_per_commit"] = round(items / max(batches, 1), 2)

            # SIM swaps alone: each is audited at once (swap event + decision) and alerted.
            swaps = 100 if quick else 1000
            swap_wall, _ = _concurrent(
                lambda k: engine.decide(imsis[order[k & 4095]], stranger, HOME), range(swaps))
            result.metrics["swap_decisions_per_s"] = round(swap_wall, 1)
            # The same decisions with one audit record per decision (``record`` mode).
            engine = AttachEngine(inventory, services.blocklist, services.addresses,
                                  services.alerts, audit_mode="record")
            _, record_cpu = _concurrent(reattach, range(measured))
            result.metrics["decisions_per_s_record_audit"] = round(record_cpu, 1)
            audited = rt.audit.count()
            result.limits["fsync_per_s"] = round(fsync_rate(Path(tmp), seconds), 1)
            result.ratio("decisions_per_fsync", "decisions_per_wall_s", "fsync_per_s")
            # The limit: a dict lookup and a point select of the SIM row per decision.
            table = {imsi.value: i for i, imsi in enumerate(imsis)}
            db = rt.db

            def raw() -> int:
                for k in range(256):
                    n = order[k & 4095]
                    table.get(imsis[n].value)
                    db.query_one("SELECT state, tenant_id FROM sub_sims WHERE imsi = ?",
                                 (imsis[n].value,))
                return 256

            result.limits["point_select_per_s"] = round(_cpu_rate(raw, seconds), 1)
            result.ratio("decisions_to_point_select", "decisions_per_s", "point_select_per_s")
            result.notes.update({
                "sims": sims, "store": "sqlite", "binding": "exact-pair",
                "swap_every": SWAP_EVERY, "audit_records": audited,
                "alerts": len(sink.alerts), "audit_mode": "batch",
                "threads": THREADS,
            })
            services.close()
        finally:
            rt.close()
        http = _http(home, operator.secret, sims, requests)
        result.limits["http_healthz_per_s"] = http.pop("http_healthz_per_s")
        for key in ("http_server_cpu_us_per_decision", "http_server_cpu_us_per_healthz"):
            if key in http:
                result.limits[key] = http.pop(key)
        result.metrics.update(http)
        result.ratio("http_to_healthz", "http_decisions_per_s", "http_healthz_per_s")
        result.notes["http_clients"] = HTTP_CLIENTS
        result.notes["http_requests"] = requests
    return result
