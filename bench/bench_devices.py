"""LwM2M device management over DTLS on loopback.

Figures (issue 21): ``metrics.registrations_per_s`` (each one a new DTLS 1.2 PSK
handshake with cookie exchange and a CoAP Register on /rd answered 2.01, the SIM looked
up in the SQLite inventory; clients and servers share this process's one loop) next to
``limits.dtls_handshakes_per_s`` (the same handshakes against the same kind of server
link with nothing behind it, same run); ``metrics.notifications_per_s`` (Observe
notifications of one device, RFC 7641, decoded from SenML-CBOR and delivered to the
callback) next to ``limits.dtls_records_per_s`` (small application records through a
DTLS session into a receiver that only counts them) and the handshake rate;
``metrics.devices_per_gib`` (registrations held by the management server: tracemalloc
growth over ``REGS`` registrations). ``notes.registrations_target`` says whether the
2,000/s target is above this machine's raw handshake rate of the run (every registration is
a handshake); ``ratios.registrations_vs_handshakes`` is then the figure to judge, and
``notes.loadavg`` the load it was measured under. Certificate mode:
``metrics.cert_registrations_per_s`` (ECDHE-ECDSA P-256 handshake with a client certificate
of a tenant CA, the chain validated by mbed TLS, the issuance record and SIM looked up, then
Register) next to
``limits.cert_dtls_handshakes_per_s`` (the same handshakes against a certificate-mode
link that accepts any validated certificate, same run).

The same registrations with the clients in a separate process
(``simtrust.testing.devices``, spawned; the servers keep this process's loop):
``metrics.registrations_per_s_apart`` next to ``limits.dtls_handshakes_per_s_apart``
(that process's handshakes against the bare link), so the clients' CPU is not the
servers' CPU. ``notes.cpu_count`` says how many cores the two processes had.

The notifications likewise, with the observed device in a spawned process of its own
(``simtrust.testing.devices.notification_load``: the same client, DTLS PSK session,
registration and SenML-CBOR payloads as the in-process pass) and the management server on
this process's loop: ``metrics.notifications_per_s_apart`` (notifications decoded and
delivered to the callback, counted and timed on the server's side from the first
notification to the last) next to ``limits.dtls_records_per_s_apart`` (small application
records from that process into a link that only counts them, measured the same way) and
``ratios.notifications_apart_vs_records_apart``. The sender keeps at most 32 datagrams
ahead of the server's count (a shared 8-byte mapping); ``notes.notifications_apart`` says
how many were counted. In-process, the device's encode and DTLS write are charged to
the server (docs/decisions/devices-notifications-apart.md); both figures are reported.
``notes.notifications_apart`` also gives this process's CPU per notification in that pass
(``server_cpu_us_per_notification``) and the device process's
(``device_cpu_us_per_notification``: encode, DTLS write and send, not its waits).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from simtrust.benchmark import BenchResult
from simtrust.bootstrap import DeviceClaims
from simtrust.config import load_settings
from simtrust.devices import (
    CoapEndpoint,
    DeviceCertificates,
    DeviceManager,
    DeviceServices,
    DtlsClientLink,
    DtlsServerLink,
    Lwm2mClient,
    Message,
    MsgType,
    Peer,
    PskEntry,
    new_endpoint_name,
)
from simtrust.errors import NotFound
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
    Sim,
    SimSecrets,
    SimSpec,
    SimState,
    build_services,
    luhn_check_digit,
)
from simtrust.testing.devices import (
    Drain,
    SharedCount,
    apart,
    handshake_load,
    notification_load,
    record_load,
    registration_load,
    run_apart,
)

NAME = "devices"
DESCRIPTION = "LwM2M registrations/s and notifications/s over DTLS, devices per GiB"
TENANT = "bench"
IMEI = "490154203237518"
CONCURRENCY = 16
KEY = b"bench-psk-000001"


TARGET_REGISTRATIONS = 2000
#: How long one phase may take: on a loaded shared machine the certificate handshakes
#: alone have taken over two minutes.
CALL_S = 900.0


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _imsi(n: int) -> Imsi:
    return Imsi(f"00101{n:010d}", 2)


def _iccid(n: int) -> Iccid:
    body = f"89882{n:013d}"
    return Iccid(body + str(luhn_check_digit(body)))


WINDOW = 32


async def _window(done: Any, sent: int) -> None:
    """Keep at most WINDOW datagrams in flight: client and server share one loop, and an
    unpaced burst only measures the socket buffer's overflow."""
    spins = 0
    while sent - done() > WINDOW and spins < 1000:
        await asyncio.sleep(0)
        spins += 1


async def _handshakes(port: int, count: int) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)
    loop = asyncio.get_running_loop()

    async def one() -> None:
        async with sem:
            link = DtlsClientLink(CoapEndpoint(lambda p, m: None), "bench", KEY)
            await loop.create_datagram_endpoint(lambda: link, remote_addr=("127.0.0.1", port))
            await link.handshake()
            link.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - start)


Issued = list[tuple[int, bytes, bytes]]


async def _cert_handshakes(port: int, issued: Issued, trust: bytes) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)
    loop = asyncio.get_running_loop()

    async def one(cert: bytes, key: bytes) -> None:
        async with sem:
            link = DtlsClientLink(CoapEndpoint(lambda p, m: None), "x509", key,
                                  cert_chain=[cert], server_trust=[trust])
            await loop.create_datagram_endpoint(lambda: link, remote_addr=("127.0.0.1", port))
            await link.handshake()
            link.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(cert, key) for _, cert, key in issued))
    return len(issued) / (time.perf_counter() - start)


async def _cert_registrations(dev: DeviceServices, issued: Issued, trust: bytes) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)
    uri = f"coaps://127.0.0.1:{dev.dm_port}"

    async def one(n: int, cert: bytes, key: bytes) -> None:
        async with sem:
            client = Lwm2mClient(new_endpoint_name(IMEI, _imsi(n).value))
            peer = await client.connect_certificate(uri, [cert], key, [trust])
            await client.register(peer=peer)
            client.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(*i) for i in issued))
    return len(issued) / (time.perf_counter() - start)


async def _records(port: int, count: int, received: list[int]) -> float:
    loop = asyncio.get_running_loop()
    link = DtlsClientLink(CoapEndpoint(lambda p, m: None), "bench", KEY)
    await loop.create_datagram_endpoint(lambda: link, remote_addr=("127.0.0.1", port))
    peer = await link.handshake()
    payload = b"\x50\x45\x00\x01" + b"x" * 24
    start = time.perf_counter()
    for i in range(count):
        link.send(peer, payload)
        await _window(lambda: received[0], i + 1)
    while received[0] < count * 0.95 and time.perf_counter() - start < 30:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    link.close()
    return received[0] / elapsed


async def _registrations(dev: DeviceServices, creds: list[tuple[int, str, bytes]]) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)
    uri = f"coaps://127.0.0.1:{dev.dm_port}"

    async def one(n: int, identity: str, key: bytes) -> None:
        async with sem:
            client = Lwm2mClient(new_endpoint_name(IMEI, _imsi(n).value))
            client.values.update({(0, 1, 0): uri, (0, 1, 3): identity.encode(), (0, 1, 5): key})
            await client.register()
            client.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(*c) for c in creds))
    return len(creds) / (time.perf_counter() - start)


async def _notifications(dev: DeviceServices, n: int, identity: str, key: bytes,
                         count: int) -> float:
    client = Lwm2mClient(new_endpoint_name(IMEI, _imsi(n).value))
    client.values.update({(0, 1, 0): f"coaps://127.0.0.1:{dev.dm_port}",
                          (0, 1, 3): identity.encode(), (0, 1, 5): key})
    await client.register()
    seen = [0]
    await dev.manager.observe(client.endpoint_name, (3, 0, 9),
                              lambda values: seen.__setitem__(0, seen[0] + 1))
    start = time.perf_counter()
    for i in range(count):
        client.set((3, 0, 9), i % 100)
        await _window(lambda: seen[0] - 1, i + 1)
    while seen[0] < count * 0.95 and time.perf_counter() - start < 30:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    client.close()
    return (seen[0] - 1) / elapsed


def _reg_id(dev: DeviceServices, name: str) -> str | None:
    try:
        return dev.manager.get(name).reg_id
    except NotFound:
        return None


async def _drained(drain: Drain, target: int, child: Future[Any]) -> float:
    """Wait until ``target`` deliveries were counted, or the sender has finished and
    nothing more arrives (a lost datagram), or nothing at all arrives for 30 s."""
    seen, moved = drain.count, time.monotonic()
    while drain.count < target:
        await asyncio.sleep(0.01)
        if drain.count != seen:
            seen, moved = drain.count, time.monotonic()
        elif (child.done() and time.monotonic() - moved > 1.0) or \
                time.monotonic() - moved > 30:
            break
    return drain.per_s()


async def _notifications_apart(dev: DeviceServices, name: str, before: str | None,
                               drain: Drain, count: int, child: Future[Any]) -> float:
    """The server's side of the notification pass with the device in another process:
    wait for its (new) registration, observe /3/0/9, count every delivered notification."""
    deadline = time.monotonic() + CALL_S
    while _reg_id(dev, name) in (None, before):
        if child.done():
            child.result()  # the device's failure, raised here
            raise RuntimeError("the device process ended without registering")
        if time.monotonic() > deadline:
            raise TimeoutError("the device did not register")
        await asyncio.sleep(0.005)
    await dev.manager.observe(name, (3, 0, 9), lambda values: drain.bump())
    return await _drained(drain, count + 1, child)


def _apart_notifications(dev: DeviceServices, tmp: Path, raw_server: Any,
                         device: tuple[str, str, bytes], count: int
                         ) -> tuple[float, float, dict[str, float]]:
    """(records/s into a bare counting link, notifications/s into the management server,
    how many of each were counted), each sent from a spawned process and counted here,
    on the server's side."""
    shared = SharedCount(tmp / "records.count", create=True)
    drain = Drain(shared)
    try:
        port = dev.call(raw_server(count=drain.bump))
        with apart(record_load, port, "bench", KEY, count, shared.path) as child:
            records = dev.call(_drained(drain, count, child), timeout=CALL_S)
            child.result(timeout=CALL_S)
    finally:
        shared.close()
    counted: dict[str, float] = {"records_counted": drain.count}
    shared = SharedCount(tmp / "notifications.count", create=True)
    # The clock starts at the first notification: the current value (the 2.05 that
    # answers the Observe request) is counted first and is not a notification.
    drain = Drain(shared, start=2)
    name = device[0]
    try:
        before = _reg_id(dev, name)
        uri = f"coaps://127.0.0.1:{dev.dm_port}"
        with apart(notification_load, uri, device, count, shared.path) as child:
            cpu = time.process_time()
            notes = dev.call(_notifications_apart(dev, name, before, drain, count, child),
                             timeout=CALL_S)
            cpu = time.process_time() - cpu
            device_cpu = float(child.result(timeout=CALL_S))
    finally:
        shared.close()
    counted["counted"] = drain.count - 1  # the notifications, not the current value
    # This process's CPU (the server's loop, registration and Observe request included)
    # per notification: what bounds the apart figure when the sender is not the bound.
    counted["server_cpu_us_per_notification"] = round(
        cpu * 1e6 / max(counted["counted"], 1), 1)
    # The device's CPU per notification (encode, DTLS write, send; not its waits): near
    # the time per notification, it is the sender that bounds the pass.
    counted["device_cpu_us_per_notification"] = round(device_cpu, 1)
    return records, notes, counted


def _footprint(dev: DeviceServices, sim: Sim, regs: int) -> float:
    """Bytes per registration a management server holds (its indexes, the flood window,
    the peer), over NoSec peers without sockets; every IMSI resolves to one inventory row
    so that the store is not what is measured."""

    class Sink:
        def send(self, peer: Peer, data: bytes) -> None:
            return None

    class OneSim:
        def find_sim(self, imsi: Imsi) -> Sim | None:
            return sim

    sink = Sink()
    manager = DeviceManager(OneSim(), dev.credentials, [], lambda: datetime.now(UTC),
                            allow_nosec=True)
    links = b"</1/0>,</3/0>,</4/0>,</5/0>,</6/0>,</7/0>"
    queries = [f"ep=urn:imsi:00101{i:010d}".encode() for i in range(regs)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(regs):
        peer = Peer((f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 5683), sink)
        manager.handle(peer, Message(MsgType.CON, 0x02, i & 0xFFFF, b"", (
            (11, b"rd"), (15, queries[i]), (15, b"lt=86400"), (15, b"b=U")), links))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    if len(manager) != regs:
        raise RuntimeError(f"only {len(manager)} of {regs} registrations were accepted")
    return (after - before) / regs


def run(quick: bool) -> BenchResult:
    sims = 40 if quick else 4000
    regs = 2000 if quick else 50_000
    notes_count = 500 if quick else 20_000
    handshakes = 40 if quick else 1000
    certs = 40 if quick else 400
    result = BenchResult(NAME)
    load_before = _loadavg()
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-devices-") as tmp:
        rt = Runtime.initialise(load_settings(env={}, home=Path(tmp) / "home"))
        try:
            rt.tenants.create_tenant(TENANT, "Bench fleet")
            subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
            rt.subscriber = subs
            for n in range(1, sims + 1):
                subs.inventory.add_sim(TENANT, SimSpec(
                    _iccid(n), _imsi(n), secrets=SimSecrets(os.urandom(16), os.urandom(16),
                                                            OpKind.OPC),
                    state=SimState.ACTIVE), actor="bench")
            cas = rt.bootstrap.cas
            ca = cas.create_hosted(TENANT, "bench", common_name="Bench device CA",
                                   actor="bench")
            der = serialization.Encoding.DER
            issued: Issued = []
            for n in range(1, certs + 1):
                cert, private = cas.generate_key_and_issue(
                    ca, DeviceClaims(TENANT, _iccid(n).value, _imsi(n).value, imei=IMEI),
                    actor="bench")
                issued.append((n, cert.public_bytes(der), private))
            trust = cas.operator_ca().certificate.public_bytes(der)

            def sim_of(iccid: str) -> Sim | None:
                return subs.inventory.get_sim(Iccid(iccid))

            dev = DeviceServices(rt.db, rt.keyring, lambda: datetime.now(UTC),
                                 sims=subs.inventory, naf_keys=rt.bootstrap.bsf,
                                 naf_fqdn="localhost", allow_nosec=True,
                                 certificates=DeviceCertificates(cas, sim_of, ["127.0.0.1"]))
            creds = [(n, *dev.credentials.issue("dm", _imsi(n).value, TENANT, key=KEY))
                     for n in range(1, sims + 1)]
            creds = [(n, i, KEY) for n, i, _ in creds]
            dev.start()
            received = [0]

            def count_one() -> None:
                received[0] += 1

            async def raw_server(cert_mode: bool = False,
                                 count: Callable[[], None] = count_one) -> int:
                counter = CoapEndpoint(lambda p, m: None)
                counter.datagram = lambda peer, data: count()  # type: ignore[method-assign]
                mode = None
                if cert_mode:
                    assert dev.certificates is not None
                    mode = dataclasses.replace(dev.certificates.mode(), identify=lambda _d: (
                        "x509", PskEntry(b"", None, None, "dm")))
                link = DtlsServerLink(counter, lambda _i: PskEntry(KEY, None, None, "dm"),
                                      certificates=mode)
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: link, local_addr=("127.0.0.1", 0))
                port: int = transport.get_extra_info("sockname")[1]
                return port

            try:
                raw_port = dev.call(raw_server())
                result.limits["dtls_handshakes_per_s"] = round(
                    dev.call(_handshakes(raw_port, handshakes), timeout=CALL_S), 1)
                result.limits["dtls_records_per_s"] = round(
                    dev.call(_records(raw_port, notes_count, received), timeout=CALL_S), 1)
                result.metrics["registrations_per_s"] = round(
                    dev.call(_registrations(dev, creds), timeout=CALL_S), 1)
                cert_port = dev.call(raw_server(cert_mode=True))
                result.limits["cert_dtls_handshakes_per_s"] = round(
                    dev.call(_cert_handshakes(cert_port, issued, trust), timeout=CALL_S), 1)
                result.metrics["cert_registrations_per_s"] = round(
                    dev.call(_cert_registrations(dev, issued, trust), timeout=CALL_S), 1)
                # Again with the clients in a process of their own (each SIM's second
                # registration replaces its first, within the per-SIM flood allowance).
                result.limits["dtls_handshakes_per_s_apart"] = round(run_apart(
                    handshake_load, raw_port, "bench", KEY, handshakes, CONCURRENCY * 2), 1)
                result.metrics["registrations_per_s_apart"] = round(run_apart(
                    registration_load, f"coaps://127.0.0.1:{dev.dm_port}",
                    [(new_endpoint_name(IMEI, _imsi(n).value), identity, key)
                     for n, identity, key in creds], CONCURRENCY * 2), 1)
                n, identity, key = creds[0]
                result.metrics["notifications_per_s"] = round(
                    dev.call(_notifications(dev, n, identity, key, notes_count), timeout=CALL_S), 1)
                # Again with the device (or the record sender) in a process of its own,
                # counted on the server's side (creds[1]: creds[0] has just re-registered).
                n, identity, key = creds[1]
                records_apart, notes_apart, counted = _apart_notifications(
                    dev, Path(tmp), raw_server,
                    (new_endpoint_name(IMEI, _imsi(n).value), identity, key), notes_count)
                result.limits["dtls_records_per_s_apart"] = round(records_apart, 1)
                result.metrics["notifications_per_s_apart"] = round(notes_apart, 1)
                sim = subs.inventory.find_sim(_imsi(1))
                assert sim is not None
                per_device = _footprint(dev, sim, regs)
            finally:
                dev.stop()
            result.metrics["bytes_per_device"] = round(per_device, 1)
            result.metrics["devices_per_gib"] = round(2**30 / per_device)
            result.ratio("registrations_vs_handshakes", "registrations_per_s",
                         "dtls_handshakes_per_s")
            result.ratio("registrations_apart_vs_handshakes_apart", "registrations_per_s_apart",
                         "dtls_handshakes_per_s_apart")
            result.ratio("cert_registrations_vs_cert_handshakes", "cert_registrations_per_s",
                         "cert_dtls_handshakes_per_s")
            result.ratio("notifications_vs_records", "notifications_per_s", "dtls_records_per_s")
            result.ratio("notifications_apart_vs_records_apart", "notifications_per_s_apart",
                         "dtls_records_per_s_apart")
            result.ratio("notifications_vs_handshakes", "notifications_per_s",
                         "dtls_handshakes_per_s")
            raw = result.limits["dtls_handshakes_per_s"]
            result.notes["registrations_target"] = {
                "target_per_s": TARGET_REGISTRATIONS, "raw_dtls_handshakes_per_s": raw,
                # Each registration is a full handshake: no server reaches more registrations
                # per second than the handshakes this machine completes in the same run.
                "above_this_machines_limit": raw < TARGET_REGISTRATIONS,
                "judge_by": "ratios.registrations_vs_handshakes = registrations/s divided by"
                            " raw PSK handshakes/s of the same run (1.0 = no server overhead)"}
            result.notes["loadavg"] = {"before": load_before, "after": _loadavg()}
            result.notes.update({"registrations": len(creds), "handshakes": handshakes,
                                 "cert_registrations": certs,
                                 "notifications": notes_count, "footprint_registrations": regs,
                                 "concurrency": CONCURRENCY, "store": "sqlite",
                                 "concurrency_apart": CONCURRENCY * 2,
                                 "cpu_count": os.cpu_count(),
                                 "notifications_apart": counted,
                                 "targets": {"registrations_per_s": TARGET_REGISTRATIONS,
                                             "notifications_per_s": 20000,
                                             "devices_per_gib": 1_000_000}})
        finally:
            subs.close()
            rt.close()
    return result


def main() -> dict[str, Any]:
    return run(quick=True).to_json()
