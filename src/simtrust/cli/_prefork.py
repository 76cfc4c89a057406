"""The API tier of ``simtrust serve``: a master process and N uvicorn worker processes.

The master binds the operator API's listening socket once and starts each
worker as a fresh interpreter (fork+exec, never a bare fork of a process that
already runs listener threads) that inherits the socket and accepts on it;
each worker builds its own runtime and app from the same settings, so the
problem documents, body limit and API-key checks are the same code in every
worker. A worker dies with its master whatever kills the master: the kernel
sends it SIGTERM when the master exits (``PR_SET_PDEATHSIG``, Linux), and it
also watches a pipe whose only writer is the master (end of file: the master
is gone) — the second catches the master dying before the first was armed, and
serves systems without prctl. The master restarts a worker that exits on its
own and, on stop, sends SIGTERM, waits for the graceful shutdown and kills
what is left. With a certificate and key the workers terminate TLS 1.3
themselves (RFC 8446). docs/decisions/corenet-api-workers.md says why.

:class:`HandedWorkers` is the same life cycle for listeners whose master accepts
and deals each connection to the next worker (:mod:`simtrust.handoff`): the SBI
(docs/decisions/corenet-sbi-workers.md) and the bootstrap listener
(docs/decisions/bootstrap-workers.md); :func:`handed_worker_main` is their workers'
common entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from simtrust.cli._common import err_console, open_runtime
from simtrust.errors import ConfigError
from simtrust.handoff import ConnectionDealer
from simtrust.runtime import Runtime, settle_gc

__all__ = ["ApiWorkers", "HandedWorkers", "WorkerOptions", "handed_worker_main", "start_lwm2m",
           "tls_context_check", "worker_main"]

_PR_SET_PDEATHSIG = 1
#: Seconds a worker may take to finish its requests once told to stop.
GRACE_S = 5.0
#: A worker that dies this soon after starting is not restarted at once (crash loop).
_MIN_LIFE_S = 2.0

_WORKER = "from simtrust.cli._prefork import worker_main; worker_main()"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """What every worker is told: TLS material (both or neither)."""

    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("the API needs both a TLS certificate and key, or neither")


def tls_context_check(options: WorkerOptions) -> None:
    """Load the certificate and key once in the master, so a bad pair fails ``serve`` early."""
    if options.tls_cert is None or options.tls_key is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(options.tls_cert, options.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load the API certificate and key: {exc.__class__.__name__}"
                          ) from None


class ApiWorkers:
    """N worker processes serving one inherited listening socket."""

    def __init__(
        self, sock: socket.socket, count: int, options: WorkerOptions, *, with_lwm2m: bool = False
    ) -> None:
        if count < 1:
            raise ConfigError("the API needs at least one worker")
        self._sock = sock
        self._count = count
        self._options = options
        self._lwm2m = with_lwm2m
        # The master holds the only write end: workers read end-of-file when it is gone.
        self._watch_r, self._watch_w = os.pipe()
        self._procs: list[subprocess.Popen[bytes]] = []
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()
        self.restarts = 0

    def __repr__(self) -> str:
        return f"ApiWorkers(count={self._count}, pids={self.pids()})"

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._procs]

    #: The worker's entry point (``python -c``).
    command = _WORKER

    def _worker_fd(self, slot: int) -> int:
        """The descriptor worker ``slot`` serves: the inherited listening socket."""
        return self._sock.fileno()

    def _worker_fds(self, slot: int) -> tuple[int, ...]:
        """The descriptors worker ``slot`` inherits, in ``SIMTRUST_WORKER_FDS`` order
        before the watch pipe's."""
        return (self._worker_fd(slot),)

    def _worker_env(self, slot: int) -> dict[str, str]:
        """Further environment of worker ``slot``."""
        return {}

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        fds = self._worker_fds(slot)
        env = {**os.environ, **self._worker_env(slot),
               "SIMTRUST_WORKER_FDS": ",".join(str(fd) for fd in (*fds, self._watch_r)),
               "SIMTRUST_WORKER_MASTER": str(os.getpid())}
        if self._lwm2m:
            env["SIMTRUST_WORKER_LWM2M"] = "1"
        if self._options.tls_cert is not None and self._options.tls_key is not None:
            env["SIMTRUST_WORKER_TLS"] = f"{self._options.tls_cert}\n{self._options.tls_key}"
        proc = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed command
            [sys.executable, "-c", self.command], env=env, pass_fds=(*fds, self._watch_r),
            stdin=subprocess.DEVNULL,
            # Its own process group: a terminal's Ctrl-C reaches the master, which stops
            # the workers in order, instead of every process at once.
            process_group=0,
        )
        self._started[proc.pid] = time.monotonic()
        return proc

    def start(self) -> ApiWorkers:
        with self._lock:
            self._procs = [self._spawn(slot) for slot in range(self._count)]
        return self

    def check(self) -> list[tuple[int, int]]:
        """Restart workers that exited; return their (pid, exit status)."""
        exited: list[tuple[int, int]] = []
        with self._lock:
            for i, proc in enumerate(self._procs):
                status = proc.poll()
                if status is None:
                    continue
                exited.append((proc.pid, status))
                lived = time.monotonic() - self._started.pop(proc.pid, 0.0)
                if lived < _MIN_LIFE_S:
                    time.sleep(_MIN_LIFE_S - lived)
                self._procs[i] = self._spawn(i)
                self.restarts += 1
        return exited

    def stop(self, grace_s: float = GRACE_S) -> None:
        """SIGTERM every worker, wait ``grace_s`` for them, SIGKILL the rest, reap all."""
        with self._lock:
            procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for fd in (self._watch_w, self._watch_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._sock.close()


class HandedWorkers(ApiWorkers):
    """N worker processes running ``command``, each fed connections by the master's
    dealer over its own ``SOCK_SEQPACKET`` pair (a restarted worker gets a new pair)."""

    def __init__(self, sock: socket.socket, count: int, command: str, *,
                 name: str = "dealer", env: dict[str, str] | None = None) -> None:
        super().__init__(sock, count, WorkerOptions())
        self.command = command
        self._env = env or {}
        self.dealer = ConnectionDealer(sock, [None] * count, name=name)
        self._child_end: socket.socket | None = None

    def _worker_fd(self, slot: int) -> int:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old, self.dealer.channels[slot] = self.dealer.channels[slot], ours
        if old is not None:
            old.close()
        theirs.set_inheritable(True)
        self._child_end = theirs
        return theirs.fileno()

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        saved = {key: os.environ.get(key) for key in self._env}
        os.environ.update(self._env)
        try:
            return super()._spawn(slot)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if self._child_end is not None:
                self._child_end.close()  # the worker has its copy
                self._child_end = None

    def start(self) -> Self:
        super().start()
        self.dealer.start()
        return self

    def stop(self, grace_s: float = GRACE_S) -> None:
        self.dealer.stop()  # no new connections; the workers finish their requests
        super().stop(grace_s)
        for channel in self.dealer.channels:
            if channel is not None:
                channel.close()


def handed_worker_main(serve: Callable[[Runtime, socket.socket], Callable[[], None]]) -> None:
    """Entry of a :class:`HandedWorkers` process: die with the master, open the runtime,
    ``serve(rt, channel)`` (returns its stop function) until SIGTERM or the master is gone."""
    channel_fd, watch_fd = (int(x) for x in os.environ.pop("SIMTRUST_WORKER_FDS").split(","))
    master = int(os.environ.pop("SIMTRUST_WORKER_MASTER"))
    stop = threading.Event()
    _die_with_master(master, watch_fd, stop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    channel = socket.socket(fileno=channel_fd)
    rt = open_runtime()
    try:
        # The serving process's fraud detectors see this worker's SIMs' events.
        rt.forward_sim_events()
        stop_serving = serve(rt, channel)
        settle_gc()
        while not stop.wait(0.5):
            pass
        stop_serving()
    finally:
        with contextlib.suppress(OSError):
            channel.close()
        rt.close()


def _die_with_master(master: int, watch_fd: int, on_master_gone: threading.Event) -> None:
    """Arm both ways a worker learns that its master is gone (see the module docstring)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != master:  # the master died before the signal was armed
        os._exit(0)

    def watch() -> None:
        while True:
            try:
                if not os.read(watch_fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        on_master_gone.set()
        # The graceful stop below has GRACE_S; a worker never outlives it by much.
        time.sleep(GRACE_S + 2.0)
        os._exit(1)

    threading.Thread(target=watch, name="master-watch", daemon=True).start()


def start_lwm2m(rt: Runtime) -> None:
    """The LwM2M servers (DTLS) when ``SIMTRUST_LWM2M_BIND`` is set; the runtime stops them."""
    settings = rt.settings
    if not settings.lwm2m_bind:
        return
    host, _, port = settings.lwm2m_bind.rpartition(":")
    bs_port = int(settings.lwm2m_bootstrap_bind.rpartition(":")[2] or 0) \
        if settings.lwm2m_bootstrap_bind else int(port) + 1
    rt.devices.start(host, int(port), bs_port)
    err_console.print(f"simtrust LwM2M management on coaps://{host}:{rt.devices.dm_port}, "
                      f"bootstrap on coaps://{host}:{rt.devices.bs_port}")


def worker_main() -> None:
    """Entry point of a worker process (started by :class:`ApiWorkers`)."""
    import uvicorn  # noqa: PLC0415 - heavy optional: the ASGI server, only in worker processes

    from simtrust.api.app import warm_routes  # noqa: PLC0415 - heavy, as above
    from simtrust.api.http_protocol import OneWriteHttpProtocol  # noqa: PLC0415 - heavy, as above
    from simtrust.web import create_site  # noqa: PLC0415 - heavy: the API with the dashboard, only where it is served

    sock_fd, watch_fd = (int(x) for x in os.environ.pop("SIMTRUST_WORKER_FDS").split(","))
    master = int(os.environ.pop("SIMTRUST_WORKER_MASTER"))
    tls = os.environ.pop("SIMTRUST_WORKER_TLS", "")
    lwm2m = os.environ.pop("SIMTRUST_WORKER_LWM2M", "") == "1"
    gone = threading.Event()
    _die_with_master(master, watch_fd, gone)
    sock = socket.socket(fileno=sock_fd)
    rt = open_runtime()
    rt.streams.alert_sink()
    # The serving process's fraud detectors see this worker's events (attach decisions,
    # LwM2M reports) through the store's shared event stream.
    rt.forward_sim_events()
    if lwm2m:
        start_lwm2m(rt)  # stopped by rt.close()
    cert, _, key = tls.partition("\n")
    # No access log, no Server header; HTTP/1.1 parsed by httptools (a dependency, C)
    # rather than h11 (pure Python): docs/decisions/api-http-stack.md. An answer's head
    # and body leave in one write (docs/decisions/api-attach-route.md).
    app = create_site(rt)
    config = uvicorn.Config(
        app, http=OneWriteHttpProtocol, log_level="warning", access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(GRACE_S),
        ssl_certfile=cert or None, ssl_keyfile=key or None,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_3
    server = uvicorn.Server(config)

    def on_gone() -> None:
        gone.wait()
        server.should_exit = True

    threading.Thread(target=on_gone, name="master-gone", daemon=True).start()
    async def serve() -> None:
        # The route table is built before the socket is served: otherwise the first
        # request pays for it (seconds of CPU for the whole API on a busy machine).
        await warm_routes(app)
        # Everything is loaded: keep full collections off the requests' path
        # (docs/decisions/api-attach-route.md).
        settle_gc()
        await server.serve(sockets=[sock])

    try:
        asyncio.run(serve())  # the asyncio loop: docs/decisions/event-loop-uvloop.md
    finally:
        rt.close()
