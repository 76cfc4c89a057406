"""Flow records through NATS JetStream: publish (map → partition → encode) and consume
(decode → policy → detection → store → ack), records per second on this machine.

1,000 devices' flows are published by :class:`FlowPublisher` to a fresh stream of
4 partitions in batches of 512, then one :class:`FlowConsumer` drains all
partitions into a :class:`BatchApplier` over an SQLite runtime (policy with
destination, time, volume and rate rules; the streaming detector). A third phase
runs producer and consumer at the same time (end to end). The limit, measured
in the same run against the same server: raw JetStream publishes of opaque
messages of the same size and count, with the same number in flight, and a raw
pull consumer that only fetches and acknowledges them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import nats

from simtrust.alerts import MemorySink
from simtrust.benchmark import BenchResult
from simtrust.detect import DetectionService
from simtrust.domain import DeviceContext, FlowRecord
from simtrust.flows import (
    BatchApplier,
    FlowConsumer,
    FlowPublisher,
    FlowStreamSettings,
    encode_batch,
    setup_flow_stream,
)
from simtrust.policy import AddressMap, build_policy_service, policy_from_dict
from simtrust.runtime import Runtime

NAME = "flows-nats"
DESCRIPTION = "flow batches through JetStream: published and consumed records per second"

URL = os.environ.get("SIMTRUST_NATS_URL", "nats://127.0.0.1:4222")
DEVICES = 1000
PARTITIONS = 4
BATCH = 512
IN_FLIGHT = 64
#: Short, so a batch a consumer lost mid-fetch is redelivered within the run.
ACK_WAIT = 5.0
TENANT = "acme"


def _imsi(i: int) -> str:
    return f"00101{i:010d}"


def _addr(i: int) -> str:
    return f"10.64.{i // 250}.{i % 250 + 1}"


def _flows(n: int, rng: random.Random) -> list[FlowRecord]:
    services = [f"192.0.2.{i}" for i in range(1, 20)]
    t0 = 1_700_000_000.0
    out = []
    for k in range(n):
        t = t0 + k * 0.007
        dev = rng.randrange(DEVICES)
        out.append(FlowRecord(t, t + 0.9, _addr(dev), rng.choice(services),
                              rng.randint(1024, 65535), 443, 6, rng.randint(1, 12),
                              rng.randint(60, 3000), 0x1B, "10.0.0.1:4739"))
    return out


def _addresses() -> AddressMap:
    m = AddressMap()
    for i in range(DEVICES):
        m.attach(_imsi(i), "iot", _addr(i))
    return m


def _runtime(home: Path) -> Runtime:
    rt = Runtime.ephemeral(home)
    service = build_policy_service(rt.db, rt.audit, rt.clock)
    rt.policy = service
    for i in range(DEVICES):
        service.register(DeviceContext(_imsi(i), TENANT, apn="iot", group="meters",
                                       tz="Europe/Berlin"))
    service.store.put(policy_from_dict({"tenant_id": TENANT, "scope": "group:meters", "rules": [
        {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/27"], "ports": [443],
                                           "protocols": ["tcp"]}], "actions": ["log"]},
        {"kind": "time", "windows": [{"start": "00:00", "end": "00:00"}], "actions": ["log"]},
        {"kind": "volume", "period": "day", "max_bytes": 10**12, "actions": ["log"]},
        {"kind": "rate", "max_flows": 10**6, "per_seconds": 60, "actions": ["log"]},
    ]}), actor="bench")
    return rt


def _detection() -> DetectionService:
    return DetectionService([MemorySink()])


def _settings(tag: str) -> FlowStreamSettings:
    return FlowStreamSettings(name=f"BENCH_FLOWS_{tag}", subject_prefix=f"bench{tag}.flows",
                              max_age_s=600, max_bytes=512 << 20, file_storage=True)


async def _drop(*names: str) -> None:
    nc = await nats.connect(URL)
    try:
        js = nc.jetstream()
        for name in names:
            try:
                await js.delete_stream(name)
            except nats.js.errors.NotFoundError:
                continue
    finally:
        await nc.close()


async def _raw(settings: FlowStreamSettings, payloads: list[bytes]) -> tuple[float, float]:
    """Seconds to publish ``payloads`` (IN_FLIGHT at a time) and to fetch+ack them all."""
    nc = await nats.connect(URL)
    try:
        js = nc.jetstream()
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def one(i: int, data: bytes) -> None:
            async with slots:
                await js.publish(settings.subject(i % PARTITIONS), data)

        t = time.perf_counter()
        await asyncio.gather(*(one(i, p) for i, p in enumerate(payloads)))
        publish_s = time.perf_counter() - t
        sub = await js.pull_subscribe(f"{settings.subject_prefix}.*", durable="raw",
                                      stream=settings.name)
        got = 0
        t = time.perf_counter()
        while got < len(payloads):
            for msg in await sub.fetch(32, timeout=5):
                await msg.ack_sync()
                got += 1
        return publish_s, time.perf_counter() - t
    finally:
        await nc.close()


def _publish(settings: FlowStreamSettings, flows: list[FlowRecord]) -> tuple[float, int]:
    with FlowPublisher(URL, partitions=PARTITIONS, settings=settings, resolver=_addresses(),
                       batch_records=BATCH, max_pending=IN_FLIGHT) as pub:
        t = time.perf_counter()
        for i in range(0, len(flows), 1000):
            pub.publish(flows[i:i + 1000])
        pub.flush()
        seconds = time.perf_counter() - t
    if pub.errors:
        raise RuntimeError(f"{pub.errors} batches not stored")
    return seconds, pub.batches


def _consumer(rt: Runtime, settings: FlowStreamSettings) -> FlowConsumer:
    applier = BatchApplier(rt.db, rt.policy, clock=rt.clock, stream=settings.name,
                           partitions=range(PARTITIONS), detection=_detection())
    return FlowConsumer(applier, url=URL, of=PARTITIONS, settings=settings, fetch_batch=16,
                        fetch_timeout=0.2, ack_wait=ACK_WAIT)


def _finish(consumer: FlowConsumer, n: int) -> int:
    """Consume what the timed run left (a batch the client dropped mid-fetch comes back
    after the ack wait); raise unless all ``n`` records were applied. Returns how many
    records came only in that extra pass (they are not in the timed rate)."""
    timed = consumer.stats.records
    deadline = time.perf_counter() + 6 * ACK_WAIT
    while consumer.stats.records < n and time.perf_counter() < deadline:
        consumer.run_blocking(idle_exit=ACK_WAIT + 1.0)
    if consumer.stats.records != n:
        raise RuntimeError(f"consumed {consumer.stats.records} of {n} records")
    return consumer.stats.records - timed


def _child(settings: FlowStreamSettings, parts: list[int], home: str, out: Any) -> None:
    rt = _runtime(Path(home))
    applier = BatchApplier(rt.db, rt.policy, clock=rt.clock, stream=settings.name,
                           partitions=parts, detection=_detection())
    consumer = FlowConsumer(applier, url=URL, of=PARTITIONS, settings=settings,
                            fetch_batch=16, fetch_timeout=0.2)
    t = time.perf_counter()
    stats = consumer.run_blocking(idle_exit=1.0)
    out.put((stats.records, time.perf_counter() - t - 1.0))
    rt.close()


def _two_processes(settings: FlowStreamSettings, tmp: str) -> tuple[int, float]:
    """Records and seconds for two consumer processes, two partitions each, own stores."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(settings, parts, f"{tmp}/p{i}", out))
             for i, parts in enumerate(([0, 1], [2, 3]))]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(30)
    return sum(r for r, _ in results), max(s for _, s in results)


def run(quick: bool) -> BenchResult:
    rng = random.Random(7)
    n = 15_000 if quick else 300_000
    flows = _flows(n, rng)
    tag = uuid.uuid4().hex[:8]
    raw_settings = _settings(f"RAW{tag}")
    ours, e2e, duo = _settings(tag), _settings(f"E2E{tag}"), _settings(f"DUO{tag}")
    result = BenchResult(NAME)
    pub = FlowPublisher(URL, partitions=PARTITIONS, resolver=_addresses())
    sample = [pub.partition_of(f)[1] for f in flows[:BATCH]]
    size = len(encode_batch(sample, partition=0, partitions=PARTITIONS))
    messages = -(-n // BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for s in (raw_settings, ours, e2e) if quick else (raw_settings, ours, e2e, duo):
                setup_flow_stream(URL, s)
            raw_pub_s, raw_con_s = asyncio.run(_raw(raw_settings, [os.urandom(size)] * messages))
            pub_s, batches = _publish(ours, flows)

            rt = _runtime(Path(tmp) / "a")
            consumer = _consumer(rt, ours)
            t, c = time.perf_counter(), time.process_time()
            stats = consumer.run_blocking(idle_exit=1.0)
            con_s = time.perf_counter() - t - 1.0  # minus the idle wait that ends the run
            con_cpu = time.process_time() - c
            timed_records = stats.records
            late = _finish(consumer, n)
            rt.close()

            rt2 = _runtime(Path(tmp) / "b")
            consumer2 = _consumer(rt2, e2e)
            done = threading.Event()
            t = time.perf_counter()

            def drain() -> None:
                consumer2.run_blocking(idle_exit=1.0)
                done.set()

            worker = threading.Thread(target=drain)
            worker.start()
            _publish(e2e, flows)
            while consumer2.stats.records < n and not done.is_set():
                time.sleep(0.005)
            e2e_s = time.perf_counter() - t
            worker.join()
            rt2.close()
            if not quick:  # the point of partitions: a second process on the second core
                _publish(duo, flows)
                duo_records, duo_s = _two_processes(duo, tmp)
                if duo_records != n:
                    raise RuntimeError(f"two consumers applied {duo_records} of {n} records")
                result.metrics["consumed_records_per_s_two_processes"] = round(n / duo_s)
                result.notes["two_processes_vs_one"] = round(con_s / duo_s, 2)
        finally:
            asyncio.run(_drop(raw_settings.name, ours.name, e2e.name, duo.name))

    result.metrics["published_records_per_s"] = round(n / pub_s)
    result.metrics["consumed_records_per_s"] = round(timed_records / con_s)
    result.metrics["consumed_records_per_cpu_s"] = round(timed_records / con_cpu)
    result.metrics["end_to_end_records_per_s"] = round(n / e2e_s)
    result.limits["raw_publish_records_per_s"] = round(messages * BATCH / raw_pub_s)
    result.limits["raw_fetch_ack_records_per_s"] = round(messages * BATCH / raw_con_s)
    result.ratio("publish_vs_raw_publish", "published_records_per_s",
                 "raw_publish_records_per_s")
    result.ratio("consume_vs_raw_fetch_ack", "consumed_records_per_s",
                 "raw_fetch_ack_records_per_s")
    result.ratio("end_to_end_vs_raw_publish", "end_to_end_records_per_s",
                 "raw_publish_records_per_s")
    result.notes.update({
        "records": n, "devices": DEVICES, "partitions": PARTITIONS,
        "records_per_batch": BATCH, "batches": batches, "batch_bytes": size,
        "bytes_per_record": round(size / BATCH, 1), "in_flight": IN_FLIGHT,
        "consumer": "one process, all partitions, SQLite store, policy + detection",
        "end_to_end": "publisher and consumer in this one process (they share the GIL)",
        "two_processes": "full run only: two forked consumers, partitions 0-1 and 2-3, "
                         "each with its own SQLite store",
        "alerts": stats.alerts, "policy_violations": stats.violations,
        "records_after_redelivery": late,
        "timing": "wall-clock on a shared machine; consumed_records_per_cpu_s is per CPU-second",
    })
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=False).to_json(), indent=2))
