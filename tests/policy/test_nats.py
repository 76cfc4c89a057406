"""Partitioned flow ingestion over the real NATS JetStream server (``simtrust.policy._nats``).

Every test uses its own stream and subject prefix and deletes the stream afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.aio.msg
import nats.errors
import pytest

from simtrust.alerts import MemorySink
from simtrust.config import load_settings
from simtrust.domain import DeviceContext, FlowRecord
from simtrust.flows import (
    BatchApplier,
    FlowConsumer,
    FlowPublisher,
    FlowStreamSettings,
    MappedFlow,
    NatsUnavailable,
    encode_batch,
    ensure_flow_stream,
    flow_partition,
    parse_partitions,
    setup_flow_stream,
)
from simtrust.policy import (
    AddressMap,
    RecordingRemoveAction,
    build_policy_service,
    policy_from_dict,
)
from simtrust.runtime import Runtime

URL = "nats://127.0.0.1:4222"
TENANT = "acme"
DEVICES = 12


class Recorder:
    """A detection stand-in that records what it observed (and the address bindings)."""

    def __init__(self) -> None:
        self.flows: list[FlowRecord] = []
        self.refs: dict[str, Any] = {}

    def observe(self, flow: FlowRecord) -> list[Any]:
        self.flows.append(flow)
        return []

    def assign(self, address: str, ref: Any) -> None:
        self.refs[address] = ref


def _imsi(i: int) -> str:
    return f"00101{i:010d}"


def _addr(i: int) -> str:
    return f"10.64.0.{i + 1}"


def _flows(n: int, t0: float = 1_700_000_000.0) -> list[FlowRecord]:
    out = []
    for k in range(n):
        dev = k % DEVICES
        if k % 5 == 4:  # downlink: a service talks to the device
            out.append(FlowRecord(t0 + k, t0 + k + 1, "192.0.2.7", _addr(dev), 443, 40000 + k,
                                  6, 2, 100 + k, 0, "gw"))
        else:
            out.append(FlowRecord(t0 + k, t0 + k + 1, _addr(dev), "192.0.2.7", 40000 + k, 443,
                                  6, 3, 1000 + k, 0x1B, "gw"))
    out.append(FlowRecord(t0, t0 + 1, "198.51.100.9", "192.0.2.7", 1, 443, 6, 1, 60, 0, "gw"))
    return out


def _addresses() -> AddressMap:
    m = AddressMap()
    for i in range(DEVICES):
        m.attach(_imsi(i), "iot", _addr(i))
    return m


def _runtime(home: Path) -> Runtime:
    return _provision(Runtime.ephemeral(home))


def _provision(rt: Runtime) -> Runtime:
    service = build_policy_service(rt.db, rt.audit, rt.clock, sinks=[MemorySink()],
                                   removers=[RecordingRemoveAction()])
    rt.policy = service
    for i in range(DEVICES):
        service.register(DeviceContext(_imsi(i), TENANT, apn="iot", group="meters"))
    service.store.put(policy_from_dict({"tenant_id": TENANT, "scope": "tenant", "rules": [
        {"kind": "volume", "period": "month", "max_bytes": 10**12, "actions": ["log"]}]}),
        actor="test")
    return rt


@pytest.fixture
def stream(require_service: Callable[[str], None]) -> Iterator[FlowStreamSettings]:
    require_service("nats")
    tag = uuid.uuid4().hex[:10]
    settings = FlowStreamSettings(name=f"T_FLOWS_{tag}", subject_prefix=f"t{tag}.flows",
                                  max_age_s=600, max_bytes=64 << 20, file_storage=False)
    yield settings

    async def drop() -> None:
        nc = await nats.connect(URL)
        try:
            await nc.jetstream().delete_stream(settings.name)
        finally:
            await nc.close()

    asyncio.run(drop())


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[Callable[[str], Runtime]]:
    made: list[Runtime] = []

    def make(name: str) -> Runtime:
        rt = _runtime(tmp_path / name)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.policy.close()
        rt.close()


def _publish(settings: FlowStreamSettings, flows: list[FlowRecord], partitions: int,
             batch: int = 7) -> FlowPublisher:
    setup_flow_stream(URL, settings)
    with FlowPublisher(URL, partitions=partitions, settings=settings, resolver=_addresses(),
                       batch_records=batch, linger=0.02) as pub:
        pub.publish(flows)
    assert 0 == pub.errors
    return pub


def _consume(rt: Runtime, settings: FlowStreamSettings, parts: list[int], of: int,
             recorder: Recorder | None = None, **kwargs: Any) -> tuple[FlowConsumer, Recorder]:
    recorder = recorder or Recorder()
    idle = kwargs.pop("idle", 1.0)
    applier = BatchApplier(rt.db, rt.policy, clock=rt.clock, stream=settings.name, partitions=parts, detection=recorder)
    consumer = FlowConsumer(applier, url=URL, of=of, settings=settings,
                            **{"fetch_timeout": 0.2, **kwargs})
    consumer.run_blocking(idle_exit=idle)
    return consumer, recorder


def _key(f: FlowRecord) -> tuple[Any, ...]:
    return (f.start, f.src_addr, f.dst_addr, f.src_port, f.dst_port, f.octets)


def test_flow_partition_is_stable_and_spreads() -> None:
    """Pinned values: a change of hash would move every device to another partition."""
    assert [11, 9, 12, 10, 3, 5] == [flow_partition(f"imsi:{_imsi(i)}", 16) for i in range(6)]
    assert 8 == len({flow_partition(f"imsi:{_imsi(i)}", 8) for i in range(200)})
    assert [0, 1, 4, 5, 6] == parse_partitions("0,1,4-6", 8)
    pub = FlowPublisher(URL, partitions=4, resolver=_addresses())
    seen: dict[str, set[int]] = {}
    for f in _flows(100):
        part, mapped = pub.partition_of(f)
        seen.setdefault(mapped.record.imsi or f"addr:{f.src_addr}", set()).add(part)
    assert DEVICES + 1 == len(seen)
    assert all(1 == len(parts) for parts in seen.values())


def test_stream_setup_is_idempotent_and_applies_limits(stream: FlowStreamSettings) -> None:
    assert "created" == setup_flow_stream(URL, stream)
    assert "unchanged" == setup_flow_stream(URL, stream)
    tighter = FlowStreamSettings(name=stream.name, subject_prefix=stream.subject_prefix,
                                 max_age_s=300, max_bytes=32 << 20, file_storage=False)
    assert "updated" == setup_flow_stream(URL, tighter)

    async def info() -> Any:
        nc = await nats.connect(URL)
        try:
            js = nc.jetstream()
            assert "unchanged" == await ensure_flow_stream(js, tighter)
            return (await js.stream_info(stream.name)).config
        finally:
            await nc.close()

    config = asyncio.run(info())
    assert (300, 32 << 20, [f"{stream.subject_prefix}.*"]) == \
        (config.max_age, config.max_bytes, config.subjects)


def test_round_trip_through_jetstream_maps_every_flow_once(
        stream: FlowStreamSettings, runtimes: Callable[[str], Runtime]) -> None:
    flows = _flows(200)
    pub = _publish(stream, flows, partitions=2)
    assert (len(flows), 1) == (pub.records, pub.unmapped)
    rt = runtimes("one")
    consumer, rec = _consume(rt, stream, [0, 1], 2)
    assert sorted(map(_key, flows)) == sorted(map(_key, rec.flows))
    by_key = {_key(f): f for f in rec.flows}
    # uplink flows carry the IMSI of their source; downlink ones the IMSI of their destination
    for f in flows[:50]:
        got = by_key[_key(f)]
        holder = f.src_addr if f.src_addr.startswith("10.64.") else f.dst_addr
        assert _imsi(int(holder.rsplit(".", 1)[1]) - 1) == got.imsi
        assert _imsi(int(holder.rsplit(".", 1)[1]) - 1) == rec.refs[holder].imsi
    assert len(flows) == consumer.stats.records
    totals = consumer.applier.totals()
    assert sum(f.octets for f in flows) == sum(t["octets"] for t in totals.values())


def test_two_consumers_see_disjoint_partitions_covering_everything(
        stream: FlowStreamSettings, runtimes: Callable[[str], Runtime]) -> None:
    flows = _flows(240)
    _publish(stream, flows, partitions=2)
    _, left = _consume(runtimes("left"), stream, [0], 2)
    _, right = _consume(runtimes("right"), stream, [1], 2)
    a, b = set(map(_key, left.flows)), set(map(_key, right.flows))
    assert a
    assert b
    assert set() == a & b
    assert set(map(_key, flows)) == a | b
    # every device lives in exactly one partition
    assert set() == {f.imsi for f in left.flows} & {f.imsi for f in right.flows} - {None}


class Crash(BaseException):
    """Stands for the process dying (not an error the consumer handles)."""


def _device_octets(rt: Runtime) -> dict[str, int]:
    rows = rt.db.query("SELECT imsi, octets FROM policy_nats_usage WHERE period = 'month'")
    return {str(i): int(o) for i, o in rows}


def _expected_octets(flows: list[FlowRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in flows:
        holder = f.src_addr if f.src_addr.startswith("10.64.") else f.dst_addr
        if holder.startswith("10.64."):
            imsi = _imsi(int(holder.rsplit(".", 1)[1]) - 1)
            out[imsi] = out.get(imsi, 0) + f.octets
    return out


def test_crash_after_commit_before_ack_is_redelivered_and_counted_once(
        stream: FlowStreamSettings, runtimes: Callable[[str], Runtime]) -> None:
    flows = _flows(60)
    _publish(stream, flows, partitions=1, batch=20)
    rt = runtimes("crashy")
    crashed: list[int] = []

    def die(partition: int, seq: int) -> None:
        crashed.append(seq)
        raise Crash

    with pytest.raises(Crash):
        _consume(rt, stream, [0], 1, before_ack=die, ack_wait=0.6)
    assert 1 == len(crashed)
    # a restarted consumer (fresh applier: state from the store) gets the batch again
    consumer, _ = _consume(rt, stream, [0], 1, ack_wait=0.6, idle=1.8)
    assert 1 == consumer.stats.duplicates
    assert len(flows) == consumer.applier.totals()[0]["records"]
    assert _expected_octets(flows) == _device_octets(rt)
    usage = rt.policy.engine.policies.usage
    assert all(usage.bytes_in(imsi, "month", usage._volume[(imsi, "month")][0]) == n
               for imsi, n in _expected_octets(flows).items())


def test_consumer_killed_before_commit_gets_redelivery(
        stream: FlowStreamSettings, runtimes: Callable[[str], Runtime]) -> None:
    flows = _flows(40)
    _publish(stream, flows, partitions=1, batch=10)
    rt = runtimes("killed")
    consumer = FlowConsumer(BatchApplier(rt.db, rt.policy, clock=rt.clock, stream=stream.name, partitions=[0]), url=URL,
                            of=1, settings=stream, ack_wait=0.6)

    async def take_and_die() -> int:
        nc = await nats.connect(URL)
        try:
            sub = await consumer._subscribe(nc.jetstream(), 0)
            return len(await sub.fetch(3, timeout=2))  # fetched, never acknowledged
        finally:
            await nc.close()

    assert 3 == asyncio.run(take_and_die())
    consumer2, rec = _consume(rt, stream, [0], 1, ack_wait=0.6, idle=1.8)
    assert sorted(map(_key, flows)) == sorted(map(_key, rec.flows))
    assert 0 == consumer2.stats.duplicates
    assert _expected_octets(flows) == _device_octets(rt)


def test_malformed_messages_are_counted_and_terminated(
        stream: FlowStreamSettings, runtimes: Callable[[str], Runtime]) -> None:
    flows = _flows(30)
    _publish(stream, flows, partitions=2, batch=10)

    wrong = encode_batch([MappedFlow(flows[0], False)], partition=1, partitions=2)

    async def junk() -> None:
        nc = await nats.connect(URL)
        try:
            js = nc.jetstream()
            await js.publish(stream.subject(0), b"not a batch")
            await js.publish(stream.subject(0), b"STFB\x01\x00" + b"\xff" * 40)
            await js.publish(stream.subject(0), wrong)  # partition 1's batch on partition 0
        finally:
            await nc.close()

    asyncio.run(junk())
    rt = runtimes("junk")
    consumer, rec = _consume(rt, stream, [0, 1], 2, ack_wait=1.0, idle=1.0)
    assert {"short_header": 1, "bad_partition": 1, "partition_mismatch": 1} == \
        dict(consumer.stats.malformed)
    assert sorted(map(_key, flows)) == sorted(map(_key, rec.flows))

    async def pending() -> tuple[int, int]:
        nc = await nats.connect(URL)
        try:
            info = await nc.jetstream().consumer_info(stream.name, consumer.durable_name(0))
            return info.num_ack_pending, info.num_redelivered
        finally:
            await nc.close()

    assert (0, 0) == asyncio.run(pending())


CHILD = """
import os, signal, sys
from pathlib import Path
from simtrust.flows import BatchApplier, FlowConsumer, FlowStreamSettings
from tests.policy.test_nats import URL, Recorder, _runtime
home, name, prefix = sys.argv[1:4]
rt = _runtime(Path(home))
applier = BatchApplier(rt.db, rt.policy, clock=rt.clock, stream=name, partitions=[0], detection=Recorder())
consumer = FlowConsumer(applier, url=URL, of=1, ack_wait=0.6,
                        settings=FlowStreamSettings(name=name, subject_prefix=prefix),
                        before_ack=lambda p, s: os.kill(os.getpid(), signal.SIGKILL))
consumer.run_blocking(idle_exit=20)
"""


def test_consumer_process_killed_between_commit_and_ack_counts_once(
        stream: FlowStreamSettings, runtimes: Callable[[str], Runtime], tmp_path: Path) -> None:
    """A real SIGKILL after the commit: the batch comes back, is recognised, counted once."""


    flows = _flows(50)
    _publish(stream, flows, partitions=1, batch=25)
    home = tmp_path / "killed-home"
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, "-c", CHILD, str(home), stream.name,
                            stream.subject_prefix], cwd=repo, capture_output=True, text=True,
                           timeout=60, check=False)
    assert -9 == child.returncode, child.stderr
    rt = _provision(Runtime.open(load_settings(env={}, home=home)))
    try:
        assert 1 == BatchApplier(rt.db, rt.policy, clock=rt.clock, stream=stream.name, partitions=[0]).totals()[0]["batches"]
        consumer, _ = _consume(rt, stream, [0], 1, ack_wait=0.6, idle=1.8)
        # 51 flows in batches of 25: one was committed by the killed process, two remain
        assert (1, 2) == (consumer.stats.duplicates, consumer.stats.batches)
        assert len(flows) == consumer.applier.totals()[0]["records"]
        assert _expected_octets(flows) == _device_octets(rt)
    finally:
        rt.policy.close()
        rt.close()


def test_batches_that_no_stream_accepts_are_counted_as_errors(
        stream: FlowStreamSettings) -> None:
    """No stream on the subject (nats-setup not run): retried, then counted, never silent."""
    setup_flow_stream(URL, stream)  # the fixture deletes it afterwards
    missing = FlowStreamSettings(name=stream.name, subject_prefix=f"{stream.subject_prefix}x")
    with FlowPublisher(URL, partitions=1, settings=missing, batch_records=10,
                       retry_for=0.3) as pub:
        pub.publish(_flows(19))
    assert (0, 2) == (pub.records, pub.errors)


def test_unreachable_server_raises_nats_unavailable() -> None:

    with pytest.raises(NatsUnavailable):
        setup_flow_stream("nats://127.0.0.1:1", FlowStreamSettings(name="NEVER"))
    with pytest.raises(NatsUnavailable):
        FlowPublisher("nats://127.0.0.1:1", partitions=1).start()


def test_an_ack_reply_that_times_out_does_not_stop_the_partition(
        stream: FlowStreamSettings, runtimes: Callable[[str], Runtime],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow server reply to +ACK (seen under load) is counted; the batch it belonged to
    comes back after ack_wait and is applied once (a duplicate), the rest flows on."""
    flows = _flows(60)
    _publish(stream, flows, partitions=1, batch=20)
    rt = runtimes("slowack")
    real = nats.aio.msg.Msg.ack_sync
    timed_out: list[int] = []

    async def slow_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not timed_out:
            timed_out.append(self.metadata.sequence.stream)
            raise nats.errors.TimeoutError
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(nats.aio.msg.Msg, "ack_sync", slow_once)
    consumer, _ = _consume(rt, stream, [0], 1, ack_wait=0.6, idle=1.8)
    assert 1 == consumer.stats.ack_timeouts
    # the timed-out batch comes back as a duplicate; on a loaded machine ack_wait (0.6 s)
    # can lapse for another batch too, which must then be recognised the same way
    assert consumer.stats.duplicates >= 1
    assert len(flows) == consumer.applier.totals()[0]["records"]  # each record applied once
    assert _expected_octets(flows) == _device_octets(rt)
