"""Flow records through decode → map → policy → detection on one core.

IPFIX messages shaped like softflowd's (fixed 42-byte IPv4 records, ~33 per
datagram) from 1,000 devices are decoded by :class:`FlowDecoder`, mapped to
SIMs through an :class:`AddressMap`, evaluated by the :class:`PolicyEngine`
(destination allow-list, time window, volume and rate caps) and fed to the
streaming detector of :mod:`simtrust.detect`. The limit is the machine's raw
``struct.iter_unpack`` rate over the same record bytes in the same run.

Rates are records per CPU-second of this process (``time.process_time``):
"one core" is what is asked, and on a shared, oversubscribed machine wall time
mostly measures the other tenants. Wall-clock rates are reported beside them.
"""

from __future__ import annotations

import random
import socket
import struct
import time

from simtrust.benchmark import BenchResult
from simtrust.detect import Detector, DeviceRef
from simtrust.domain import DeviceContext
from simtrust.flows import FlowDecoder
from simtrust.policy import AddressMap, PolicyEngine, PolicySet, StaticDirectory, policy_from_dict

NAME = "flows"
DESCRIPTION = "IPFIX decode → SIM mapping → policy → detection, records per second on one core"

# softflowd's IPv4 template (see tests/policy/test_exporters.py)
FIELDS = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (10, 4), (14, 4), (61, 1),
          (136, 1), (7, 2), (11, 2), (4, 1), (6, 1), (60, 1), (5, 1)]
RECORD = struct.Struct("!4s4sIIIIIIBBHHBBBB")
PER_MESSAGE = 33
DEVICES = 1000
TENANT = "acme"


def _template() -> bytes:
    body = struct.pack("!HH", 256, len(FIELDS)) + b"".join(struct.pack("!HH", *f) for f in FIELDS)
    return struct.pack("!HH", 2, 4 + len(body)) + body


def _messages(n_records: int, rng: random.Random) -> tuple[list[bytes], list[bytes]]:
    """IPFIX datagrams (first with the template) and the bare record bytes of each."""
    services = [socket.inet_aton(f"192.0.2.{i}") for i in range(1, 20)]
    other = [socket.inet_aton(f"203.0.113.{i}") for i in range(1, 250)]
    devices = [socket.inet_aton(f"10.64.{i // 250}.{i % 250 + 1}") for i in range(DEVICES)]
    messages, payloads = [], []
    uptime = 0
    seq = 0
    t0 = 1_700_000_000
    made = 0
    while made < n_records:
        n = min(PER_MESSAGE, n_records - made)
        recs = []
        for _ in range(n):
            uptime += 7  # ms; the run spans a few simulated hours
            dev = rng.choice(devices)
            if rng.random() < 0.99:
                dst, port = rng.choice(services), 443
            else:
                dst, port = rng.choice(other), rng.choice((23, 2323, 80))
            recs.append(RECORD.pack(dev, dst, uptime, uptime + 900, rng.randint(60, 3000),
                                    rng.randint(1, 12), 0, 0, 4, 0, rng.randint(1024, 65535),
                                    port, 6, 0x1B, 4, 0))
        payload = b"".join(recs)
        sets = (_template() if not messages else b"") + struct.pack("!HH", 256, 4 + len(payload)) \
            + payload
        header = struct.pack("!HHIII", 10, 16 + len(sets), t0 + uptime // 1000, seq, 1)
        messages.append(header + sets)
        payloads.append(payload)
        seq += n
        made += n
    return messages, payloads


def _engine() -> tuple[PolicyEngine, AddressMap]:
    policy = policy_from_dict({"tenant_id": TENANT, "scope": "group:meters", "rules": [
        {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/27"], "ports": [443],
                                           "protocols": ["tcp"]}], "actions": ["log"]},
        {"kind": "time", "windows": [{"start": "00:00", "end": "00:00"}], "actions": ["log"]},
        {"kind": "volume", "period": "day", "max_bytes": 10**12, "actions": ["log"]},
        {"kind": "rate", "max_flows": 10**6, "per_seconds": 60, "actions": ["log"]},
    ]})
    addresses = AddressMap()
    addresses.add_pool("iot", "10.64.0.0/16")
    directory = StaticDirectory()
    for i in range(DEVICES):
        imsi = f"00101{i:010d}"
        addresses.attach(imsi, "iot", f"10.64.{i // 250}.{i % 250 + 1}")
        directory.add(DeviceContext(imsi, TENANT, apn="iot", group="meters", tz="Europe/Berlin"))
    # violations are only counted here (no dispatcher): the bench measures the data path
    return PolicyEngine(PolicySet([policy]), addresses, directory, None), addresses


def _detector(addresses: AddressMap) -> Detector:
    refs = {}
    for i in range(DEVICES):
        imsi = f"00101{i:010d}"
        addr = addresses.address_of(imsi)
        if addr is not None:
            refs[addr] = DeviceRef(imsi, "meters", TENANT)
    return Detector(subscribers=refs)


def run(quick: bool) -> BenchResult:
    rng = random.Random(6)
    n = 20_000 if quick else 400_000
    messages, payloads = _messages(n, rng)
    result = BenchResult(NAME)

    # limit: raw struct.iter_unpack over the same record bytes
    c, w = time.process_time(), time.perf_counter()
    count = 0
    for p in payloads:
        for _row in RECORD.iter_unpack(p):
            count += 1
    result.limits["raw_unpack_records_per_s"] = round(count / (time.process_time() - c))
    wall_limit = count / (time.perf_counter() - w)

    decoder = FlowDecoder()
    c, w = time.process_time(), time.perf_counter()
    decoded = 0
    for m in messages:
        decoded += len(decoder.decode(m, "bench", 0.0))
    result.metrics["decode_only_per_s"] = round(decoded / (time.process_time() - c))
    decode_wall = decoded / (time.perf_counter() - w)

    engine, addresses = _engine()
    decoder = FlowDecoder()
    c = time.process_time()
    total = 0
    for m in messages:
        flows = decoder.decode(m, "bench", 0.0)
        engine.ingest(flows)
        total += len(flows)
    result.metrics["decode_map_policy_per_s"] = round(total / (time.process_time() - c))

    engine, addresses = _engine()
    detector = _detector(addresses)
    observe = getattr(detector, "observe", None)
    decoder = FlowDecoder()
    violations = 0
    alerts = 0
    c, w = time.process_time(), time.perf_counter()
    total = 0
    for m in messages:
        flows = decoder.decode(m, "bench", 0.0)
        for v in engine.ingest(flows):
            if v.decision.violations:
                violations += 1
        if observe is not None:
            for f in flows:
                alerts += len(observe(f))
        total += len(flows)
    result.metrics["records_per_s"] = round(total / (time.process_time() - c))
    result.metrics["records_per_s_wall"] = round(total / (time.perf_counter() - w))
    result.metrics["decode_only_per_s_wall"] = round(decode_wall)
    result.limits["raw_unpack_records_per_s_wall"] = round(wall_limit)
    result.ratio("records_vs_raw_unpack", "records_per_s", "raw_unpack_records_per_s")
    result.ratio("decode_vs_raw_unpack", "decode_only_per_s", "raw_unpack_records_per_s")
    result.notes.update({
        "records": total,
        "messages": len(messages),
        "records_per_message": PER_MESSAGE,
        "devices": DEVICES,
        "policy_violations": violations,
        "detector_alerts": alerts,
        "detection": "simtrust.detect.Detector.observe" if observe is not None
        else "absent: policy only",
        "decoder_drops": dict(decoder.drops),
        "target_records_per_s": 100_000,
        "timing": "rates per CPU-second of the process; *_wall are wall-clock",
    })
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=False).to_json(), indent=2))
