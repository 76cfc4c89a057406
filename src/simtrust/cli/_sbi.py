"""The UDM's SBI in ``simtrust serve``: the HTTP/2 server, its worker processes, the NRF.

With ``SIMTRUST_SBI_WORKERS`` above 1 (default: one per core) the master
process binds the SBI socket and deals each accepted connection to one of N
worker processes (:class:`~simtrust.sbi.ConnectionDealer`, ``SCM_RIGHTS``);
every worker opens its own runtime and store connection from the same
settings and serves the same app (OAuth2 checks, problem details per
TS 29.503, the body limit), terminating TLS itself. Only the master registers
at the NRF, heartbeats and deregisters (TS 29.510 §5.2.2), so the network sees
one UDM instance. SQN advances stay unique across workers: each is a
compare-and-swap on ``sqn_version`` inside the transaction that audits it
(docs/decisions/auc-sqn-group-commit.md). Workers live and die with the
master as the API workers do (:mod:`simtrust.cli._prefork`).
docs/decisions/corenet-sbi-workers.md has the measurement.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from simtrust.cli._common import err_console
from simtrust.cli._prefork import HandedWorkers, handed_worker_main
from simtrust.detect import StormGuard, storm_guard_from
from simtrust.runtime import Runtime

if TYPE_CHECKING:
    from simtrust.sbi import SbiServer

__all__ = ["SbiWorkers", "advertised_ip", "sbi_worker_main", "start_sbi"]

_SBI_WORKER = "from simtrust.cli._sbi import sbi_worker_main; sbi_worker_main()"


def udm_instance_id(rt: Runtime) -> str:
    """The UDM's NF instance id: the setting, else a UUID kept in the data directory."""

    if rt.settings.udm_instance_id:
        return rt.settings.udm_instance_id
    path = rt.settings.home / "udm-instance-id"
    if not path.is_file():
        path.write_text(str(uuid.uuid4()) + "\n", encoding="utf-8")
    return str(uuid.UUID(path.read_text(encoding="utf-8").strip()))


def advertised_ip(host: str) -> str:
    """The Host-IP-Address to advertise for a bind host (the machine's own for a wildcard)."""
    address = ipaddress.ip_address(socket.gethostbyname(host))
    if address.is_unspecified:
        return socket.gethostbyname(socket.gethostname())
    return str(address)


def _sbi_server(rt: Runtime, instance: str) -> tuple[SbiServer, StormGuard | None, bool]:
    """The SBI server of this process's runtime (not started), its storm guard, and
    whether OAuth2 tokens are required."""
    from simtrust.sbi import (  # noqa: PLC0415 - heavy: the HTTP/2 SBI app (Starlette, h2)
        SbiServer,
        TokenVerifier,
        create_sbi_app,
    )

    settings = rt.settings
    verifier = None
    if settings.nrf_public_key:
        verifier = TokenVerifier(Path(settings.nrf_public_key).read_bytes(), instance,
                                 issuer=settings.nrf_instance_id or None)
    host, _, port = settings.sbi_bind.rpartition(":")
    guard = storm_guard_from(settings.storm_rates)
    server = SbiServer(
        create_sbi_app(rt.subscriber.udm, verifier, max_body_bytes=settings.max_body_bytes,
                       aanf=rt.bootstrap.aanf, storm=guard,
                       tenant_of=rt.subscriber.hss.tenant_of,
                       observer=rt.detect.observe_sim), host, int(port),
        cert=Path(settings.tls_cert) if settings.tls_cert else None,
        key=Path(settings.tls_key) if settings.tls_key else None,
        client_ca=Path(settings.tls_client_ca) if settings.tls_client_ca else None,
        lab_mode=verifier is None)
    return server, guard, verifier is not None


class SbiWorkers(HandedWorkers):
    """N SBI worker processes, each fed connections by the master's dealer."""

    def __init__(self, sock: socket.socket, count: int) -> None:
        super().__init__(sock, count, _SBI_WORKER, name="sbi-dealer")


def start_sbi(rt: Runtime, storm_out: list[StormGuard] | None = None,
              ) -> tuple[list[Callable[[], None]], SbiWorkers | None]:
    """The UDM's HTTP/2 SBI (and NRF registration) when ``SIMTRUST_SBI_BIND`` is set.

    Returns the stop functions, NRF client first (it deregisters while the
    server still answers), and the worker pool when the SBI runs in workers (the
    caller restarts exited ones); the storm guard of an SBI served in this process,
    if any, is appended to ``storm_out``.
    """
    settings = rt.settings
    if not settings.sbi_bind:
        return [], None

    from simtrust.sbi import NrfClient, udm_profile  # noqa: PLC0415 - heavy, see above

    instance = udm_instance_id(rt)
    # Built here even with workers: a bad certificate or a lab-mode bind beyond
    # loopback fails `serve` before anything is bound.
    server, guard, tokens = _sbi_server(rt, instance)
    count = settings.sbi_worker_count
    pool: SbiWorkers | None = None
    if count > 1:
        host, _, port = settings.sbi_bind.rpartition(":")
        sock = socket.create_server((host, int(port)), backlog=4096)
        bound = (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
        pool = SbiWorkers(sock, count).start()
        stops: list[Callable[[], None]] = [pool.stop]
    else:
        if guard is not None and storm_out is not None:
            storm_out.append(guard)
        bound = server.start()
        stops = [server.stop]
    scheme = "https" if server.tls else "http"
    mode = "OAuth2 tokens required" if tokens else "lab mode: no tokens, loopback only"
    workers = f", {count} worker processes" if pool is not None else ""
    err_console.print(f"simtrust SBI (Nudm_UEAU, HTTP/2) on {scheme}://{bound[0]}:{bound[1]}"
                      f" as UDM {instance} ({mode}{workers})")
    if settings.nrf_url:
        udm = rt.subscriber.udm
        advertised = advertised_ip(bound[0])
        nrf = NrfClient(settings.nrf_url, lambda: udm_profile(
            instance, udm.supi_ranges(), advertised, bound[1], scheme))
        nrf.start()
        stops.insert(0, nrf.stop)
        err_console.print(f"registering at the NRF {settings.nrf_url}")
    return stops, pool


def _serve_sbi(rt: Runtime, channel: socket.socket) -> Callable[[], None]:
    server, _, _ = _sbi_server(rt, udm_instance_id(rt))
    server.start_handed(channel)
    return server.stop


def sbi_worker_main() -> None:
    """Entry point of an SBI worker process (started by :class:`SbiWorkers`)."""
    handed_worker_main(_serve_sbi)
