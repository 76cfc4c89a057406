"""The collector's batch path against the per-record path, on the same datagrams.

Column batches go through :meth:`PolicyEngine.ingest_columns` and
:meth:`Detector.observe_columns`; the same batches as :class:`FlowRecord`
lists go through :meth:`PolicyEngine.ingest` and :meth:`Detector.observe`.
Both must give the same verdicts (every one that is not a plain allow), the
same dispatcher submissions in the same order, the same usage counters and
unmapped count, the same alerts in the same order and the same detector state:
on softflowd's exports of the shared captures, on the benchmark's stream, and
on generated records, policies and batch splits (hypothesis), with the
detector's and the policy's C extensions (``simtrust.detect._fast``,
``simtrust.policy._counters``) and without them.
"""

from __future__ import annotations

import random
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import Detector, DeviceRef, Thresholds
from simtrust.detect import _batch as detect_batch
from simtrust.detect import _engine as detect_engine
from simtrust.detect._device import DeviceState
from simtrust.domain import DeviceContext, FlowRecord, imsi_digits
from simtrust.flows import FlowDecoder, _ipfix
from simtrust.flows._columns import FlowColumns
from simtrust.policy import (
    AddressMap,
    FlowVerdict,
    PolicyEngine,
    PolicySet,
    StaticDirectory,
    policy_from_dict,
)
from simtrust.policy import _slots as policy_slots
from tests.flows.test_native_decode import _softflowd_datagrams
from tests.policy.conftest import require_binaries

needs_rx = pytest.mark.skipif(_ipfix._rx is None, reason="simtrust.flows._rx is not built")
SLOT = 65536
TENANT = "acme"

# softflowd's IPv4 template: the shape the C batch decoder puts into columns
FIELDS = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (10, 4), (14, 4), (61, 1),
          (136, 1), (7, 2), (11, 2), (4, 1), (6, 1), (60, 1), (5, 1)]
RECORD = struct.Struct("!4s4sIIIIIIBBHHBBBB")


class _Recorder:
    """A dispatcher that records submissions and, like the real one, marks removals."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.on_remove: Any = None

    def submit(self, decision: Any, tenant_id: str, flow: dict[str, Any], at: float) -> None:
        self.log.append((decision, tenant_id, flow, at))
        if self.on_remove is not None and decision.imsi and any(
                str(a) == "remove" for v in decision.violations for a in v.actions):
            self.on_remove(decision.imsi)


def _notable(v: FlowVerdict) -> bool:
    d = v.decision
    return bool(d.violations) or not d.allowed or d.reason != "ok"


def _world(devices: list[str], policies: list[dict[str, Any]],
           thresholds: Thresholds | None = None) -> tuple[PolicyEngine, Detector, _Recorder]:
    addresses = AddressMap()
    directory = StaticDirectory()
    refs = {}
    zones = ["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata"]
    for i, addr in enumerate(devices):
        imsi = imsi_digits(f"00101{i:010d}")
        addresses.attach(imsi, "iot", addr)
        directory.add(DeviceContext(imsi, TENANT, apn="iot", group="meters" if i % 3 else "cams",
                                    tz=zones[i % len(zones)],
                                    serving_mcc="262" if i % 5 == 4 else None,
                                    active=i % 7 != 6))
        refs[addr] = DeviceRef(imsi, "meters" if i % 3 else "cams", TENANT)
    recorder = _Recorder()
    engine = PolicyEngine(PolicySet([policy_from_dict(p) for p in policies]), addresses,
                          directory, recorder)  # type: ignore[arg-type]
    return engine, Detector(subscribers=refs, thresholds=thresholds), recorder


def _state(det: Detector) -> list[tuple[Any, ...]]:
    out = []
    for imsi, dev in det._by_imsi.items():
        out.append((imsi, *(getattr(dev, name) for name in DeviceState.__slots__
                             if name not in ("base", "cohort", "learn"))))
    return out


def _buffer(chunk: list[bytes]) -> bytearray:
    buf = bytearray(SLOT * max(1, len(chunk)))
    for i, m in enumerate(chunk):
        buf[i * SLOT:i * SLOT + len(m)] = m
    return buf


def _compare(messages: list[bytes], batch: int, make: Any, native: bool = True
             ) -> tuple[int, list[FlowVerdict], int, int]:
    """Run both paths over ``messages`` in batches; assert they agree. Returns
    (records in columns, the notable verdicts, submissions, alerts). With
    ``native`` false the detector's and the policy's batch entries run without their C
    extensions."""
    saved, saved_counters = detect_batch._fast, policy_slots._counters_c
    if not native:
        detect_batch._fast = None
        policy_slots._counters_c = None
    try:
        return _both(messages, batch, make)
    finally:
        detect_batch._fast, policy_slots._counters_c = saved, saved_counters


def _both(messages: list[bytes], batch: int, make: Any
          ) -> tuple[int, list[FlowVerdict], int, int]:
    e1, d1, r1 = make()
    e2, d2, r2 = make()
    dec1, dec2 = FlowDecoder(), FlowDecoder()
    want_v: list[FlowVerdict] = []
    got_v: list[FlowVerdict] = []
    want_a: list[Any] = []
    got_a: list[Any] = []
    columns = 0
    for k in range(0, len(messages), batch):
        chunk = messages[k:k + batch]
        lengths, senders = [len(m) for m in chunk], ["192.0.2.200"] * len(chunk)
        now = 1_700_000_000.0 + k
        records: list[FlowRecord] = []
        for seg in dec1.decode_received(_buffer(chunk), lengths, senders, now):
            if isinstance(seg, FlowColumns):
                seg.records(records)
            else:
                records.extend(seg)
        want_v += [v for v in e1.ingest(records) if _notable(v)]
        want_a += d1.run(records)
        for seg in dec2.decode_received(_buffer(chunk), lengths, senders, now):
            if isinstance(seg, FlowColumns):
                columns += len(seg)
                assert [seg.record(i) for i in range(len(seg))] == seg.records()
                got_v += e2.ingest_columns(seg)
                got_a += d2.observe_columns(seg)
            else:
                got_v += [v for v in e2.ingest(seg) if _notable(v)]
                got_a += d2.run(seg)
    assert want_v == got_v
    assert r1.log == r2.log
    assert e1.policies.usage.volume == e2.policies.usage.volume
    assert e1.policies.usage._flows == e2.policies.usage._flows
    assert (e1.unmapped, e1.removed) == (e2.unmapped, e2.removed)
    assert want_a == got_a
    assert _state(d1) == _state(d2)
    return columns, want_v, len(r1.log), len(want_a)


_POLICY: dict[str, Any] = {"tenant_id": TENANT, "scope": "tenant", "rules": [
    {"id": "dst", "kind": "destination", "allow": [
        {"cidrs": ["192.0.2.0/28", "198.51.100.7/32"], "ports": [443, 8883],
         "protocols": ["tcp"]},
        {"cidrs": ["198.51.100.0/24"], "ports": ["1000-1200"]}],
     "actions": ["log"]},
    {"id": "hours", "kind": "time", "windows": [{"start": "07:00", "end": "19:30",
                                                  "days": [0, 1, 2, 3, 4]}],
     "actions": ["alert"]},
    {"id": "roam", "kind": "roaming", "allowed_mcc": ["001"], "actions": ["log"]},
    {"id": "v-hour", "kind": "volume", "period": "hour", "max_bytes": 40_000,
     "actions": ["log"]},
    {"id": "v-day", "kind": "volume", "period": "day", "max_bytes": 150_000,
     "actions": ["block"]},
    {"id": "v-day2", "kind": "volume", "period": "day", "max_bytes": 90_000,
     "actions": ["log"]},
    {"id": "v-month", "kind": "volume", "period": "month", "max_bytes": 10**9,
     "actions": ["log"]},
    {"id": "r-min", "kind": "rate", "max_flows": 6, "per_seconds": 60, "actions": ["log"]},
    {"id": "r-min2", "kind": "rate", "max_flows": 9, "per_seconds": 60, "actions": ["log"]},
    {"id": "r-10", "kind": "rate", "max_flows": 3, "per_seconds": 10, "actions": ["log"]},
]}
_GROUP: dict[str, Any] = {"tenant_id": TENANT, "scope": "group:cams", "rules": [
    {"id": "cam-dst", "kind": "destination", "allow": [{"cidrs": ["203.0.113.0/25"]}],
     "actions": ["log"]},
    {"id": "cam-time", "kind": "time", "tz": "Asia/Tokyo",
     "windows": [{"start": "22:00", "end": "06:00"}], "actions": ["log"]},
]}


def _message(records: list[bytes], export: int, seq: int, template: bool) -> bytes:
    body = struct.pack("!HH", 256, len(FIELDS)) + b"".join(struct.pack("!HH", *f) for f in FIELDS)
    sets = struct.pack("!HH", 2, 4 + len(body)) + body if template else b""
    payload = b"".join(records)
    sets += struct.pack("!HH", 256, 4 + len(payload)) + payload
    return struct.pack("!HHIII", 10, 16 + len(sets), export, seq, 1) + sets


_DEVICES = [f"10.64.0.{i}" for i in range(1, 9)]
_PEERS = ["192.0.2.3", "192.0.2.20", "198.51.100.7", "198.51.100.9", "203.0.113.5",
          "203.0.113.200", "8.8.8.8", "224.0.0.251", "10.99.0.1"]

_RECORD = st.tuples(
    st.sampled_from(_DEVICES + _PEERS), st.sampled_from(_PEERS + _DEVICES),
    st.integers(0, 4_000_000), st.integers(0, 40_000),  # start (ms), duration (ms)
    st.integers(0, 30_000), st.integers(1, 2000),  # octets, packets
    st.integers(0, 65535), st.sampled_from([443, 8883, 1100, 23, 2323, 53, 80, 0]),
    st.sampled_from([6, 17, 1]), st.sampled_from([0x02, 0x12, 0x1B, 0x10, 0]))


@needs_rx
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_RECORD, min_size=1, max_size=120),
       split=st.integers(1, 25), batch=st.integers(1, 4),
       export=st.integers(1_699_990_000, 1_700_600_000), group=st.booleans(),
       native=st.booleans())
def test_identical_on_generated_batches(records: list[tuple[Any, ...]], split: int, batch: int,
                                        export: int, group: bool, native: bool) -> None:
    raw = [RECORD.pack(socket.inet_aton(s), socket.inet_aton(d), t, t + dur, octets, packets,
                       0, 0, 0, 0, sport, dport, proto, flags, 4, 0)
           for s, d, t, dur, octets, packets, sport, dport, proto, flags in records]
    messages = [_message([], export, 0, True)] + [
        _message(raw[k:k + split], export + k, k, False) for k in range(0, len(raw), split)]
    policies = [_POLICY, _GROUP] if group else [_POLICY]
    th = Thresholds(scan_floor=3, breadth_floor=3, ddos_packets_floor=2000,
                    ddos_flows_floor=4, ddos_bytes_floor=50_000, volume_floor_default=60_000,
                    beacon_min_contacts=3, beacon_min_period_s=1.0)
    columns, _, _, _ = _compare(messages, batch, lambda: _world(_DEVICES, policies, th), native)
    assert len(raw) == columns


@needs_rx
def test_remove_within_a_batch_is_decided_as_the_per_record_path_does() -> None:
    """A ``remove`` marks the SIM at once: its later flows of the same batch are "removed"."""
    policy = {"tenant_id": TENANT, "scope": "tenant", "rules": [
        {"kind": "volume", "period": "day", "max_bytes": 5_000, "actions": ["remove"]}]}
    raw = [RECORD.pack(socket.inet_aton(_DEVICES[i % 3]), socket.inet_aton("192.0.2.3"),
                       i * 100, i * 100 + 50, 1500, 3, 0, 0, 0, 0, 4000, 443, 6, 0x1B, 4, 0)
           for i in range(40)]
    messages = [_message([], 1_700_000_000, 0, True)] + [
        _message(raw[k:k + 10], 1_700_000_000, k, False) for k in range(0, 40, 10)]
    _, notable, submitted, _ = _compare(messages, 4, lambda: _world(_DEVICES, [policy]))
    assert submitted > 0
    assert {"removed"} == {v.decision.reason for v in notable if v.flow.src_addr == _DEVICES[0]
                           } - {"volume"}


@needs_rx
@pytest.mark.parametrize("native", [True, False])
def test_identical_on_the_benchmark_stream(native: bool) -> None:
    """The bench's shape: 1,000 devices, 1% of flows to destinations off the allow-list."""
    rng = random.Random(3)
    devices = [f"10.64.{i // 250}.{i % 250 + 1}" for i in range(1000)]
    services = [f"192.0.2.{i}" for i in range(1, 12)]
    raw = []
    for i in range(6000):
        dst, port = (rng.choice(services), 443) if rng.random() < 0.99 else ("203.0.113.9", 23)
        raw.append(RECORD.pack(socket.inet_aton(rng.choice(devices)), socket.inet_aton(dst),
                               i * 7, i * 7 + 900, rng.randint(60, 3000), rng.randint(1, 12),
                               0, 0, 4, 0, rng.randint(1024, 65535), port, 6, 0x1B, 4, 0))
    messages = [_message([], 1_700_000_000, 0, True)] + [
        _message(raw[k:k + 33], 1_700_000_000 + k // 140, k, False)
        for k in range(0, len(raw), 33)]
    columns, notable, submitted, _ = _compare(messages, 64, lambda: _world(devices, [_POLICY]),
                                              native)
    assert columns == len(raw)
    assert notable
    assert submitted > 0


class _WatchedState(DeviceState):
    """Device state whose writes go through ``__setattr__`` (counted)."""

    __slots__ = ()
    writes = 0

    def __setattr__(self, name: str, value: Any) -> None:
        type(self).writes += 1
        super().__setattr__(name, value)


@needs_rx
@pytest.mark.skipif(detect_batch._fast is None, reason="simtrust.detect._fast is not built")
def test_device_state_of_another_kind_goes_through_the_attribute_protocol(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The C extension writes slots at their offsets only for a type with the plain
    attribute protocol: a device state overriding ``__setattr__`` sees every write,
    and both paths still agree."""
    monkeypatch.setattr(detect_engine, "DeviceState", _WatchedState)
    rng = random.Random(5)
    devices = [f"10.64.0.{i}" for i in range(1, 40)]
    raw = [RECORD.pack(socket.inet_aton(rng.choice(devices)), socket.inet_aton("192.0.2.7"),
                       i * 700, i * 700 + 900, rng.randint(60, 3000), rng.randint(1, 12),
                       0, 0, 4, 0, 40000, 443, 6, 0x1B, 4, 0) for i in range(600)]
    messages = [_message([], 1_700_000_000, 0, True)] + [
        _message(raw[k:k + 30], 1_700_000_000, k, False) for k in range(0, len(raw), 30)]
    seen: list[int] = []
    real_step = detect_batch._fast.step

    def step(*args: Any) -> int:
        before = _WatchedState.writes
        i: int = real_step(*args)
        seen.append(_WatchedState.writes - before)
        return i

    monkeypatch.setattr(detect_batch._fast, "step", step)
    columns, _, _, _ = _compare(messages, 4, lambda: _world(devices, [_POLICY]))
    assert columns == len(raw)
    assert sum(seen) > len(raw) // 2  # the C writes (t_last, by_cur, windows) were seen


@needs_rx
@pytest.mark.parametrize(("version", "native"), [("10", True), ("9", True), ("10", False)])
def test_identical_on_softflowd_exports_of_the_captures(shared_dir: Path, tmp_path: Path,
                                                        version: str, native: bool) -> None:
    require_binaries("softflowd")
    folder = shared_dir / "data" / "pcaps" / "iot-sentinel"
    messages: list[bytes] = []
    for d in ("D-LinkCam", "EdimaxPlug1101W", "Aria", "HueBridge", "WeMoSwitch"):
        if (folder / d).is_dir():
            messages += _softflowd_datagrams(sorted((folder / d).glob("*.pcap"))[0], version,
                                             tmp_path)
    assert messages
    # the capture's private addresses are the SIMs
    seen: list[str] = []
    decoder = FlowDecoder()
    for m in messages:
        for f in decoder.decode(m, "x", 0.0):
            for a in (f.src_addr, f.dst_addr):
                if a.startswith(("192.168.", "10.", "172.16.")) and a not in seen:
                    seen.append(a)
    assert seen
    th = Thresholds(scan_floor=3, breadth_floor=4, ddos_flows_floor=5, ddos_packets_floor=200,
                    ddos_bytes_floor=100_000, volume_floor_default=200_000,
                    beacon_min_contacts=3, beacon_min_period_s=1.0)
    columns, notable, submitted, alerts = _compare(
        messages, 16, lambda: _world(seen, [_POLICY, _GROUP], th), native)
    assert columns > 0
    assert notable
    assert submitted > 0
    assert alerts > 0


@needs_rx
@pytest.mark.parametrize("native", [True, False])
def test_learning_detector_learns_the_same_baselines(native: bool) -> None:
    """In learning mode every record goes through observe's body; the baselines agree."""
    rng = random.Random(5)
    raw = [RECORD.pack(socket.inet_aton(rng.choice(_DEVICES)), socket.inet_aton(rng.choice(_PEERS)),
                       i * 900, i * 900 + rng.randint(0, 30_000), rng.randint(40, 9000),
                       rng.randint(1, 40), 0, 0, 0, 0, 5000, rng.choice([443, 23, 53]),
                       rng.choice([6, 17]), rng.choice([0x02, 0x1B]), 4, 0)
           for i in range(3000)]
    messages = [_message([], 1_700_000_000, 0, True)] + [
        _message(raw[k:k + 30], 1_700_000_000 + k, k, False) for k in range(0, len(raw), 30)]
    refs = {a: DeviceRef(imsi_digits(f"00101{i:010d}"), "meters", TENANT)
            for i, a in enumerate(_DEVICES)}
    saved = detect_batch._fast
    if not native:
        detect_batch._fast = None
    try:
        learner, batched = Detector(refs, learn=True), Detector(refs, learn=True)
        decoder, other = FlowDecoder(), FlowDecoder()
        for k in range(0, len(messages), 8):
            chunk = messages[k:k + 8]
            lengths, senders = [len(m) for m in chunk], ["192.0.2.200"] * len(chunk)
            records: list[FlowRecord] = []
            for seg in decoder.decode_received(_buffer(chunk), lengths, senders, 0.0):
                records.extend(seg.records() if isinstance(seg, FlowColumns) else seg)
            assert [] == learner.run(records)
            for seg in other.decode_received(_buffer(chunk), lengths, senders, 0.0):
                assert isinstance(seg, FlowColumns) or k == 0
                assert [] == (batched.observe_columns(seg) if isinstance(seg, FlowColumns)
                              else batched.run(seg))
    finally:
        detect_batch._fast = saved
    want, got = learner.baselines(), batched.baselines()
    assert len(want) == len(_DEVICES) + 1
    assert want == got


@needs_rx
def test_an_address_assigned_between_batches_counts_from_the_next_batch() -> None:
    """``assign`` drops the batch path's address cache, as it drops observe's."""
    raw = [RECORD.pack(socket.inet_aton(_DEVICES[i % 6]), socket.inet_aton("203.0.113.5"),
                       i * 500, i * 500 + 100, 900, 5, 0, 0, 0, 0, 4000, 443, 6, 0x1B, 4, 0)
           for i in range(60)]
    template = _message([], 1_700_000_000, 0, True)
    first = [template, _message(raw[:30], 1_700_000_000, 0, False)]
    second = [_message(raw[30:], 1_700_000_030, 30, False)]
    refs = {a: DeviceRef(imsi_digits(f"00101{i:010d}"), "meters", TENANT)
            for i, a in enumerate(_DEVICES[:3])}
    late = DeviceRef(imsi_digits("001019999999999"), "meters", TENANT)
    states = []
    for columnar in (False, True):
        det, decoder = Detector(dict(refs)), FlowDecoder()
        for k, chunk in enumerate((first, second)):
            if k == 1:
                det.assign(_DEVICES[4], late)
            for seg in decoder.decode_received(_buffer(chunk), [len(m) for m in chunk],
                                               ["192.0.2.200"] * len(chunk), 0.0):
                if columnar and isinstance(seg, FlowColumns):
                    det.observe_columns(seg)
                else:
                    det.run(seg.records() if isinstance(seg, FlowColumns) else seg)
        states.append(_state(det))
    assert states[0] == states[1]
    assert late.imsi in [s[0] for s in states[1]]
