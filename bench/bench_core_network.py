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

``metrics.sbi_auth_per_s`` / ``metrics.sbi_p99_s`` / ``metrics.sbi_p50_s``:
Nudm_UEAU generate-auth-data (one 5G HE AV each, SQN in the store, audited)
over HTTP/2 with prior knowledge, *open loop* like S6a: this process offers
``SBI_OPEN_RATE`` requests a second (``metrics.sbi_offered_per_s``) round robin
over ``CLIENTS`` connections, request *i* due at ``i / SBI_OPEN_RATE`` s, and
latency is measured from that scheduled time; the rate is the 200 answers per
second from the first scheduled send to the last answer. The client is the
bench's own (raw frames built before the clock starts, the h2 library's HPACK
decoder for the answers): ``h2load --rps`` holds back what its stream limit
does not admit and times each request from its actual submission, which hides
the queueing. ``limits.sbi_open_send_lag_p99_s`` is how late this process sent,
``limits.sbi_open_client_cpu_us_per_req`` its CPU per request in that pass.
``metrics.sbi_closed_auth_per_s`` / ``metrics.sbi_closed_p99_s`` /
``metrics.sbi_closed_p50_s`` — the maximum, closed loop: ``h2load`` (nghttp2,
a second process) with ``CLIENTS`` connections and ``WINDOW`` concurrent
streams each, latencies from its per-request log (the window over the rate).
Why both: docs/decisions/corenet-sbi-open-loop.md. The SBI is served as
``simtrust serve`` serves it by default: one worker process per core
(``notes.sbi_workers``; ``SIMTRUST_BENCH_SBI_WORKERS=1``: the server process
alone), each fed connections in turn by the server process
(docs/decisions/corenet-sbi-workers.md). ``limits.sbi_404_per_s`` is the same
server answering a path that matches no route, closed loop (404 from the
router: the HTTP/2 server's own ceiling on this machine in the same run);
``limits.sbi_server_cpu_us_per_req`` is the CPU time (user + system) of the
server process and its SBI workers per generate-auth-data in the closed pass.
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

import hpack  # the h2 library's HPACK decoder for the open-loop client, not the server's

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


class _Schedule:
    """An open loop's clock: request *i* is due at ``start + i / rate`` whatever the
    answers do; its latency is taken from then, its lag is how late it was let out."""

    def __init__(self, rate: float, count: int) -> None:
        self.step, self.count = 1.0 / rate, count
        self.due = [0.0] * count
        self.lags: list[float] = []
        self.start = time.perf_counter() + 0.05
        self.sent = 0

    def take(self, now: float, what: str, unanswered: int) -> range:
        """The requests due by ``now`` and not yet let out (raise 30 s after the end)."""
        if now - self.start > self.count * self.step + 30:
            raise RuntimeError(f"open loop: {unanswered} {what} unanswered after 30 s")
        first = self.sent
        while self.sent < self.count and self.start + self.sent * self.step <= now:
            self.due[self.sent] = self.start + self.sent * self.step
            self.lags.append(now - self.due[self.sent])
            self.sent += 1
        return range(first, self.sent)

    def wait(self) -> float:
        """Seconds until the next request is due (0.05 once all are out)."""
        if self.sent < self.count:
            return max(0.0, self.start + self.sent * self.step - time.perf_counter())
        return 0.05


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
    latencies: list[float] = []
    bad = busy = 0
    clock = _Schedule(rate, count)
    due = clock.due
    last = clock.start
    while len(latencies) < count:
        for n in clock.take(time.perf_counter(), "AIRs", count - len(latencies)):
            pending_out[n % CLIENTS] += wire[n]
        for i, sock in enumerate(socks):
            if pending_out[i]:
                try:
                    n = sock.send(pending_out[i])
                except BlockingIOError:
                    n = 0
                del pending_out[i][:n]
        wait = clock.wait()
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
    return (count - busy) / (last - clock.start), sorted(latencies), sorted(clock.lags), busy


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


#: generate-auth-data requests a second offered in the SBI open-loop pass (issue 12).
SBI_OPEN_RATE = 5_000
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_BIG_WINDOW = (1 << 31) - 1


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    head = len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big")
    return head + payload


def _h2_literal(index: int, value: bytes) -> bytes:
    """A literal field without indexing, name from the static table (RFC 7541 §6.2.2):
    the block needs no encoder state, so every request carries the same bytes."""
    assert len(value) < 127
    name = bytes((index,)) if index < 15 else bytes((15, index - 15))
    return name + bytes((len(value),)) + value


class _H2Conn:
    """One h2c connection of the open-loop client: requests pre-encoded as raw frames,
    sent in order as the server's stream limit and connection window allow."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Our receive windows at their maximum: the responses never wait for a credit.
        settings = struct.pack(">HI", 2, 0) + struct.pack(">HI", 4, _BIG_WINDOW)
        self.sock.sendall(_PREFACE + _h2_frame(4, 0, 0, settings)
                          + _h2_frame(8, 0, 0, (_BIG_WINDOW - 65535).to_bytes(4, "big")))
        self.decoder = hpack.Decoder()
        self.max_streams, self.window, self.inflight = 100, 65535, 0
        self.queue: list[tuple[int, bytes]] = []  # (request index, frames) not yet let out
        self.out, self.inbuf = bytearray(), bytearray()
        self.streams: dict[int, int] = {}  # stream id -> request index
        self.status: dict[int, int] = {}
        self.block: tuple[int, bytearray] | None = None  # header block awaiting CONTINUATION
        self.settled = False
        while not self.settled:  # the server's SETTINGS before the first request
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("SBI closed the connection during the preface")
            self.frames(chunk, 0.0, [])
        self.sock.setblocking(False)

    def pump(self, body_len: int) -> None:
        let = 0
        while (let < len(self.queue) and self.inflight < self.max_streams
               and self.window >= body_len):
            index, frames = self.queue[let]
            self.streams[int.from_bytes(frames[5:9], "big")] = index
            self.out += frames
            self.inflight += 1
            self.window -= body_len
            let += 1
        del self.queue[:let]
        if self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                n = 0
            del self.out[:n]

    def frames(self, chunk: bytes, got: float, done: list[tuple[int, float, int]]) -> None:
        """Parse what arrived; append (request index, arrival, status) per ended stream."""
        buf = self.inbuf
        buf += chunk
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            kind, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(buf[9:9 + length])
            del buf[:9 + length]
            if kind == 1:  # HEADERS
                if flags & 0x08:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & 0x20:
                    payload = payload[5:]
                self.block = (sid, bytearray(payload))
            elif kind == 9 and self.block is not None:  # CONTINUATION
                self.block[1].extend(payload)
            elif kind == 4 and not flags & 1:  # SETTINGS
                for at in range(0, len(payload), 6):
                    code, value = struct.unpack_from(">HI", payload, at)
                    if code == 3:
                        self.max_streams = value
                self.out += _h2_frame(4, 1, 0, b"")
                self.settled = True
            elif kind == 8 and sid == 0:  # WINDOW_UPDATE of the connection
                self.window += int.from_bytes(payload, "big") & 0x7FFFFFFF
            elif kind == 6 and not flags & 1:  # PING
                self.out += _h2_frame(6, 1, 0, payload)
            elif kind in (3, 7):  # RST_STREAM, GOAWAY
                raise RuntimeError(f"SBI sent frame type {kind} on stream {sid}: {payload!r}")
            if kind in (1, 9) and flags & 0x04 and self.block is not None:  # END_HEADERS
                bsid, block = self.block
                self.block = None
                fields = dict(self.decoder.decode(bytes(block), raw=True))
                if b":status" in fields:
                    self.status.setdefault(bsid, int(fields[b":status"]))
            if kind in (0, 1) and flags & 0x01 and sid in self.streams:  # END_STREAM
                self.inflight -= 1
                done.append((self.streams.pop(sid), got, self.status.pop(sid, 0)))


def _sbi_open_loop(port: int, paths: list[str], body: bytes, rate: float,
                   count: int) -> tuple[float, list[float], list[float]]:
    """Offer ``count`` generate-auth-data requests at ``rate``/s over ``CLIENTS`` h2c
    connections, round robin, from one thread that never waits for an answer first;
    request ``n`` asks for ``paths[n % len(paths)]``.

    Returns (200 answers per second from the first scheduled send to the last answer,
    sorted latencies from each request's *scheduled* send time, sorted send lags).
    Frames are built before the clock starts; a request held back by the server's
    stream limit or connection window still counts from when it was due.
    """
    conns = [_H2Conn(port) for _ in range(CLIENTS)]
    # :method POST, :scheme http (static 3, 6); :path, :authority, content-type and
    # content-length as literals with static names (4, 1, 31, 28)
    rest = (_h2_literal(1, f"127.0.0.1:{port}".encode())
            + _h2_literal(31, b"application/json") + _h2_literal(28, str(len(body)).encode()))
    blocks = [b"\x83\x86" + _h2_literal(4, path.encode()) + rest for path in paths]
    wire = [_h2_frame(1, 0x04, 1 + 2 * (n // CLIENTS), blocks[n % len(blocks)])
            + _h2_frame(0, 0x01, 1 + 2 * (n // CLIENTS), body) for n in range(count)]
    sel = selectors.DefaultSelector()
    for i, conn in enumerate(conns):
        sel.register(conn.sock, selectors.EVENT_READ, i)
    latencies: list[float] = []
    done: list[tuple[int, float, int]] = []
    ok = 0
    clock = _Schedule(rate, count)
    due = clock.due
    last = clock.start
    while len(latencies) < count:
        for n in clock.take(time.perf_counter(), "SBI requests", count - len(latencies)):
            conns[n % CLIENTS].queue.append((n, wire[n]))
        for conn in conns:
            conn.pump(len(body))
        wait = clock.wait()
        if any(conn.out or conn.queue for conn in conns):
            wait = min(wait, 0.0005)
        for key, _ in sel.select(wait):
            try:
                chunk = conns[key.data].sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                raise RuntimeError("SBI closed a connection")
            conns[key.data].frames(chunk, time.perf_counter(), done)
        for index, got, status in done:
            latencies.append(got - due[index])
            last = got
            ok += status == 200
        done.clear()
    sel.close()
    for conn in conns:
        conn.sock.close()
    if ok != count:
        raise RuntimeError(f"SBI open loop: {count - ok} answers not 200")
    return ok / (last - clock.start), sorted(latencies), sorted(clock.lags)


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
            # The open loop of record asks for the SIMs round robin, as an AUSF serving
            # many UEs would (and as the S6a pass does); the one-SUPI pass beside it is
            # the hot spot: every request advances the same SIM's SQN in both workers.
            sim_paths = [f"/nudm-ueau/v1/imsi-00101{i:010d}/security-information/"
                         "generate-auth-data" for i in range(sims)]
            client0 = time.process_time()
            sbi_open_rate, sbi_open_lat, sbi_open_lag = _sbi_open_loop(
                sbi_port, sim_paths, _SBI_BODY, SBI_OPEN_RATE, open_n)
            sbi_client_cpu = (time.process_time() - client0) / open_n
            one_rate, one_lat, _ = _sbi_open_loop(
                sbi_port, [auth_url.removeprefix(f"http://127.0.0.1:{sbi_port}")], _SBI_BODY,
                SBI_OPEN_RATE, open_n)
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
    result.metrics["sbi_auth_per_s"] = round(sbi_open_rate, 1)
    result.metrics["sbi_p50_s"] = round(_pct(sbi_open_lat, 0.50), 6)
    result.metrics["sbi_p99_s"] = round(_pct(sbi_open_lat, 0.99), 6)
    result.metrics["sbi_offered_per_s"] = SBI_OPEN_RATE
    result.limits["sbi_open_send_lag_p99_s"] = round(_pct(sbi_open_lag, 0.99), 6)
    result.metrics["sbi_one_supi_auth_per_s"] = round(one_rate, 1)
    result.metrics["sbi_one_supi_p50_s"] = round(_pct(one_lat, 0.50), 6)
    result.metrics["sbi_one_supi_p99_s"] = round(_pct(one_lat, 0.99), 6)
    result.limits["sbi_open_client_cpu_us_per_req"] = round(sbi_client_cpu * 1e6, 1)
    result.metrics["sbi_closed_auth_per_s"] = round(sbi_rate, 1)
    result.metrics["sbi_closed_p50_s"] = round(_pct(sbi_lat, 0.50), 6)
    result.metrics["sbi_closed_p99_s"] = round(_pct(sbi_lat, 0.99), 6)
    result.limits["sbi_404_per_s"] = round(nf_rate, 1)
    result.limits["sbi_server_cpu_us_per_req"] = round(sbi_cpu * 1e6, 1)
    result.ratio("sbi_auth_to_404", "sbi_closed_auth_per_s", "sbi_404_per_s")
    result.notes.update({
        "sims": sims, "requests": air_n, "open_loop_requests": open_n,
        "clients": CLIENTS, "window": WINDOW,
        "store": "sqlite", "vectors_per_air": 1,
        "load": "a second process on loopback (this one), server in a subprocess",
        "sbi": "h2c prior knowledge, simtrust.sbi H2Server (h2); h2load closed loop on "
               "one SUPI, this process's raw-frame client open loop over all SIMs round "
               "robin (sbi_*) and on one SUPI (sbi_one_supi_*)",
        "sbi_workers": sbi_workers,
    })
    return result
