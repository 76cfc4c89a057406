"""RADIUS served by several worker processes on one port (``SIMTRUST_RADIUS_WORKERS``).

The steering program is checked against the kernel itself (real sockets of one
``SO_REUSEPORT`` group); the rest runs real processes: ``simtrust serve`` with two
RADIUS workers answering Debian's radclient, metering a volume cap in a worker while
only the master sends the Disconnect-Request, ending its workers when the master is
killed with SIGKILL; and a two-worker pool drawing EAP-AKA' vectors for one SIM at the
same time, whose SQNs (recovered with the tests' own MILENAGE) are each issued once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simtrust.aaa import Attr, Code, Packet, Vendor, decode, steered_sockets
from simtrust.aaa._steer import steering_program
from simtrust.config import load_settings
from simtrust.detect import QueuedSimEventLog, SimEvent
from simtrust.policy import policy_from_dict
from simtrust.runtime import Runtime
from simtrust.subscriber import OpKind, SimSecrets, SimSpec, SimState
from tests.diameter.reference import f2345

from .conftest import APN, K1, OPC1, SECRET, TENANT, iccid, imeisv, imsi, radclient, wait_until
from .peers import DISCONNECT_REQUEST, CoaReceiver

REALM = "wlan.mnc001.mcc001.3gppnetwork.org"
IND_BITS = 5  # SQN = SEQ || IND (TS 33.102 C.1.2), the inventory's default


# -- steering, against the kernel ------------------------------------------------------


def _received(socks: list[socket.socket]) -> list[int]:
    """Indexes of the sockets that hold a datagram (each drained)."""
    got = []
    for index, sock in enumerate(socks):
        sock.settimeout(0.0)
        try:
            while True:
                sock.recv(5000)
                got.append(index)
        except BlockingIOError:
            pass
    return got


def _deliver(socks: list[socket.socket], sender: socket.socket, wire: bytes) -> list[int]:
    sender.sendto(wire, socks[0].getsockname())
    return wait_until(lambda: _received(socks), timeout=10)  # type: ignore[return-value]


@pytest.fixture
def senders() -> Iterator[list[socket.socket]]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_state_brings_an_eap_round_back_to_its_worker(senders: list[socket.socket]) -> None:
    group = steered_sockets("127.0.0.1", 0, "auth", 3)
    try:
        for worker in (2, 0, 1, 2):
            packet = Packet(Code.ACCESS_REQUEST, worker, os.urandom(16))
            packet.add(Attr.USER_NAME, b"anonymous")
            packet.add(Attr.EAP_MESSAGE, bytes(300)[:253])
            packet.add(Attr.STATE, bytes((worker,)) + os.urandom(15))
            packet.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
            # whichever source port (gateway) the round comes from
            for sender in senders:
                assert [worker] == _deliver(group, sender, packet.encode())
        # No State: the Request Authenticator's first octet modulo the group size.
        for first in range(6):
            packet = Packet(Code.ACCESS_REQUEST, 7, bytes((first,)) + os.urandom(15))
            packet.add(Attr.USER_NAME, b"meter")
            assert [first % 3] == _deliver(group, senders[first % 2], packet.encode())
    finally:
        for sock in group:
            sock.close()


def test_a_session_accounting_and_retransmissions_stay_on_one_worker(
    senders: list[socket.socket],
) -> None:
    group = steered_sockets("127.0.0.1", 0, "acct", 2)
    try:
        for session, worker in ((b"sess-0", 0), (b"sess-1", 1), (b"abc", 1)):
            for status in (1, 3, 3, 2):  # Start, Interim, Interim, Stop
                packet = Packet(Code.ACCOUNTING_REQUEST, status)
                packet.add_int(Attr.ACCT_STATUS_TYPE, status)
                packet.add(Attr.ACCT_SESSION_ID, session)
                wire = packet.sign_request(SECRET.encode())
                first = _deliver(group, senders[0], wire)
                again = _deliver(group, senders[1], wire)  # the retransmission
                assert [worker] == first == again
    finally:
        for sock in group:
            sock.close()


def test_walk_stops_at_a_malformed_attribute(senders: list[socket.socket]) -> None:
    group = steered_sockets("127.0.0.1", 0, "auth", 2)
    try:
        # An attribute of length 0 after the header: the walk falls back to the
        # authenticator instead of looping or reading beyond the datagram.
        wire = bytes((Code.ACCESS_REQUEST, 1, 0, 26)) + bytes((1,)) + os.urandom(15) + \
            bytes((1, 0, 24, 4, 0, 0))
        assert [1] == _deliver(group, senders[0], wire)
    finally:
        for sock in group:
            sock.close()
    with pytest.raises(ValueError, match="workers"):
        steering_program("auth", 0)


# -- real processes --------------------------------------------------------------------


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(home: Path, sims: int, coa_port: int | None = None) -> None:
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant(TENANT, "Acme Meters")
        inventory = rt.subscriber.inventory
        inventory.create_apn(TENANT, APN, actor="test", pool="10.45.0.0/24")
        for n in range(1, sims + 1):
            inventory.add_sim(TENANT, SimSpec(iccid(n), imsi(n), SimSecrets(K1, OPC1, OpKind.OPC),
                                              state=SimState.ACTIVE, apn=APN), actor="test")
        extra = {} if coa_port is None else {"coa_port": coa_port}
        rt.aaa.clients.add("127.0.0.1/32", SECRET, actor="test", name="pgw-1", **extra)
        rt.policy.store.put(policy_from_dict({
            "tenant_id": TENANT, "scope": f"apn:{APN}",
            "rules": [{"kind": "volume", "period": "month", "max_bytes": 10_000,
                       "actions": ["remove", "log"]}],
        }), actor="test")
    finally:
        rt.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` still runs (and, given ``started``, is still the same process: a
    busy machine can hand a dead worker's pid to a new process)."""
    now = _started(pid)
    return now is not None and (started is None or now == started)


class Serve:
    """``simtrust serve`` with two RADIUS workers on ephemeral ports."""

    def __init__(self, home: Path, stats: Path | None = None) -> None:
        self.auth = _free_port(socket.SOCK_DGRAM)
        self.acct = _free_port(socket.SOCK_DGRAM)
        env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0",
               "SIMTRUST_RADIUS_BIND": f"127.0.0.1:{self.auth}",
               "SIMTRUST_RADIUS_ACCT_BIND": f"127.0.0.1:{self.acct}",
               "SIMTRUST_RADIUS_WORKERS": "2", "SIMTRUST_API_WORKERS": "1"}
        if stats is not None:
            env["SIMTRUST_RADIUS_WORKER_STATS"] = str(stats)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simtrust", "serve", "--bind",
             f"127.0.0.1:{_free_port(socket.SOCK_STREAM)}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def workers(self) -> list[int]:
        """The RADIUS worker processes (children running the RADIUS worker entry point)."""
        pids = []
        for pid in _children(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"radius_worker_main" in cmdline:
                pids.append(pid)
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _access(n: int) -> str:
    return (f'3GPP-IMSI = "{imsi(n)}", 3GPP-IMEISV = "{imeisv(n)}", '
            f'3GPP-SGSN-MCC-MNC = "00101", Called-Station-Id = "{APN}", '
            f'User-Name = "{imsi(n)}", User-Password = "x"\n')


def _accounting(port: int, n: int, session: str, status: int, octets: int) -> bytes:
    packet = Packet(Code.ACCOUNTING_REQUEST, status)
    packet.add_int(Attr.ACCT_STATUS_TYPE, status)
    packet.add(Attr.ACCT_SESSION_ID, session.encode())
    packet.add_vendor(Vendor.TGPP, Vendor.TGPP_IMSI, str(imsi(n)).encode())
    packet.add(Attr.CALLED_STATION_ID, APN.encode())
    packet.add_int(Attr.ACCT_INPUT_OCTETS, octets)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(packet.sign_request(SECRET.encode()), ("127.0.0.1", port))
        return sock.recv(4096)


def test_serve_with_two_workers_answers_radclient_and_disconnects_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    gateway = CoaReceiver(SECRET)
    _seed(home, 24, coa_port=gateway.port)
    stats = tmp_path / "stats"
    stats.mkdir()
    serve = Serve(home, stats)
    try:
        wait_until(lambda: "Access-Accept" in radclient(serve.auth, "auth", _access(1),
                                                        retries=1, timeout=1), timeout=90)
        assert 2 == len(wait_until(lambda: len(serve.workers()) == 2 and serve.workers()))
        # Many Access-Requests from one radclient (one source port): each accepted with
        # its SIM's own pool address.
        requests = tmp_path / "requests"
        requests.write_text("\n".join(_access(n) for n in range(1, 21)))
        done = subprocess.run(["radclient", "-x", "-f", str(requests), "-p", "20", "-r", "3",
                               "-t", "3", f"127.0.0.1:{serve.auth}", "auth", SECRET],
                              capture_output=True, text=True, timeout=120, check=False)
        assert 20 == done.stdout.count("Received Access-Accept"), done.stdout + done.stderr
        addresses = {line.split("=")[1].strip() for line in done.stdout.splitlines()
                     if "Framed-IP-Address" in line}
        assert 20 == len(addresses)
        # Accounting crosses the volume cap in whichever worker holds the session; the
        # SIM is suspended there and the master alone sends the Disconnect-Request.
        assert Code.ACCOUNTING_RESPONSE == _accounting(serve.acct, 22, "sess-22", 1, 0)[0]
        assert Code.ACCOUNTING_RESPONSE == _accounting(serve.acct, 22, "sess-22", 3, 6_000)[0]
        assert Code.ACCOUNTING_RESPONSE == _accounting(serve.acct, 22, "sess-22", 3, 12_000)[0]
        wait_until(lambda: gateway.received, timeout=60)
        # Every process's sends are done once serve has stopped (gracefully).
        serve.stop()
        rt = Runtime.open(load_settings(env={}, home=home))
        try:
            assert SimState.SUSPENDED == rt.subscriber.inventory.get_sim(iccid(22)).state
            disconnects = rt.audit.query(action="radius.disconnect")
        finally:
            rt.close()
        assert [DISCONNECT_REQUEST] == [r.code for r in gateway.received]
        assert ["sess-22"] == gateway.received[0]["Acct-Session-Id"]
        assert 1 == len(disconnects)
    finally:
        serve.stop()
        gateway.close()
    accepts = []
    for worker in (0, 1):
        counters = json.loads((stats / f"worker-{worker}.json").read_text())["counters"]
        accepts.append(counters["accepts"])
    assert all(accepts), accepts  # both workers answered the one radclient's requests
    assert sum(accepts) >= 21


def test_killing_the_master_ends_its_workers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _seed(home, 2)
    serve = Serve(home)
    try:
        wait_until(lambda: "Access-Accept" in radclient(serve.auth, "auth", _access(1),
                                                        retries=1, timeout=1), timeout=90)
        workers = wait_until(lambda: len(serve.workers()) == 2 and serve.workers())
        started = {pid: _started(pid) for pid in workers}  # type: ignore[union-attr]
        serve.proc.send_signal(signal.SIGKILL)
        serve.proc.wait(timeout=30)
        wait_until(lambda: not any(_alive(pid, t) for pid, t in started.items()), timeout=30)
        out = radclient(serve.auth, "auth", _access(1), retries=1, timeout=1)
        assert "Received" not in out, out  # nobody answers on the port any more
    finally:
        serve.stop()


# -- EAP-AKA' vectors from two workers --------------------------------------------------

_POOL = """
import json, os, sys
for key in [k for k in os.environ if k.startswith("SIMTRUST_")]:
    del os.environ[key]
os.environ["SIMTRUST_HOME"] = sys.argv[1]
from simtrust.cli._radius_workers import start_radius_workers
pool = start_radius_workers({"auth": ("127.0.0.1", 0)}, 2)
print(pool.addresses["auth"][1], flush=True)
sys.stdin.read()
pool.stop()
"""


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[int]:
    home = tmp_path / "home"
    _seed(home, 1)
    proc = subprocess.Popen([sys.executable, "-c", _POOL, str(home)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for worker in (0, 1):  # until both workers answer (any answer)
            probe = Packet(Code.ACCESS_REQUEST, worker, bytes((worker,)) + os.urandom(15))
            probe.add(Attr.USER_NAME, b"probe")
            wait_until(lambda probe=probe: _try(port, probe.encode()), timeout=90)
        yield port
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


def _eap_identity(identifier: int, worker: int, eap_id: int = 0) -> bytes:
    """An Access-Request with EAP-Response/Identity (SIM 1's permanent AKA' identity),
    steered to ``worker`` by its Request Authenticator's first octet."""
    identity = f"6{imsi(1)}@{REALM}".encode()
    eap = bytes((2, eap_id)) + (5 + len(identity)).to_bytes(2, "big") + b"\x01" + identity
    packet = Packet(Code.ACCESS_REQUEST, identifier, bytes((worker,)) + os.urandom(15))
    packet.add(Attr.USER_NAME, identity)
    packet.add(Attr.EAP_MESSAGE, eap)
    packet.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
    return packet.sign_access_request(SECRET.encode())


def _challenge(reply: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(worker, RAND, AUTN, State) of an Access-Challenge carrying an AKA'-Challenge."""
    packet = decode(reply)
    assert Code.ACCESS_CHALLENGE == packet.code
    state = packet.get(Attr.STATE)
    assert state is not None
    eap = b"".join(packet.get_all(Attr.EAP_MESSAGE))
    assert (50, 1) == (eap[4], eap[5])  # EAP-AKA', AKA-Challenge
    at: dict[int, bytes] = {}
    offset = 8
    while offset < len(eap):
        kind, length = eap[offset], eap[offset + 1] * 4
        at[kind] = eap[offset + 2 : offset + length]
        offset += length
    return state[0], at[1][2:], at[2][2:], state


def _sqn(rand: bytes, autn: bytes) -> int:
    ak = f2345(K1, OPC1, rand)[3]
    return int.from_bytes(bytes(a ^ b for a, b in zip(autn[:6], ak, strict=True)), "big")


def _exchange(port: int, wires: list[bytes], timeout: float = 30.0,
              sock: socket.socket | None = None) -> list[bytes]:
    """Send every request at once (from ``sock``, else a new socket); the replies in
    request order."""
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.settimeout(timeout)
        for wire in wires:
            sock.sendto(wire, ("127.0.0.1", port))
        replies: dict[int, bytes] = {}
        while len(replies) < len(wires):
            data = sock.recv(4096)
            replies[data[1]] = data
    finally:
        if own:
            sock.close()
    return [replies[wire[1]] for wire in wires]


def test_two_workers_never_issue_one_sqn_twice(pool: int) -> None:
    rounds, per_round = 4, 40
    sqns: list[int] = []
    by_worker = {0: 0, 1: 0}
    for r in range(rounds):
        wires = [_eap_identity((r * per_round + i) % 256, i % 2) for i in range(per_round)]
        replies = _exchange(pool, wires)
        for wire, reply in zip(wires, replies, strict=True):
            worker, rand, autn, _state = _challenge(reply)
            assert wire[4] == worker  # answered by the worker it was steered to
            by_worker[worker] += 1
            sqns.append(_sqn(rand, autn))
    assert {0: rounds * per_round // 2, 1: rounds * per_round // 2} == by_worker
    assert len(sqns) == len(set(sqns))  # never two vectors with one SQN
    seqs = sorted(sqn >> IND_BITS for sqn in sqns)
    assert list(range(seqs[0], seqs[0] + len(seqs))) == seqs  # one SEQ each, none skipped


def test_retransmission_gets_the_same_challenge_and_foreign_state_fails(pool: int) -> None:
    wire = _eap_identity(1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
        first = _exchange(pool, [wire], sock=gateway)[0]
        again = _exchange(pool, [wire], sock=gateway)[0]
    assert first == again  # the cached answer: no second vector drawn
    worker, _rand, _autn, state = _challenge(first)
    assert 1 == worker
    # The next round carrying a State that names the other worker (as a round that
    # reached the wrong process would): no conversation there, EAP-Failure.
    eap = bytes((2, 2, 0, 8, 50, 1, 0, 0))
    packet = Packet(Code.ACCESS_REQUEST, 2, os.urandom(16))
    packet.add(Attr.USER_NAME, b"6" + str(imsi(1)).encode())
    packet.add(Attr.EAP_MESSAGE, eap)
    packet.add(Attr.STATE, bytes((0,)) + state[1:])
    packet.add(Attr.MESSAGE_AUTHENTICATOR, bytes(16))
    reply = decode(_exchange(pool, [packet.sign_access_request(SECRET.encode())])[0])
    assert Code.ACCESS_REJECT == reply.code
    assert 4 == b"".join(reply.get_all(Attr.EAP_MESSAGE))[0]  # EAP-Failure


def _try(port: int, wire: bytes) -> bytes | None:
    try:
        return _exchange(port, [wire], timeout=1.0)[0]
    except TimeoutError:
        return None


def test_queued_event_log_writes_every_event_behind_the_caller(sqlite_runtime: Runtime) -> None:
    log = QueuedSimEventLog(sqlite_runtime.db)
    head = log.head()
    events = [SimEvent(1_700_000_000.0 + i, f"00101{i:010d}", "auth") for i in range(500)]
    for event in events:
        log.append(event)  # returns before the row is written
    log.close()
    rows = log.since(head)
    assert [e.imsi for e in events] == [json.loads(body)["imsi"] for _seq, body in rows]
    assert (500, 0) == (log.written, log.dropped)
    log.append(events[0])  # after close: counted, not written
    assert 1 == log.dropped
