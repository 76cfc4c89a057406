"""RADIUS over UDP in ``simtrust serve``: in the serve process, or in N worker processes.

With ``SIMTRUST_RADIUS_WORKERS`` above 1 (0: one per core; the default, 1, keeps the
UDP listeners in the ``serve`` process, which measured faster on 2 cores) the master
binds N UDP sockets per RADIUS port (RFC 2865 §3 authentication, RFC 2866 §3
accounting) in one ``SO_REUSEPORT`` group and attaches a classic BPF program
that tells the kernel which socket gets each datagram (:mod:`simtrust.aaa._steer`):
an EAP conversation's rounds go back to the worker that holds it (its index
opens the State attribute, RFC 2865 §5.24), a session's accounting always to
one worker (Acct-Session-Id, RFC 2866 §5.5), anything else spread evenly by
the Request Authenticator; retransmissions land where the first copy did. Worker
``i`` inherits socket ``i`` of each group, opens its own runtime and store
connection and serves them with the same :class:`~simtrust.aaa.RadiusListener`.
The master keeps its copies of the sockets (it never reads them), so a worker
it restarts takes over the same index and the datagrams queued meanwhile.
Workers live and die with the master as the API workers do
(:mod:`simtrust.cli._prefork`: ``PR_SET_PDEATHSIG`` and a watch pipe), and
only the master sends Disconnect-Requests (:meth:`AaaServices.as_worker`).
docs/decisions/aaa-workers.md says why and what was measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from pathlib import Path

from simtrust.aaa import RadiusListener, parse_bind, steered_sockets
from simtrust.cli._common import err_console, open_runtime
from simtrust.cli._prefork import ApiWorkers, WorkerOptions, _die_with_master
from simtrust.detect import QueuedSimEventLog
from simtrust.runtime import Runtime, settle_gc

__all__ = ["RadiusWorkers", "radius_worker_main", "start_radius_udp"]

_RADIUS_WORKER = ("from simtrust.cli._radius_workers import radius_worker_main; "
                  "radius_worker_main()")
#: A directory where each worker writes its counters as it stops (benches, tests).
STATS_ENV = "SIMTRUST_RADIUS_WORKER_STATS"


class RadiusWorkers(ApiWorkers):
    """N RADIUS worker processes, worker ``i`` serving socket ``i`` of each group."""

    command = _RADIUS_WORKER

    def __init__(self, groups: dict[str, list[socket.socket]], count: int) -> None:
        if not groups or any(len(socks) != count for socks in groups.values()):
            raise ValueError("every group needs one socket per worker")
        super().__init__(next(iter(groups.values()))[0], count, WorkerOptions())
        self.groups = groups
        #: Where each kind (``auth``, ``acct``) is bound.
        self.addresses: dict[str, tuple[str, int]] = {
            kind: (str(socks[0].getsockname()[0]), int(socks[0].getsockname()[1]))
            for kind, socks in groups.items()}

    def _worker_fds(self, slot: int) -> tuple[int, ...]:
        return tuple(socks[slot].fileno() for socks in self.groups.values())

    def _worker_env(self, slot: int) -> dict[str, str]:
        return {"SIMTRUST_RADIUS_WORKER": ",".join((str(slot), str(self._count),
                                                    *self.groups))}

    def stop(self, grace_s: float | None = None) -> None:
        if grace_s is None:
            super().stop()
        else:
            super().stop(grace_s)
        for socks in self.groups.values():
            for sock in socks:
                sock.close()


def start_radius_workers(binds: dict[str, tuple[str, int]], count: int) -> RadiusWorkers:
    """Bind a steered group of ``count`` sockets for each kind in ``binds`` and start the
    workers serving them."""
    groups: dict[str, list[socket.socket]] = {}
    try:
        for kind, (host, port) in binds.items():
            groups[kind] = steered_sockets(host, port, kind, count)
    except OSError:
        for socks in groups.values():
            for sock in socks:
                sock.close()
        raise
    pool = RadiusWorkers(groups, count)
    pool.start()
    return pool


def start_radius_udp(rt: Runtime) -> tuple[list[RadiusListener], RadiusWorkers | None]:
    """The UDP listeners of ``SIMTRUST_RADIUS_BIND`` / ``SIMTRUST_RADIUS_ACCT_BIND``: in
    this process (one worker), else the worker pool (the caller restarts exited ones)."""
    settings = rt.settings
    binds = {kind: parse_bind(bind) for bind, kind in (
        (settings.radius_bind, "auth"), (settings.radius_acct_bind, "acct")) if bind}
    if not binds:
        return [], None
    count = settings.radius_worker_count
    if count > 1:
        pool = start_radius_workers(binds, count)
        for kind, (host, port) in pool.addresses.items():
            err_console.print(f"simtrust RADIUS {kind} on udp://{host}:{port} "
                              f"({count} worker processes)")
        return [], pool
    listeners = []
    for kind, (host, port) in binds.items():
        listener = RadiusListener(rt.aaa.server, host, port, kind).start()
        listeners.append(listener)
        err_console.print(f"simtrust RADIUS {kind} on udp://{listener.address[0]}:"
                          f"{listener.address[1]}")
    return listeners, None


def radius_worker_main() -> None:
    """Entry point of a RADIUS worker process (started by :class:`RadiusWorkers`)."""
    *sock_fds, watch_fd = (int(x) for x in os.environ.pop("SIMTRUST_WORKER_FDS").split(","))
    master = int(os.environ.pop("SIMTRUST_WORKER_MASTER"))
    slot, count, *kinds = os.environ.pop("SIMTRUST_RADIUS_WORKER").split(",")
    stop = threading.Event()
    _die_with_master(master, watch_fd, stop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    socks = [socket.socket(fileno=fd) for fd in sock_fds]
    rt = open_runtime()
    listeners: list[RadiusListener] = []
    # The serving process's fraud detectors see this worker's SIMs' events, written
    # behind the answers (QueuedSimEventLog says why).
    events = QueuedSimEventLog(rt.db)
    try:
        rt.detect.forward_to(events)
        rt.aaa.as_worker(int(slot), int(count))
        for kind, sock in zip(kinds, socks, strict=True):
            listeners.append(RadiusListener(rt.aaa.server, "", 0, kind, sock=sock).start())
        settle_gc()
        while not stop.wait(0.5):
            pass
    finally:
        for listener in listeners:
            listener.close()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
        events.close()
        stats = os.environ.get(STATS_ENV)
        if stats:
            server = rt.aaa.server
            Path(stats, f"worker-{slot}.json").write_text(json.dumps({
                "counters": server.counters, "batches": rt.aaa.accounting.batches,
                "committed": rt.aaa.accounting.committed}), encoding="utf-8")
        rt.close()
