"""Inline policy decisions: throughput and p99 latency in-process and over HTTP.

In-process: :meth:`PolicyEngine.decide` for flows of 1,000 devices against a
policy with a destination allow-list, time window, volume and rate caps.
HTTP: ``POST /v1/policy/decide`` on a real uvicorn server on 127.0.0.1 (one
keep-alive client). Limits measured in the same run: the rate of an empty
Python call (in-process) and of ``GET /healthz`` on the same server (HTTP).
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from simtrust.api import create_app
from simtrust.benchmark import BenchResult, rate
from simtrust.domain import DeviceContext
from simtrust.policy import AddressMap, PolicyEngine, PolicySet, StaticDirectory, policy_from_dict
from simtrust.runtime import Runtime

NAME = "policy"
DESCRIPTION = "Inline flow decisions: in-process and HTTP throughput and p99 latency"

TENANT = "acme"
DEVICES = 1000
RULES: list[dict[str, Any]] = [
    {"kind": "destination", "allow": [
        {"cidrs": ["192.0.2.0/27", "198.51.100.0/24", "2001:db8::/48"], "ports": [443, 8883],
         "protocols": ["tcp"]},
        {"names": ["ntp.example.org"], "ports": [123], "protocols": ["udp"]}],
     "actions": ["block", "log"]},
    {"kind": "time", "windows": [{"start": "00:00", "end": "00:00"}]},
    {"kind": "volume", "period": "month", "max_bytes": 10**12},
    {"kind": "rate", "max_flows": 10**9, "per_seconds": 60},
]


def _address(i: int) -> str:
    return f"10.64.{i // 250}.{i % 250 + 1}"


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _requests(n: int, rng: random.Random) -> list[tuple[str, str, int, int]]:
    out = []
    for _ in range(n):
        src = _address(rng.randrange(DEVICES))
        if rng.random() < 0.95:
            out.append((src, f"192.0.2.{rng.randint(1, 30)}", 443, 6))
        else:
            out.append((src, f"203.0.113.{rng.randint(1, 250)}", 23, 6))
    return out


def _in_process(result: BenchResult, n: int, rng: random.Random) -> None:
    addresses = AddressMap()
    directory = StaticDirectory()
    for i in range(DEVICES):
        imsi = f"00101{i:010d}"
        addresses.attach(imsi, "iot", _address(i))
        directory.add(DeviceContext(imsi, TENANT, "iot", "meters", "Europe/Berlin"))
    policy = policy_from_dict({"tenant_id": TENANT, "scope": "group:meters", "rules": RULES})
    engine = PolicyEngine(PolicySet([policy]), addresses, directory, None,
                          clock=lambda: 1_700_000_000.0)
    reqs = _requests(n, rng)
    decide = engine.decide
    perf = time.perf_counter
    samples = []
    allowed = 0
    start = perf()
    for src, dst, port, proto in reqs:
        t = perf()
        d = decide(src_addr=src, dst_addr=dst, dst_port=port, protocol=proto)
        samples.append(perf() - t)
        allowed += d.allowed
    elapsed = perf() - start
    result.metrics["decisions_per_s"] = round(n / elapsed)
    result.metrics["p50_s"] = _percentile(samples, 0.50)
    result.metrics["p99_s"] = _percentile(samples, 0.99)
    result.limits["empty_call_per_s"] = round(rate(lambda: None))
    result.notes["in_process_allowed_fraction"] = round(allowed / n, 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _http(result: BenchResult, n: int, rng: random.Random) -> None:

    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime.ephemeral(Path(tmp) / "home")
        try:
            key = rt.tenants.create_key("operator-admin", "bench gateway")
            service = rt.policy
            service.store.put(policy_from_dict(
                {"tenant_id": TENANT, "scope": "group:meters", "rules": RULES}), actor="bench")
            for i in range(DEVICES):
                service.register(DeviceContext(f"00101{i:010d}", TENANT, "iot", "meters"),
                                 _address(i))
            port = _free_port()
            config = uvicorn.Config(create_app(rt), host="127.0.0.1", port=port,
                                    log_level="warning", access_log=False)
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 20
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {key.secret}"}
            try:
                with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
                    for _ in range(50):  # warm up
                        client.get("/healthz")
                    m = max(50, n // 4)
                    t = time.perf_counter()
                    for _ in range(m):
                        client.get("/healthz")
                    result.limits["http_healthz_per_s"] = round(m / (time.perf_counter() - t))
                    samples = []
                    denied = 0
                    start = time.perf_counter()
                    for src, dst, dport, proto in _requests(n, rng):
                        t = time.perf_counter()
                        r = client.post("/v1/policy/decide", json={
                            "src_addr": src, "dst_addr": dst, "dst_port": dport,
                            "protocol": proto})
                        samples.append(time.perf_counter() - t)
                        denied += not r.json()["allowed"]
                    elapsed = time.perf_counter() - start
                    batch = [{"src_addr": src, "dst_addr": dst, "dst_port": dport,
                              "protocol": proto} for src, dst, dport, proto in _requests(500, rng)]
                    rounds = max(2, n // 500)
                    t = time.perf_counter()
                    for _ in range(rounds):
                        r = client.post("/v1/policy/decide/batch", json={"flows": batch})
                        assert len(r.json()["decisions"]) == len(batch)
                    result.metrics["http_batch_decisions_per_s"] = round(
                        rounds * len(batch) / (time.perf_counter() - t))
            finally:
                server.should_exit = True
                thread.join(timeout=10)
            result.metrics["http_decisions_per_s"] = round(n / elapsed)
            result.metrics["http_p50_s"] = _percentile(samples, 0.50)
            result.metrics["http_p99_s"] = _percentile(samples, 0.99)
            result.notes["http_denied_fraction"] = round(denied / n, 3)
            service.close()
        finally:
            rt.close()


def run(quick: bool) -> BenchResult:
    rng = random.Random(6)
    result = BenchResult(NAME)
    _in_process(result, 20_000 if quick else 300_000, rng)
    _http(result, 300 if quick else 5_000, rng)
    result.ratio("decisions_vs_empty_call", "decisions_per_s", "empty_call_per_s")
    result.ratio("http_vs_healthz", "http_decisions_per_s", "http_healthz_per_s")
    result.notes.update({
        "devices": DEVICES,
        "http_client": "one keep-alive httpx client, sequential requests",
        "http_batch": "POST /v1/policy/decide/batch with 500 flows per request",
        "store": "sqlite (ephemeral runtime)",
    })
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=False).to_json(), indent=2))
