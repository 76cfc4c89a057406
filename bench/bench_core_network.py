"""S6a AIR→AIA over Diameter/TCP and SBI generate-auth-data over h2c, with their ceilings.

Figures (issue 12): ``metrics.s6a_air_per_s`` — AIRs (one E-UTRAN vector
each: SQN advanced in the store, audited, K_ASME derived) answered per second
by a Diameter listener in a server process when this process offers
``OPEN_RATE`` AIRs a second over ``CLIENTS`` MME connections, *open loop*: the
i-th AIR is due at ``i / OPEN_RATE`` s whatever the answers do, and
``metrics.s6a_p99_s`` / ``metrics.s6a_p50_s`` are measured from each AIR's
scheduled send time (a late sender or a full socket counts against the
server, no coordinated omission). ``limits.s6a_open_send_lag_p99_s`` is how
late this process sent (its own share of the latency).
``metrics.s6a_closed_air_per_s`` / ``metrics.s6a_closed_p99_s`` — the same
server's maximum in a closed loop, ``CLIENTS`` connections with ``WINDOW``
AIRs in flight each (latency is then the window over the rate, Little's
law). ``limits.s6a_server_cpu_us_per_air`` is the server process's CPU time
(user + system) per AIR in that closed pass. ``limits.s6a_dwr_per_s`` is the
same server, clients and window answering Device-Watchdog-Requests (no
store, no crypto): the ceiling of the Diameter node and loopback TCP on this
machine in this run. Why open loop: docs/decisions/corenet-s6a-open-loop.md.

``metrics.sbi_auth_per_s`` / ``metrics.sbi_p99_s``: Nudm_UEAU
generate-auth-data (one 5G HE AV each, SQN in the store, audited) over HTTP/2
with prior knowledge, driven by ``h2load`` (nghttp2, a second process) with
``CLIENTS`` connections and ``WINDOW`` concurrent streams each; latencies from
its per-request log. The SBI is served as ``simtrust serve`` serves it by
default: one worker process per core (``notes.sbi_workers``;
``SIMTRUST_BENCH_SBI_WORKERS=1``: the server process alone), each fed
connections in turn by the server process (docs/decisions/corenet-sbi-workers.md).
``limits.sbi_404_per_s`` is the same server answering a path that matches no
route (404 from the router: the HTTP/2 server's own ceiling on this machine in
the same run); ``limits.sbi_server_cpu_us_per_req`` is the CPU time (user +
system) of the server process and its SBI workers per generate-auth-data.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from simtrust.alerts import MemorySink
from simtrust.benchmark import BenchResult, process_cpu_s
from simtrust.config import load_settings, usable_cores
from simtrust.diameter import Avp, Message, decode_message
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    build_services,
    luhn_check_digit,
)

NAME = "core-network"
DESCRIPTION = "S6a AIR->AIA answers/s and p99 over Diameter/TCP vs the same node's DWR ceiling"

TENANT = "bench"
CLIENTS = 4
WINDOW = 32
#: AIRs a second offered in the open-loop pass (TS 29.272 load of a busy MME pool).
OPEN_RATE = 10_000
V = 10415
S6A = 16777251

_SERVER = """
import os, socket, subprocess, sys, threading
from pathlib import Path
from simtrust.config import load_settings, usable_cores
from simtrust.diameter import DiameterListener, NodeSettings
from simtrust.runtime import Runtime, settle_gc
from simtrust.alerts import MemorySink
from simtrust.sbi import ConnectionDealer, SbiServer, create_sbi_app
from simtrust.subscriber import build_services
home, workers = Path(sys.argv[1]), int(sys.argv[3])
rt = Runtime.open(load_settings(env={}, home=home))
subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
peers = frozenset(f"mme{i}.bench" for i in range(int(sys.argv[2])))
listener = DiameterListener(NodeSettings("hss.bench", "bench", peers, max_inflight=4096),
                            subs.hss, subs.eir, rt.audit)
host, port = listener.start("127.0.0.1", 0)
procs, dealer = [], None
if workers > 1:
    # As `simtrust serve` with SIMTRUST_SBI_WORKERS: this process accepts, each worker
    # process (own store connection) serves the connections dealt to it.
    sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
    sbi_port = sock.getsockname()[1]
    channels = []
    for _ in range(workers):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        procs.append(subprocess.Popen([sys.executable, "-c", sys.argv[4], str(home),
                                       str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        theirs.close()
        channels.append(ours)
    for proc in procs:
        proc.stdout.readline()
    dealer = ConnectionDealer(sock, channels).start()
else:
    sbi = SbiServer(create_sbi_app(subs.udm, None), "127.0.0.1", 0, lab_mode=True)
    _, sbi_port = sbi.start()
settle_gc()  # as `simtrust serve` does once its listeners are up
print(port, sbi_port, flush=True)
sys.stdin.read()
if dealer is not None:
    dealer.stop()
    for proc in procs:
        proc.stdin.close()
        proc.wait()
else:
    sbi.stop()
listener.stop()
subs.close()
rt.close()
"""
_SBI_WORKER = """
import socket, sys
from pathlib import Path
from simtrust.config import load_settings, usable_cores
from simtrust.runtime import Runtime, settle_gc
from simtrust.alerts import MemorySink
from simtrust.sbi import SbiServer, create_sbi_app
from simtrust.subscriber import build_services
rt = Runtime.open(load_settings(env={}, home=Path(sys.argv[1])))
subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
sbi = SbiServer(create_sbi_app(subs.udm, None), "127.0.0.1", 0, lab_mode=True)
sbi.start_handed(socket.socket(fileno=int(sys.argv[2])))
settle_gc()
print("ready", flush=True)
sys.stdin.read()
sbi.stop()
subs.close()
rt.close()
"""
_SBI_BODY = (b'{"servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",'
             b' "ausfInstanceId": "6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"}')


def _cer(origin: str) -> bytes:
    return Message(257, 0x80, 0, 1, 1, [
        Avp.text(264, origin), Avp.text(296, "bench"), Avp.address(257, "127.0.0.1"),
        Avp.u32(266, 0), Avp.text(269, "bench", mandatory=False),
        Avp.grouped(260, [Avp.u32(266, V), Avp.u32(258, S6A)]),
    ]).encode()


def _air(origin: str, imsi: str, hbh: int) -> bytes:
    return Message(318, 0xC0, S6A, hbh, hbh, [
        Avp.text(263, f"{origin};1;{hbh}"), Avp.u32(277, 1),
        Avp.text(264, origin), Avp.text(296, "bench"), Avp.text(283, "bench"),
        Avp.text(1, imsi), Avp(1407, b"\x00\xf1\x10", V),
        Avp.grouped(1408, [Avp.u32(1410, 1, V)], V),
    ]).encode()


def _dwr(origin: str, hbh: int) -> bytes:
    return Message(280, 0x80, 0, hbh, hbh, [Avp.text(264, origin),
                                            Avp.text(296, "bench")]).encode()


def _read(sock: socket.socket, buf: bytearray) -> bytes:
    while len(buf) < 4 or len(buf) < (struct.unpack_from(">I", buf)[0] & 0xFFFFFF):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed")
        buf += chunk
    length = struct.unpack_from(">I", buf)[0] & 0xFFFFFF
    out = bytes(buf[:length])
    del buf[:length]
    return out


def _client(port: int, origin: str, kind: str, sims: int, count: int, first_id: int,
            latencies: list[float], errors: list[str]) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    sock.sendall(_cer(origin))
    if decode_message(_read(sock, buf)).u32(268) != 2001:
        errors.append("CER refused")
        return
    sent: dict[int, float] = {}
    # Hop-by-hop and End-to-End ids are unique across the passes of a run: a repeated
    # (Origin-Host, End-to-End) pair is a duplicate (RFC 6733 §6.1.4), answered from
    # the node's cache of recent answers without any work.
    next_id = first_id
    done = 0
    offset = int(origin[3:].split(".", maxsplit=1)[0]) * 7919

    def send() -> None:
        nonlocal next_id
        hbh = next_id
        next_id += 1
        imsi = f"00101{(offset + hbh - first_id + 10) % sims:010d}"
        sent[hbh] = time.perf_counter()
        sock.sendall(_air(origin, imsi, hbh) if kind == "air" else _dwr(origin, hbh))

    for _ in range(min(WINDOW, count)):
        send()
    while done < count:
        raw = _read(sock, buf)
        hbh = struct.unpack_from(">I", raw, 12)[0]
        started = sent.pop(hbh, None)
        if started is None:
            continue  # a watchdog from the server
        latencies.append(time.perf_counter() - started)
        if struct.unpack_from(">I", raw, 4)[0] >> 24 & 0x20:
            errors.append("error answer")
        elif kind == "air" and decode_message(raw).u32(268) != 2001:
            errors.append("AIR refused")
        done += 1
        if done + len(sent) < count:
            send()
    sock.close()


def _load(port: int, kind: str, sims: int, per_client: int,
          first_id: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_client, args=(port, f"mme{i}.bench", kind, sims,
                                                      per_client, first_id, latencies, errors))
               for i in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return len(latencies) / elapsed, sorted(latencies), len(latencies)


def _connect(port: int, origin: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    sock.sendall(_cer(origin))
    if decode_message(_read(sock, buf)).u32(268) != 2001:
        raise RuntimeError("CER refused")
    return sock


#: Result-Code 2001 DIAMETER_SUCCESS as an AIA carries it (code 268, M-bit, length 12).
_SUCCESS_AVP = struct.pack(">I I I", 268, 0x4000000C, 2001)
#: Result-Code 3004 DIAMETER_TOO_BUSY (the node's per-connection in-flight bound).
_TOO_BUSY_AVP = struct.pack(">I I I", 268, 0x4000000C, 3004)


def _open_loop(port: int, sims: int, rate: float, count: int,
               first_id: int) -> tuple[float, list[float], list[float], int]:
    """Offer ``count`` AIRs at ``rate``/s, round robin over ``CLIENTS`` connections,
    from one thread that never waits for an answer before sending what is due.

    Returns (AIAs with vectors per second from the first scheduled send to the last
    answer, sorted latencies of all answers from each AIR's *scheduled* send time,
    sorted send lags, AIRs refused 3004 DIAMETER_TOO_BUSY by the node's in-flight
    bound, which are answered but not served and so not counted in the rate).
    Requests are encoded before the clock starts, so the pacing loop only slices
    bytes; a request sent late still counts from when it was due.
    """
    socks = [_connect(port, f"mme{i}.bench") for i in range(CLIENTS)]
    origins = [f"mme{i}.bench" for i in range(CLIENTS)]
    wire = [_air(origins[n % CLIENTS], f"00101{(first_id + n) % sims:010d}", first_id + n)
            for n in range(count)]
    sel = selectors.DefaultSelector()
    pending_out: list[bytearray] = [bytearray() for _ in socks]
    inbuf: list[bytearray] = [bytearray() for _ in socks]
    for i, sock in enumerate(socks):
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
    due = [0.0] * count
    lags: list[float] = []
    latencies: list[float] = []
    bad = busy = 0
    step = 1.0 / rate
    start = time.perf_counter() + 0.05
    sent = 0
    last = start
    while len(latencies) < count:
        now = time.perf_counter()
        if now - start > count * step + 30:
            raise RuntimeError(f"open loop: {count - len(latencies)} AIRs unanswered after 30 s")
        while sent < count and start + sent * step <= now:
            due[sent] = start + sent * step
            lags.append(now - due[sent])
            pending_out[sent % CLIENTS] += wire[sent]
            sent += 1
        for i, sock in enumerate(socks):
            if pending_out[i]:
                try:
                    n = sock.send(pending_out[i])
                except BlockingIOError:
                    n = 0
                del pending_out[i][:n]
        wait = max(0.0, start + sent * step - time.perf_counter()) if sent < count else 0.05
        if any(pending_out):
            wait = min(wait, 0.0005)
        for key, _ in sel.select(wait):
            i = key.data
            try:
                chunk = socks[i].recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                raise RuntimeError("server closed an MME connection")
            got = time.perf_counter()
            buf = inbuf[i]
            buf += chunk
            while len(buf) >= 20:
                length = int.from_bytes(buf[1:4], "big")
                if len(buf) < length:
                    break
                raw = bytes(buf[:length])
                del buf[:length]
                if raw[5:8] != b"\x00\x01\x3e":
                    continue  # not an AIA: a watchdog from the server
                index = int.from_bytes(raw[12:16], "big") - first_id
                latencies.append(got - due[index])
                last = got
                if raw[4] & 0x20 and _TOO_BUSY_AVP in raw:
                    busy += 1  # the node's in-flight bound: refused, not served
                elif raw[4] & 0x20 or _SUCCESS_AVP not in raw:
                    bad += 1
    sel.close()
    for sock in socks:
        sock.close()
    if bad:
        raise RuntimeError(f"open loop: {bad} AIRs not answered with DIAMETER_SUCCESS")
    return (count - busy) / (last - start), sorted(latencies), sorted(lags), busy


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _h2load(url: str, requests: int, body: Path, log: Path, *, status: int = 200
            ) -> tuple[float, list[float]]:
    """Run h2load (h2c prior knowledge); (requests per second, sorted latencies in s)."""
    exe = shutil.which("h2load")
    if exe is None:
        raise RuntimeError("h2load (Debian nghttp2-client) is needed for the SBI figures")
    out = subprocess.run(
        [exe, "-n", str(requests), "-c", str(CLIENTS), "-m", str(WINDOW), "-d", str(body),
         "-H", "content-type: application/json", "--log-file", str(log), url],
        check=True, capture_output=True, text=True, timeout=600).stdout
    match = re.search(r"finished in [0-9.]+m?s, ([0-9.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    rows = [line.split("\t") for line in log.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    if match is None or done is None or len(rows) != requests or any(
        int(r[1]) != status for r in rows
    ):
        codes = sorted({r[1] for r in rows})
        raise RuntimeError(f"h2load failed ({len(rows)} logged, statuses {codes}): "
                           f"{out.strip().splitlines()[-9:-6]}")
    latencies = sorted(int(r[2]) / 1e6 for r in rows)
    return float(match.group(1)), latencies


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def run(quick: bool) -> BenchResult:
    sims = 200 if quick else 5_000
    per_client = 100 if quick else 2_500
    result = BenchResult(NAME)
    sbi_workers = int(os.environ.get("SIMTRUST_BENCH_SBI_WORKERS", "0")) or usable_cores()
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-corenet-") as tmp:
        home = Path(tmp) / "home"
        rt = Runtime.initialise(load_settings(env={}, home=home))
        try:
            rt.tenants.create_tenant(TENANT, "Bench fleet")
            services = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
            keys = os.urandom(32 * sims)
            inv = services.inventory
            for i in range(sims):
                body = f"89882{i:013d}"
                inv.add_sim(TENANT, SimSpec(
                    Iccid(body + str(luhn_check_digit(body))), Imsi(f"00101{i:010d}", 2),
                    secrets=SimSecrets(keys[32 * i:32 * i + 16], keys[32 * i + 16:32 * i + 32],
                                       OpKind.OPC),
                    state=SimState.ACTIVE), actor="bench")
            services.close()
        finally:
            rt.close()
        server = subprocess.Popen([sys.executable, "-c", _SERVER, str(home), str(CLIENTS),
                                   str(sbi_workers), _SBI_WORKER],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        try:
            assert server.stdout is not None
            port, sbi_port = map(int, server.stdout.readline().split())
            # Warm the connections and the interpreter on a few SIMs; each pass has its own ids.
            _load(port, "air", sims, max(10, per_client // 10), first_id=10)
            cpu0 = _cpu_s(server.pid)
            air_rate, air_lat, air_n = _load(port, "air", sims, per_client, first_id=1 << 20)
            air_cpu = (_cpu_s(server.pid) - cpu0) / air_n
            open_n = per_client * CLIENTS * (1 if quick else 3)
            open_rate, open_lat, open_lag, open_busy = _open_loop(port, sims, OPEN_RATE, open_n,
                                                       first_id=3 << 20)
            dwr_rate, dwr_lat, _ = _load(port, "dwr", sims, per_client * 4, first_id=2 << 20)
            body = Path(tmp) / "body.json"
            body.write_bytes(_SBI_BODY)
            base = f"http://127.0.0.1:{sbi_port}/nudm-ueau/v1/"
            auth_url = f"{base}imsi-001010000000007/security-information/generate-auth-data"
            _h2load(auth_url, 200, body, Path(tmp) / "warm.log")
            cpu0 = process_cpu_s(server.pid, children=True)
            sbi_rate, sbi_lat = _h2load(auth_url, per_client * CLIENTS, body,
                                        Path(tmp) / "sbi.log")
            sbi_cpu = (process_cpu_s(server.pid, children=True) - cpu0) / (per_client * CLIENTS)
            nf_rate, _ = _h2load(f"{base}nowhere", per_client * CLIENTS * 2, body,
                                 Path(tmp) / "404.log", status=404)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    result.metrics["s6a_air_per_s"] = round(open_rate, 1)
    result.metrics["s6a_p50_s"] = round(_pct(open_lat, 0.50), 6)
    result.metrics["s6a_p99_s"] = round(_pct(open_lat, 0.99), 6)
    result.metrics["s6a_offered_per_s"] = OPEN_RATE
    result.metrics["s6a_open_too_busy"] = open_busy
    result.limits["s6a_open_send_lag_p99_s"] = round(_pct(open_lag, 0.99), 6)
    result.metrics["s6a_closed_air_per_s"] = round(air_rate, 1)
    result.metrics["s6a_closed_p50_s"] = round(_pct(air_lat, 0.50), 6)
    result.metrics["s6a_closed_p99_s"] = round(_pct(air_lat, 0.99), 6)
    result.limits["s6a_server_cpu_us_per_air"] = round(air_cpu * 1e6, 1)
    result.limits["s6a_dwr_per_s"] = round(dwr_rate, 1)
    result.limits["s6a_dwr_p99_s"] = round(_pct(dwr_lat, 0.99), 6)
    result.ratio("air_to_dwr", "s6a_closed_air_per_s", "s6a_dwr_per_s")
    result.metrics["sbi_auth_per_s"] = round(sbi_rate, 1)
    result.metrics["sbi_p50_s"] = round(_pct(sbi_lat, 0.50), 6)
    result.metrics["sbi_p99_s"] = round(_pct(sbi_lat, 0.99), 6)
    result.limits["sbi_404_per_s"] = round(nf_rate, 1)
    result.limits["sbi_server_cpu_us_per_req"] = round(sbi_cpu * 1e6, 1)
    result.ratio("sbi_auth_to_404", "sbi_auth_per_s", "sbi_404_per_s")
    result.notes.update({
        "sims": sims, "requests": air_n, "open_loop_requests": open_n,
        "clients": CLIENTS, "window": WINDOW,
        "store": "sqlite", "vectors_per_air": 1,
        "load": "a second process on loopback (this one), server in a subprocess",
        "sbi": "h2c prior knowledge, simtrust.sbi H2Server (h2), h2load as the client",
        "sbi_workers": sbi_workers,
    })
    return result
