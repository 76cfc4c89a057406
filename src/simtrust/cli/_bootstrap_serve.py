"""The bootstrap listener (Ub, EST, OCSP, CRLs) in ``simtrust serve``, in N processes.

With ``SIMTRUST_BOOTSTRAP_WORKERS`` above 1 (default: one per core) the master
binds the listener's socket, accepts on it and deals each connection to the next
of N worker processes (:class:`~simtrust.cli._prefork.HandedWorkers`, the SBI's
hand-off, ``SCM_RIGHTS``); each worker opens its own runtime and store connection
and serves the connection with the same :class:`BootstrapListener` code,
terminating TLS itself (TS 33.220 §4 Ub, TS 24.109 §5.2, RFC 7030, RFC 6960).
Every piece of state two requests of one device may meet in different workers is
in the store: the sealed Ub nonce opens with the shared keyring and its use is a
row (``boot_gba_used_nonces``), B-TIDs and A-KIDs are rows, the NAF's Digest nonce
key and replay cache are rows, the per-SIM rate limit counts certificate rows,
certificate status is read from the store on every OCSP request and re-enrolment.
The master builds the TLS server certificate once before the workers start and
alone runs the background senders (revocations owed to enterprise CAs, CMP
enrolments left waiting). 1: the listener in the ``serve`` process, as before.
docs/decisions/bootstrap-workers.md has the measurement.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from simtrust.cli._common import err_console
from simtrust.cli._prefork import HandedWorkers, handed_worker_main
from simtrust.runtime import Runtime

if TYPE_CHECKING:
    from simtrust.api.bootstrap_listener import BootstrapListener

__all__ = ["BOOTSTRAP_WORKER", "bootstrap_worker_main", "start_bootstrap"]

#: The command a bootstrap worker process runs (``python -c``).
BOOTSTRAP_WORKER = ("from simtrust.cli._bootstrap_serve import bootstrap_worker_main; "
                    "bootstrap_worker_main()")


def _listener(rt: Runtime) -> BootstrapListener:
    """This process's listener for ``SIMTRUST_BOOTSTRAP_BIND`` (not started)."""
    from simtrust.api.bootstrap_listener import (  # noqa: PLC0415 - heavy: the FastAPI app
        BootstrapListener,
    )
    from simtrust.api.stream_ingest import (  # noqa: PLC0415 - heavy: the FastAPI app
        MtlsStreamIngest,
    )

    settings = rt.settings
    host, _, port = settings.bootstrap_bind.rpartition(":")
    return BootstrapListener(rt.bootstrap, host, int(port),
                             hostnames=[settings.bootstrap_naf_fqdn, host],
                             streams=MtlsStreamIngest(rt.streams))


def start_bootstrap(rt: Runtime) -> tuple[list[Callable[[], None]], HandedWorkers | None]:
    """The bootstrap listener when ``SIMTRUST_BOOTSTRAP_BIND`` is set: its stop functions
    and, when it runs in workers, the pool (the caller restarts exited workers)."""
    settings = rt.settings
    if not settings.bootstrap_bind:
        return [], None
    listener = _listener(rt)
    count = settings.bootstrap_worker_count
    if count > 1:
        host, _, port = settings.bootstrap_bind.rpartition(":")
        sock = socket.create_server((host, int(port)), backlog=socket.SOMAXCONN)
        # The server certificate is made (and stored) here once, so the workers find it.
        listener.refresh()
        listener.start_background()
        bound = int(sock.getsockname()[1])
        pool = HandedWorkers(sock, count, BOOTSTRAP_WORKER, name="bootstrap-dealer").start()
        # Reversed by the caller: the workers stop first, then the background senders.
        stops: list[Callable[[], None]] = [listener.stop, pool.stop]
        how = f", {count} worker processes"
    else:
        listener.start()
        bound, stops, how, pool = listener.port, [listener.stop], "", None
    err_console.print(f"simtrust bootstrap (Ub /bsf, EST /.well-known/est, OCSP /ocsp,"
                      f" frames over mTLS /streams) on "
                      f"https://{settings.bootstrap_naf_fqdn}:{bound}{how}")
    return stops, pool


def _serve_handed(rt: Runtime, channel: socket.socket) -> Callable[[], None]:
    listener = _listener(rt)
    listener.start_handed(channel)
    return listener.stop


def bootstrap_worker_main() -> None:
    """Entry point of a bootstrap worker process (started by :func:`start_bootstrap`)."""
    handed_worker_main(_serve_handed)
