"""RADIUS AAA on loopback: access, accounting and EAP-AKA' rates, next to this machine's
UDP ceiling and FreeRADIUS 3.2 answering PAP under the same load generator.

Figures (issue 13), each measured with the load generated from this process against a
server in another process:

- ``metrics.access_per_s`` — the most Access-Requests (3GPP-IMSI, IMEISV, serving
  network, APN, PAP) answered per second with Accept, attach decision (audited) and
  address, in a closed loop of ``WINDOW`` requests in flight (``access_closed_p50_s`` /
  ``access_closed_p99_s``: latency in that loop, which by Little's law is about
  ``WINDOW`` / rate whatever the server does).
- ``metrics.access_p50_s`` / ``metrics.access_p99_s`` — latency at an offered rate of
  ``ACCESS_OFFERED`` requests/s in an open loop (wrk2-style: sends follow a fixed
  schedule whatever is answered, latency from each request's scheduled send time, so
  there is no coordinated omission; docs/decisions/aaa-open-loop-latency.md);
  ``access_open_per_s`` the rate answered meanwhile, ``notes.access_open`` the
  offered rate, answered and lost requests and the generator's own send lag.
  ``limits.udp_echo_open_p99_s`` / ``limits.freeradius_open_p99_s``: the same open
  loop against the UDP echo and FreeRADIUS. ``access_light_p50_s`` /
  ``access_light_p99_s``: closed loop with ``LIGHT_WINDOW`` in flight (a lightly
  loaded server).
- ``metrics.accounting_per_s`` — Interim-Updates answered after their group commit
  to SQLite (durable: see tests/aaa/test_durability.py).
- ``metrics.eap_aka_prime_per_s`` — whole EAP-AKA' authentications: EAP-Identity
  (anonymous), AKA-Identity, AKA-Challenge, Success = 3 RADIUS exchanges, the AuC
  advancing the SQN in the store (audited) for each, ``EAP_WINDOW`` in flight; the
  generator plays the USIM (simtrust's MILENAGE) and the supplicant.
  ``notes.eap_cpu``: where the CPU went meanwhile — the server's CPU and its
  threads' wait for a CPU per authentication, the generator's wait, and the cores
  every other process on the machine used (the phase lasts about a second, so its
  rate is one sample of what the machine's other jobs did then:
  docs/decisions/aaa-eap-cpu.md).
- ``limits.fsync_p50_s`` / ``limits.fsync_p99_s`` — an 8 KiB write and ``fsync`` on the
  file system of the store, 200 times: the floor under any answer given only once its
  audit record is on disk (an answer waits for the fsync in progress and its own).
- ``limits.udp_echo_per_s`` — a Python UDP echo process answering the same generator
  with the same window: the ceiling of the generator, loopback and one Python socket.
- ``limits.freeradius_pap_per_s`` / ``limits.freeradius_p99_s`` — FreeRADIUS 3.2 from
  Debian (``freeradius -f`` with a configuration written here: one client, ``files`` and
  ``pap``, users file with every SIM), same requests minus the 3GPP attributes.
- ``ratios.access_vs_freeradius`` — simtrust's access rate over FreeRADIUS's.

The server runs as ``simtrust serve`` runs it by default, in one process;
``SIMTRUST_BENCH_RADIUS_WORKERS=N`` (0: one per core) runs N RADIUS worker processes on
one steered ``SO_REUSEPORT`` group per port instead (``notes.radius_workers``;
docs/decisions/aaa-workers.md), and measurement starts once every worker answers.

The generator is not the limit: it is one process sending pre-built datagrams (EAP:
playing the USIM and the supplicant), and the same generator drives the UDP echo at
~10x simtrust's access rate. ``notes.generator_cpu_us`` gives its own CPU time per
request (per authentication for EAP) in each phase, to compare with the server's.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from simtrust.aaa import (
    AkaMessage,
    Attr,
    Code,
    EapPacket,
    Packet,
    Vendor,
    aka_prime_keys,
    decode,
    decode_eap,
    hide_password,
    identity_value,
    mac_of,
)
from simtrust.benchmark import BenchResult, machine_busy_s, process_cpu_s, process_sched_s
from simtrust.config import load_settings, usable_cores
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    luhn_check_digit,
)
from simtrust.subscriber.auc import Milenage, Usim, ck_ik_prime

NAME = "radius"
DESCRIPTION = ("RADIUS access/accounting/EAP-AKA' rates on loopback vs the UDP ceiling "
               "and FreeRADIUS 3.2 PAP")

TENANT = "bench"
APN = "bench.iot"
SECRET = b"bench-radius-secret"
WINDOW = 64
LIGHT_WINDOW = 2
ACCESS_OFFERED = 10_000  # issue 13: p99 <= 5 ms at 10,000 Access-Requests/s
OPEN_SECONDS = 3.0
EAP_WINDOW = 32
K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")

_SERVER = """
import json, sys
from pathlib import Path
from simtrust.aaa import RadiusListener
from simtrust.config import load_settings, usable_cores
from simtrust.runtime import Runtime, settle_gc
rt = Runtime.open(load_settings(env={}, home=Path(sys.argv[1])))
auth = RadiusListener(rt.aaa.server, "127.0.0.1", 0, "auth").start()
acct = RadiusListener(rt.aaa.server, "127.0.0.1", 0, "acct").start()
settle_gc()  # as `simtrust serve` does once its listeners are up
print(json.dumps({"auth": auth.address[1], "acct": acct.address[1]}), flush=True)
sys.stdin.read()
print(json.dumps({"counters": rt.aaa.server.counters,
                  "batches": rt.aaa.accounting.batches,
                  "committed": rt.aaa.accounting.committed}), flush=True)
auth.close(); acct.close(); rt.close()
"""

# As `simtrust serve` runs RADIUS with SIMTRUST_RADIUS_WORKERS above 1: N worker
# processes on one steered SO_REUSEPORT group per port (docs/decisions/aaa-workers.md),
# each with the settings of the home alone (as env={} above); the counters are summed
# from what each worker writes as it stops.
_WORKERS = """
import json, os, sys, tempfile
from pathlib import Path
for key in [k for k in os.environ if k.startswith("SIMTRUST_")]:
    del os.environ[key]
os.environ["SIMTRUST_HOME"] = sys.argv[1]
stats = tempfile.mkdtemp(prefix="simtrust-radius-stats-")
os.environ["SIMTRUST_RADIUS_WORKER_STATS"] = stats
from simtrust.cli._radius_workers import start_radius_workers
count = int(sys.argv[2])
pool = start_radius_workers({"auth": ("127.0.0.1", 0), "acct": ("127.0.0.1", 0)}, count)
print(json.dumps({k: a[1] for k, a in pool.addresses.items()}), flush=True)
sys.stdin.read()
pool.stop()
total = {"counters": {}, "batches": 0, "committed": 0, "workers": count}
for path in Path(stats).glob("worker-*.json"):
    one = json.loads(path.read_text())
    for k, v in one["counters"].items():
        total["counters"][k] = total["counters"].get(k, 0) + v
    total["batches"] += one["batches"]; total["committed"] += one["committed"]
    path.unlink()
os.rmdir(stats)
print(json.dumps(total), flush=True)
"""

_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, addr = s.recvfrom(4097)
    s.sendto(data, addr)
"""

_FREERADIUS_CONF = """
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
name = freeradius
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
libdir = /usr/lib/freeradius
pidfile = {dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
log {{
  destination = stderr
  auth = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}}
thread pool {{
  start_servers = {threads}
  max_servers = {threads}
  min_spare_servers = 1
  max_spare_servers = {threads}
  max_requests_per_server = 0
  max_queue_size = 65536
}}
client bench {{
  ipaddr = 127.0.0.1
  secret = {secret}
}}
modules {{
  pap {{
    normalise = yes
  }}
  files {{
    filename = {dir}/users
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  authorize {{
    files
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
  }}
}}
"""


def _imsi(i: int) -> str:
    return f"00101{i:010d}"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- load generator ---------------------------------------------------------------------


def _blast(port: int, packets: list[bytes], window: int, *, timeout: float = 2.0
           ) -> tuple[float, float, float, int]:
    """Send ``packets`` keeping ``window`` unanswered; (answers/s, p50, p99, answered)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(timeout)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    next_index = 0
    total = len(packets)
    start = time.perf_counter()
    lost = 0
    try:
        while next_index < total or sent_at:
            while next_index < total and len(sent_at) < window:
                packet = packets[next_index]
                sent_at[packet[1]] = time.perf_counter()
                sock.send(packet)
                next_index += 1
            try:
                data = sock.recv(4096)
            except (TimeoutError, ConnectionRefusedError):
                # No answer in time (or nobody listening yet): those requests are lost.
                lost += len(sent_at)
                sent_at.clear()
                if next_index >= total:
                    break
                continue
            began = sent_at.pop(data[1], None)
            if began is not None:
                latencies.append(time.perf_counter() - began)
    finally:
        sock.close()
    elapsed = time.perf_counter() - start
    answered = len(latencies)
    if not latencies:
        return 0.0, 0.0, 0.0, 0
    latencies.sort()
    p99 = latencies[min(answered - 1, int(answered * 0.99))]
    return answered / elapsed, statistics.median(latencies), p99, answered


class OpenLoop:
    """What an open-loop run measured: answers/s, p50 and p99 latency, answered, lost,
    and how late the generator's sends were against their schedule (its own limit)."""

    __slots__ = ("answered", "lost", "p50", "p99", "rate", "send_lag_p99")

    def __init__(self, rate: float, p50: float, p99: float, answered: int, lost: int,
                 send_lag_p99: float) -> None:
        self.rate, self.p50, self.p99 = rate, p50, p99
        self.answered, self.lost, self.send_lag_p99 = answered, lost, send_lag_p99


def _open_loop(port: int, packets: list[bytes], offered: float, *, sockets: int = 8,
               drain: float = 2.0) -> OpenLoop:
    """Send ``packets[n]`` at ``start + n / offered``, whatever has been answered (an open
    loop, as wrk2 does): each latency runs from the request's *scheduled* send time, so
    a server (or generator) falling behind shows in the latencies instead of slowing the
    offered load (no coordinated omission). Requests are spread over ``sockets`` source
    ports, 256 identifiers each; one still unanswered when its (port, identifier) comes
    round again, or ``drain`` seconds after the last send, is lost and counts as slower
    than every answered one in the percentiles."""
    socks = []
    for _n in range(sockets):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    index = {sock.fileno(): k for k, sock in enumerate(socks)}
    total = len(packets)
    interval = 1.0 / offered
    outstanding: dict[tuple[int, int], int] = {}
    latencies: list[float] = []
    lags: list[float] = []
    lost = 0
    sent = 0
    last_answer = start = time.perf_counter() + 0.01
    try:
        while True:
            now = time.perf_counter()
            while sent < total and start + sent * interval <= now:
                k = (sent // 256) % sockets
                key = (k, packets[sent][1])
                if outstanding.pop(key, None) is not None:
                    lost += 1
                outstanding[key] = sent
                socks[k].send(packets[sent])
                lags.append(now - (start + sent * interval))
                sent += 1
            if sent < total:
                wait = max(0.0, start + sent * interval - time.perf_counter())
            elif outstanding and now < start + total * interval + drain:
                wait = start + total * interval + drain - now
            else:
                break
            ready, _w, _x = select.select(socks, [], [], wait)
            got = time.perf_counter()
            for sock in ready:
                k = index[sock.fileno()]
                while True:
                    try:
                        data = sock.recv(4096)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    n = outstanding.pop((k, data[1]), None)
                    if n is not None:
                        latencies.append(got - (start + n * interval))
                        last_answer = got
    finally:
        for sock in socks:
            sock.close()
    lost += len(outstanding)
    answered = len(latencies)
    latencies.sort()
    lags.sort()

    def pct(q: float) -> float:
        rank = int((answered + lost) * q)
        return latencies[rank] if rank < answered else drain

    return OpenLoop(answered / max(1e-9, last_answer - start), pct(0.5), pct(0.99),
                    answered, lost, lags[int(len(lags) * 0.99)] if lags else 0.0)


def _fsync_latency(directory: Path, count: int) -> tuple[float, float]:
    """p50 and p99 of an 8 KiB write + fsync in ``directory`` (the store's disk)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for n in range(count):
            os.pwrite(fd, os.urandom(8192), (n % 64) * 8192)
            began = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return times[count // 2], times[min(count - 1, int(count * 0.99))]


def _access_packets(count: int, sims: int, *, three_gpp: bool) -> list[bytes]:
    """Access-Requests with PAP (User-Password) and, for simtrust, the 3GPP attributes."""
    out = []
    for n in range(count):
        i = n % sims
        packet = Packet(Code.ACCESS_REQUEST, n % 256, os.urandom(16))
        imsi = _imsi(i)
        packet.add(Attr.USER_NAME, imsi.encode())
        packet.add(Attr.USER_PASSWORD, hide_password(b"pw", SECRET, packet.authenticator))
        if three_gpp:
            packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, imsi.encode())
            packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMEISV, f"35209900{i % 1_000_000:06d}01"
                              .encode())
            packet.add_vendor(Vendor.TGPP, Vendor.TGPP_SGSN_MCC_MNC, b"00101")
            packet.add(Attr.CALLED_STATION_ID, APN.encode())
        out.append(packet.encode())
    return out


def _accounting_packets(count: int, sessions: int, rounds_base: int) -> list[bytes]:
    out = []
    for n in range(count):
        s = n % sessions
        packet = Packet(Code.ACCOUNTING_REQUEST, n % 256)
        packet.add_int(Attr.ACCT_STATUS_TYPE, 3)
        packet.add(Attr.ACCT_SESSION_ID, f"bench-{s}".encode())
        packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, _imsi(s).encode())
        packet.add_int(Attr.ACCT_INPUT_OCTETS, 1000 * (rounds_base + n // sessions + 1))
        packet.add_int(Attr.ACCT_OUTPUT_OCTETS, 2000 * (rounds_base + n // sessions + 1))
        packet.add_int(Attr.ACCT_SESSION_TIME, 60 * (rounds_base + n // sessions + 1))
        out.append(packet.sign_request(SECRET))
    return out


# -- EAP-AKA' generator --------------------------------------------------------------


class _EapClient:
    """One supplicant + USIM, stepping through an EAP-AKA' authentication."""

    def __init__(self, index: int) -> None:
        self.imsi = _imsi(index)
        self.usim = Usim(Milenage(K, OPC))
        self.eap = b""
        self.state: bytes | None = None
        self.identity = b""
        self.done = False

    def start(self) -> None:
        anonymous = b"anonymous@wlan.mnc001.mcc001.3gppnetwork.org"
        self.eap = EapPacket(2, 0, b"\x01" + anonymous).encode()
        self.state = None
        self.done = False

    def request(self, identifier: int) -> bytes:
        packet = Packet(Code.ACCESS_REQUEST, identifier, os.urandom(16))
        packet.add(Attr.USER_NAME, b"anonymous")
        for offset in range(0, len(self.eap), 253):
            packet.add(Attr.EAP_MESSAGE, self.eap[offset : offset + 253])
        if self.state is not None:
            packet.add(Attr.STATE, self.state)
        packet.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
        return packet.sign_access_request(SECRET)

    def answer(self, reply: bytes) -> bool:
        """Feed a RADIUS reply; True when the authentication is over (accepted)."""
        packet = decode(reply)
        if packet.code == Code.ACCESS_ACCEPT:
            self.done = True
            return True
        if packet.code != Code.ACCESS_CHALLENGE:
            raise RuntimeError(f"EAP-AKA' failed: code {packet.code}")
        self.state = packet.get(Attr.STATE)
        eap = decode_eap(b"".join(packet.get_all(Attr.EAP_MESSAGE)))
        message = AkaMessage.decode(eap.data)
        response = AkaMessage(50, message.subtype)
        if message.subtype == 5:
            self.identity = f"6{self.imsi}@wlan.mnc001.mcc001.3gppnetwork.org".encode()
            response.add(14, identity_value(self.identity))
            self.eap = EapPacket(2, eap.identifier, response.encode_data()).encode()
            return False
        rand = message.get(1)
        autn = message.get(2)
        kdf_input = message.get(23)
        if rand is None or autn is None or kdf_input is None:
            raise RuntimeError("EAP-AKA' challenge without RAND, AUTN or AT_KDF_INPUT")
        aka, self.usim = self.usim.authenticate(rand[2:], autn[2:])
        name = kdf_input[2 : 2 + int.from_bytes(kdf_input[:2], "big")]
        ck_p, ik_p = ck_ik_prime(aka.ck, aka.ik, name, autn[2:8])
        keys = aka_prime_keys(self.identity, ck_p, ik_p)
        response.add(3, (8 * len(aka.res)).to_bytes(2, "big") + aka.res)
        response.add(11, bytes(18))
        body = EapPacket(2, eap.identifier, response.encode_data()).encode()
        self.eap = body[:-16] + mac_of(50, keys.k_aut, body)
        return False


def _eap_run(port: int, clients: int, per_client: int) -> tuple[float, int]:
    """Whole EAP-AKA' authentications per second with ``clients`` in flight."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(5)
    peers = {i: _EapClient(i) for i in range(clients)}
    remaining = dict.fromkeys(peers, per_client)
    for peer in peers.values():
        peer.start()
    completed = 0
    start = time.perf_counter()
    for i, peer in peers.items():
        sock.send(peer.request(i))
    active = len(peers)
    while active:
        data = sock.recv(4096)
        i = data[1]
        peer = peers[i]
        if peer.answer(data):
            completed += 1
            remaining[i] -= 1
            if remaining[i] == 0:
                active -= 1
                continue
            peer.start()
        sock.send(peer.request(i))
    elapsed = time.perf_counter() - start
    sock.close()
    return completed / elapsed, completed


# -- servers ------------------------------------------------------------------------


def _prepare(home: Path, sims: int) -> None:
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant(TENANT, "Bench fleet")
        inventory = rt.subscriber.inventory
        inventory.create_apn(TENANT, APN, actor="bench", pool="10.64.0.0/16")
        for i in range(sims):
            body = f"89882{i:013d}"
            inventory.add_sim(TENANT, SimSpec(
                Iccid(body + str(luhn_check_digit(body))), Imsi(_imsi(i), 2),
                SimSecrets(K, OPC, OpKind.OPC), state=SimState.ACTIVE, apn=APN,
            ), actor="bench")
        rt.aaa.clients.add("127.0.0.1/32", SECRET.decode(), actor="bench", name="bench-gw")
    finally:
        rt.close()


def _radius_workers() -> int:
    """Server processes: ``SIMTRUST_BENCH_RADIUS_WORKERS`` (default 1, the one-process
    server ``simtrust serve`` runs by default; 0: one per core)."""
    raw = os.environ.get("SIMTRUST_BENCH_RADIUS_WORKERS", "1")
    count = int(raw) if raw.isdigit() else 1
    return count or usable_cores()


def _wait_ready(ports: dict[str, int], workers: int) -> None:
    """Until every worker answers: one Access-Request and one Accounting-Request steered
    to each (Request Authenticator's first octet, Acct-Session-Id's last octet, modulo the
    worker count: aaa._steer), so no measurement starts while a worker is still loading."""
    for w in range(workers):
        packet = Packet(Code.ACCESS_REQUEST, w, bytes([w]) + os.urandom(15))
        packet.add(Attr.USER_NAME, b"probe")
        acct = Packet(Code.ACCOUNTING_REQUEST, w)
        acct.add_int(Attr.ACCT_STATUS_TYPE, 7)  # Accounting-On: no session written
        acct.add(Attr.ACCT_SESSION_ID, bytes([ord("0") + (w - ord("0")) % workers]))
        for port, probe in ((ports["auth"], packet.encode()),
                            (ports["acct"], acct.sign_request(SECRET))):
            for _attempt in range(600):
                if _blast(port, [probe], 1, timeout=0.2)[3]:
                    break
            else:
                raise RuntimeError(f"RADIUS worker {w} does not answer")


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _freeradius(directory: Path, sims: int) -> tuple[subprocess.Popen[bytes], int] | None:
    exe = shutil.which("freeradius") or shutil.which("radiusd")
    if exe is None:
        return None
    port = _free_udp_port()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "radiusd.conf").write_text(_FREERADIUS_CONF.format(
        dir=directory, port=port, secret=SECRET.decode(), threads=os.cpu_count() or 2))
    with (directory / "users").open("w") as fh:
        for i in range(sims):
            fh.write(f'{_imsi(i)} Cleartext-Password := "pw"\n'
                     f"\tFramed-IP-Address = 10.65.{i // 256 % 256}.{i % 256}\n")
    # cwd: FreeRADIUS may leave a log file named after its destination where it runs
    proc = subprocess.Popen([exe, "-f", "-d", str(directory), "-l", "stdout"], cwd=directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = _access_packets(1, 1, three_gpp=False)
    for _attempt in range(100):
        _rate, _p50, _p99, answered = _blast(port, probe, 1, timeout=0.2)
        if answered:
            return proc, port
        if proc.poll() is not None:
            return None
        time.sleep(0.1)
    proc.kill()
    return None


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _per(cpu_start: float, count: int) -> float:
    """This process's CPU microseconds per item since ``cpu_start``."""
    return round((time.process_time() - cpu_start) / count * 1e6, 1)


class _Window:
    """Where the CPU went while one phase ran: the server's processes, this generator
    and every other process on the machine (docs/decisions/aaa-eap-cpu.md, "why the
    EAP-AKA' figure varies from run to run"). A phase of a second or less is one
    sample of what the machine's other jobs did meanwhile; these figures say how much
    of a run's rate was theirs to take."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.started = time.perf_counter()
        self.busy = machine_busy_s()
        self.server = process_cpu_s(server_pid, children=True)
        self.generator = process_cpu_s(os.getpid())
        self.server_wait = process_sched_s(server_pid, children=True)[1]
        self.generator_wait = process_sched_s(os.getpid())[1]

    def close(self, count: int) -> dict[str, float]:
        """The window's figures, per item where it says so (``count`` items)."""
        seconds = time.perf_counter() - self.started
        # CPU in the 10 ms ticks of /proc/PID/stat, as the machine's busy time is
        # counted (and with the threads that ended meanwhile); waits in nanoseconds
        server = process_cpu_s(self.pid, children=True) - self.server
        generator = process_cpu_s(os.getpid()) - self.generator
        others = machine_busy_s() - self.busy - server - generator
        server_wait = process_sched_s(self.pid, children=True)[1] - self.server_wait
        generator_wait = process_sched_s(os.getpid())[1] - self.generator_wait
        return {
            "seconds": round(seconds, 3),
            "server_cpu_us": round(server / count * 1e6, 1),
            "server_cpu_wait_us": round(server_wait / count * 1e6, 1),
            "generator_cpu_wait_us": round(generator_wait / count * 1e6, 1),
            # a window of about a second reads a few ticks off, so a quiet machine
            # may leave a small negative remainder (read as 0)
            "other_processes_cores": round(max(0.0, others / seconds), 2),
        }


def _measure(fn: Callable[[], tuple[float, float, float, int]], repeats: int
             ) -> tuple[float, float, float, int]:
    best = (0.0, 0.0, 0.0, 0)
    for _ in range(repeats):
        got = fn()
        if got[0] > best[0]:
            best = got
    return best


def run(quick: bool) -> BenchResult:
    sims = 200 if quick else 5_000
    access_n = 1_000 if quick else 30_000
    acct_n = 1_000 if quick else 30_000
    eap_per_client = 2 if quick else 40
    repeats = 1 if quick else 2
    result = BenchResult(NAME)
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-radius-") as tmp:
        home = Path(tmp) / "home"
        _prepare(home, sims)
        workers = _radius_workers()
        server = _spawn(_WORKERS, str(home), str(workers)) if workers > 1 else \
            _spawn(_SERVER, str(home))
        echo = _spawn(_ECHO)
        fr = None
        try:
            assert server.stdout is not None
            assert echo.stdout is not None
            ports = json.loads(server.stdout.readline())
            if workers > 1:
                _wait_ready(ports, workers)
            echo_port = int(echo.stdout.readline())
            # Warm up: every SIM attaches once (binds nothing, leases its pool address).
            _blast(ports["auth"], _access_packets(sims, sims, three_gpp=True), WINDOW)
            access = _access_packets(access_n, sims, three_gpp=True)
            cpu = time.process_time()
            rate, p50, p99, answered = _measure(lambda: _blast(ports["auth"], access, WINDOW),
                                                repeats)
            generator = {"access": _per(cpu, access_n * repeats)}
            result.metrics["access_per_s"] = round(rate, 1)
            result.metrics["access_closed_p50_s"] = round(p50, 6)
            result.metrics["access_closed_p99_s"] = round(p99, 6)
            result.notes["access_answered"] = answered
            offered = ACCESS_OFFERED if not quick else 2_000
            open_n = int(offered * (OPEN_SECONDS if not quick else 0.5))
            cpu = time.process_time()
            ol = _open_loop(ports["auth"], _access_packets(open_n, sims, three_gpp=True),
                            offered)
            generator["access_open"] = _per(cpu, open_n)
            result.metrics["access_open_per_s"] = round(ol.rate, 1)
            result.metrics["access_p50_s"] = round(ol.p50, 6)
            result.metrics["access_p99_s"] = round(ol.p99, 6)
            result.notes["access_open"] = {
                "offered_per_s": offered, "sent": open_n, "answered": ol.answered,
                "lost": ol.lost, "send_lag_p99_s": round(ol.send_lag_p99, 6)}
            light = access[: max(200, access_n // 10)]
            _lrate, lp50, lp99, _ln = _blast(ports["auth"], _access_packets(
                len(light), sims, three_gpp=True), LIGHT_WINDOW)
            result.metrics["access_light_p50_s"] = round(lp50, 6)
            result.metrics["access_light_p99_s"] = round(lp99, 6)
            acct_rates = []
            cpu = time.process_time()
            for r in range(repeats):
                acct = _accounting_packets(acct_n, sims, r * (acct_n // sims + 1))
                acct_rates.append(_blast(ports["acct"], acct, WINDOW))
            generator["accounting"] = _per(cpu, acct_n * repeats)
            best = max(acct_rates, key=lambda t: t[0])
            result.metrics["accounting_per_s"] = round(best[0], 1)
            result.metrics["accounting_p99_s"] = round(best[2], 6)
            window = _Window(server.pid)
            cpu = time.process_time()
            eap_rate, eap_done = _eap_run(ports["auth"], min(EAP_WINDOW, sims), eap_per_client)
            generator["eap_aka_prime"] = _per(cpu, max(1, eap_done))
            result.notes["eap_cpu"] = window.close(max(1, eap_done))
            result.notes["generator_cpu_us"] = generator
            result.metrics["eap_aka_prime_per_s"] = round(eap_rate, 1)
            result.notes["eap_aka_prime_completed"] = eap_done
            echo_packets = _access_packets(access_n, sims, three_gpp=True)
            erate, _ep50, ep99, _n = _measure(lambda: _blast(echo_port, echo_packets, WINDOW),
                                              repeats)
            result.limits["udp_echo_per_s"] = round(erate, 1)
            result.limits["udp_echo_p99_s"] = round(ep99, 6)
            echo_open = _open_loop(echo_port, echo_packets[:open_n], offered)
            result.limits["udp_echo_open_p99_s"] = round(echo_open.p99, 6)
            fsync_p50, fsync_p99 = _fsync_latency(Path(tmp), 50 if quick else 200)
            result.limits["fsync_p50_s"] = round(fsync_p50, 6)
            result.limits["fsync_p99_s"] = round(fsync_p99, 6)
            started = _freeradius(Path(tmp) / "freeradius", sims)
            if started is not None:
                fr, fr_port = started
                fr_packets = _access_packets(access_n, sims, three_gpp=False)
                frate, _fp50, fp99, fanswered = _measure(
                    lambda: _blast(fr_port, fr_packets, WINDOW), repeats)
                result.limits["freeradius_pap_per_s"] = round(frate, 1)
                result.limits["freeradius_p99_s"] = round(fp99, 6)
                fr_open = _open_loop(fr_port, fr_packets[:open_n], offered)
                result.limits["freeradius_open_p99_s"] = round(fr_open.p99, 6)
                result.notes["freeradius_answered"] = fanswered
                result.ratio("access_vs_freeradius", "access_per_s", "freeradius_pap_per_s")
            else:
                result.notes["freeradius"] = "not available on this machine"
            result.ratio("access_vs_udp_echo", "access_per_s", "udp_echo_per_s")
            result.ratio("accounting_vs_udp_echo", "accounting_per_s", "udp_echo_per_s")
            # An EAP-AKA' authentication is three RADIUS exchanges.
            result.ratio("eap_aka_prime_vs_udp_echo", "eap_aka_prime_per_s", "udp_echo_per_s",
                         divisor=3)
            server.stdin.close()  # type: ignore[union-attr]
            stats = json.loads(server.stdout.readline() or "{}")
            result.notes["server"] = {k: v for k, v in stats.get("counters", {}).items() if v}
            result.notes["accounting_batches"] = stats.get("batches")
            result.notes["accounting_committed"] = stats.get("committed")
            result.notes.update(radius_workers=workers, sims=sims, window=WINDOW,
                                eap_window=min(EAP_WINDOW, sims),
                                store="sqlite", cpus=os.cpu_count(),
                                shared_machine="other engineers' jobs ran at the same time")
        finally:
            for proc in (server, echo):
                _stop(proc)
            if fr is not None:
                _stop(fr)
    return result
