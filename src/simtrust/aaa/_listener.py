"""UDP transport of the RADIUS server (RFC 2865 §3: authentication on one port,
RFC 2866 §3: accounting on another), one receiving thread per socket.

The receiving thread waits for the socket to be readable, then reads every
datagram already queued (up to ``burst``) without waiting again: one wake-up per
burst instead of one per datagram (Python has no recvmmsg; the non-blocking
reads are the same batching at the cost of one call each).

Access-Requests of a burst go to one deciding thread
(:meth:`RadiusServer.decide_auth_burst`, in chunks); their audit records are held,
and one committing thread stores the records of every chunk decided since its
previous commit in one group-commit submission
(:meth:`RadiusServer.commit_auth_bursts`) and sends their answers once it is
durable. Receiving (its system calls need no interpreter lock), deciding and the
commit's fsync overlap; no pool of threads each waiting on the commit
(docs/decisions/aaa-radius-cpu.md). The
Access-Requests of a burst whose EAP responses may lead to an AuC vector or a
synchronous store write (:func:`eap_may_wait`) are a job for the vector thread
(``workers``, default 1): their vectors are drawn together, in one durable SQN group
commit (docs/decisions/aaa-eap-vector-bursts.md), and that wait does not hold up
the plain answers. The thread takes every job queued when it starts, so the jobs
that arrive during one commit share the next; one thread rather than several
spends less of the interpreter lock on hand-offs between them and gives larger
batches (docs/decisions/aaa-eap-cpu.md).
The EAP responses answered from memory (:func:`eap_round`) — an anonymous or
unknown EAP-Identity (answered with an AKA-Identity request, RFC 4187 §4.1.1.6) and
an AKA/AKA'-Challenge response (checked against the vector already drawn, RFC 4187
§9.4) — are decided by the receiving thread itself: their work never waits (an
access record goes to the audit committer, attach decisions to the committing
thread), and a hand-off to the deciding thread cost more of the interpreter lock
than the work it moved (docs/decisions/aaa-eap-cpu.md). A re-authentication
identity, which may be taken from the store, joins the plain burst.
Accounting needs no workers: the receiving thread reduces a burst's requests
to records, writes them in one transaction and answers them once it is committed
(:meth:`RadiusServer.handle_acct_burst`, docs/decisions/aaa-throughput.md).

Several worker processes of ``simtrust serve`` can each run a listener on their own
socket of one ``SO_REUSEPORT`` group (``sock``; :mod:`simtrust.aaa._steer` says which
datagram the kernel gives to which, docs/decisions/aaa-workers.md).

The socket reads whole datagrams up to the RFC's 4096-octet limit plus one
octet, so an oversized datagram is seen as such (and dropped) instead of being
silently cut.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from simtrust.aaa._commit import DecidedBurst
from simtrust.aaa._radius import MAX_PACKET, Attr
from simtrust.aaa._server import RadiusServer
from simtrust.aaa._steer import udp_socket
from simtrust.errors import SimtrustError

__all__ = ["FROM_MEMORY", "MAY_WAIT", "PLAIN", "RadiusListener", "eap_may_wait", "eap_round",
           "parse_bind"]

_log = logging.getLogger("simtrust.aaa.listener")
Burst = list[tuple[bytes, tuple[str, int]]]
T = TypeVar("T")


# Access-Requests decided before the committing thread may take them: it starts
# on the first of a burst while the deciding thread decides the rest.
_CHUNK = 8
# Datagrams a pool thread takes at once from the jobs queued (EAP responses that
# draw vectors): one burst for the AuC.
_MERGED = 256


def parse_bind(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        raise ValueError(f"RADIUS bind must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class RadiusListener:
    """Serves one UDP socket: ``kind`` is ``auth`` or ``acct``."""

    def __init__(self, server: RadiusServer, host: str, port: int, kind: str, *,
                 tap: Callable[[tuple[str, int], tuple[str, int], bytes], None] | None = None,
                 workers: int = 1, backlog: int = 8192, burst: int = 32,
                 sock: socket.socket | None = None) -> None:
        """``tap(src, dst, datagram)`` sees every datagram in and out (captures, tests).
        ``sock``: serve this socket, already bound (a RADIUS worker process's socket of
        a ``SO_REUSEPORT`` group, :func:`udp_socket`), instead of binding ``host:port``."""
        if kind not in ("auth", "acct"):
            raise ValueError("kind must be auth or acct")
        self.server = server
        self.kind = kind
        self.sock = sock if sock is not None else udp_socket(host, port)
        self.sock.setblocking(False)  # waits are polls (so close() is seen within 0.1 s)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.tap = tap
        self._burst = max(1, burst)
        self._jobs: queue.Queue[list[tuple[bytes, tuple[str, int]]] | None] = \
            queue.Queue(max(1, backlog // self._burst))
        self._workers = [
            threading.Thread(target=self._work, name=f"simtrust-radius-{kind}-{i}", daemon=True)
            for i in range(workers if kind == "auth" else 0)
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"simtrust-radius-{kind}",
                                        daemon=True)
        # chunks decided by the deciding thread, waiting for the committing thread
        self._backlog = backlog
        self._decided: list[DecidedBurst] = []
        self._held = 0  # their datagrams
        self._closing = False
        self._commit_cond = threading.Condition(threading.Lock())
        self._plain: queue.Queue[list[tuple[bytes, tuple[str, int]]] | None] = \
            queue.Queue(max(1, backlog // self._burst))
        self._decider = threading.Thread(target=self._decide_all, daemon=True,
                                         name=f"simtrust-radius-{kind}-decide")
        self._committer = threading.Thread(target=self._commit, daemon=True,
                                           name=f"simtrust-radius-{kind}-commit")

    def __repr__(self) -> str:
        return f"RadiusListener({self.kind}, {self.address[0]}:{self.address[1]})"

    def start(self) -> RadiusListener:
        for worker in self._workers:
            worker.start()
        if self.kind == "auth":
            self._committer.start()
            self._decider.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        sock = self.sock
        server = self.server
        auth = self.kind == "auth"
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        limit = self._burst
        while not self._stop.is_set():
            try:
                if not poller.poll(100):
                    continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            plain: list[tuple[bytes, tuple[str, int]]] = []
            waiting: list[tuple[bytes, tuple[str, int]]] = []
            memory: list[tuple[bytes, tuple[str, int]]] = []
            for _n in range(limit):
                try:
                    data, addr = sock.recvfrom(MAX_PACKET + 1)
                except BlockingIOError:
                    break
                except OSError:
                    if self._stop.is_set():
                        return
                    break
                tap = self.tap
                if tap is not None:
                    tap(addr, self.address, data)
                if len(data) > MAX_PACKET:
                    server.counters["malformed"] += 1
                    continue
                kind = eap_round(data) if auth else PLAIN
                if kind == MAY_WAIT:
                    waiting.append((data, addr))
                elif kind == FROM_MEMORY:
                    memory.append((data, addr))
                else:
                    plain.append((data, addr))
            if waiting:
                self._queue(self._jobs, waiting)
            if plain and auth:
                self._queue(self._plain, plain)
            elif plain:
                self._guarded(server.handle_acct_burst, plain)
            if memory:
                self._decide(memory)

    def _decide_all(self) -> None:
        """The deciding thread: each burst in chunks, so that an idle committing thread
        starts on the first chunk while the rest is decided."""
        while True:
            burst = self._plain.get()
            if burst is None:
                return
            for start in range(0, len(burst), _CHUNK):
                self._decide(burst[start : start + _CHUNK])

    def _decide(self, burst: list[tuple[bytes, tuple[str, int]]]) -> None:
        """Decide a burst of plain Access-Requests; the committing thread stores the
        decisions and sends the answers."""
        server = self.server
        if self._held >= self._backlog:
            server.counters["overload_dropped"] += len(burst)
            return
        decided = self._guarded(server.decide_auth_burst, burst)
        if decided is None:
            return
        if not any(rows for rows, _decisions in decided.held):
            # nothing to store (EAP rounds answered from memory): answer at once
            server.commit_auth_bursts([decided])
            for answer, addr in decided.answers:
                self.send(answer, addr)
        else:
            with self._commit_cond:
                self._decided.append(decided)
                self._held += len(burst)
                self._commit_cond.notify()

    def _commit(self) -> None:
        """The committing thread: every burst decided since the last commit, in one."""
        server = self.server
        cond = self._commit_cond
        while True:
            with cond:
                while not self._decided and not self._closing:
                    cond.wait()
                if not self._decided:
                    return
                batch, self._decided, self._held = self._decided, [], 0
            try:
                server.commit_auth_bursts(batch)
            except Exception:  # noqa: BLE001 - as in _guarded: the committing thread must live
                count = sum(len(burst.answers) for burst in batch)
                server.counters["internal_errors"] += count
                _log.exception("RADIUS answers to %d datagrams dropped", count)
                continue
            for burst in batch:
                for answer, addr in burst.answers:
                    self.send(answer, addr)

    def _queue(self, jobs: queue.Queue[Burst | None], job: Burst) -> None:
        try:
            jobs.put_nowait(job)
        except queue.Full:
            self.server.counters["overload_dropped"] += len(job)

    def _work(self) -> None:
        """A pool thread: the job it is woken for and every job queued meanwhile, as one
        burst (one AuC call, one SQN group-commit submission: the jobs that queued
        while other threads' commits ran share this one's, instead of each thread
        taking one small job; docs/decisions/aaa-eap-cpu.md)."""
        server = self.server
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            last = False
            while len(job) < _MERGED:
                try:
                    more = jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:  # this thread's stop, once the jobs it holds are answered
                    last = True
                    break
                job = job + more
            for answer, addr in self._guarded(server.handle_auth_burst, job) or ():
                self.send(answer, addr)
            if last:
                return

    def _guarded(self, work: Callable[[Burst, Callable[[bytes, tuple[str, int]], None]], T],
                 burst: Burst) -> T | None:
        """``work(burst, send)``; None if it failed (counted and logged: a bug or a
        transient error must not end the thread)."""
        try:
            return work(burst, self.send)
        except (ValueError, OSError, SimtrustError) as exc:
            self.server.counters["malformed"] += len(burst)
            _log.warning("RADIUS %s burst of %d datagrams dropped: %s", self.kind,
                         len(burst), exc)
        except Exception:  # noqa: BLE001 - a store error or a bug costs a burst, not the listener
            # Nothing of the burst was answered, so nothing acknowledged is lost; the
            # gateways retransmit. A dead listener thread would answer nothing, ever.
            self.server.counters["internal_errors"] += len(burst)
            _log.exception("RADIUS %s burst of %d datagrams dropped", self.kind, len(burst))
        return None

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send one datagram from this listener's socket (tapped; a full socket buffer
        is waited for, up to 0.1 s)."""
        if self.tap is not None:
            self.tap(self.address, addr, data)
        try:
            self.sock.sendto(data, addr)
        except BlockingIOError:
            select.select([], [self.sock], [], 0.1)
            try:
                self.sock.sendto(data, addr)
            except OSError as exc:
                _log.warning("RADIUS answer to %s not sent: %s", addr[0], exc)
        except OSError as exc:
            _log.warning("RADIUS answer to %s not sent: %s", addr[0], exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._decider.is_alive():
            self._plain.put(None)
            self._decider.join(timeout=5)
        with self._commit_cond:
            self._closing = True
            self._commit_cond.notify()
        if self._committer.is_alive():
            self._committer.join(timeout=5)
        for _worker in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join(timeout=5)
        self.sock.close()


_EAP_IDENTITY = 1
_EAP_AKA_METHODS = (23, 50)  # EAP-AKA (RFC 4187), EAP-AKA' (RFC 5448)
_AKA_CHALLENGE = 1
_VECTOR_PREFIXES = b"0267"  # permanent and pseudonym identities (RFC 4187 §4.1.1.6)
_REAUTH_PREFIXES = b"48"  # fast re-authentication identities (RFC 4187 §4.1.1.7)

#: What :func:`eap_round` says of an Access-Request: no EAP response to classify (a
#: plain request, or a malformed one that the burst's decode drops) ...
PLAIN = 0
#: ... an EAP response answered from memory, without waiting on the AuC or the store ...
FROM_MEMORY = 1
#: ... or one that may wait on the AuC's durable SQN commit or on the store.
MAY_WAIT = 2


def eap_round(data: bytes) -> int:
    """Which EAP round an Access-Request carries: :data:`PLAIN`, :data:`FROM_MEMORY`
    or :data:`MAY_WAIT`.

    Only the first EAP-Message attribute is read (RFC 3579 §3.1: it starts with the
    EAP header); a response it cannot classify counts as one that may wait, and a
    re-authentication identity (taken from the store in some cases) as plain.
    """
    end = min(len(data), int.from_bytes(data[2:4], "big"))
    offset = 20
    while offset + 2 <= end:
        alen = data[offset + 1]
        if alen < 2:
            return PLAIN  # malformed: decode() drops it in the burst
        if data[offset] == Attr.EAP_MESSAGE:
            eap = data[offset + 2 : offset + alen]
            if len(eap) < 6 or eap[0] != 2:  # not an EAP-Response with a type and a byte
                return MAY_WAIT
            kind = eap[4]
            if kind == _EAP_IDENTITY:
                if eap[5] in _VECTOR_PREFIXES:
                    return MAY_WAIT
                return PLAIN if eap[5] in _REAUTH_PREFIXES else FROM_MEMORY
            if kind in _EAP_AKA_METHODS and eap[5] == _AKA_CHALLENGE:
                return FROM_MEMORY
            return MAY_WAIT
        offset += alen
    return PLAIN


def eap_may_wait(data: bytes) -> bool:
    """Whether an Access-Request carries an EAP response that may wait on the AuC or
    the store (its own job), rather than one answered without waiting."""
    return eap_round(data) == MAY_WAIT
