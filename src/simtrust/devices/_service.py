"""The devices services as one unit: PSK store, bootstrap server and management server on
their DTLS sockets (the management server also in X.509 certificate mode when given the
tenant CAs, ``devices/_certauth.py``; the NoSec CoAP socket when enabled), run on an asyncio
loop of their own thread so the API, the CLI and tests call them synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar

from cryptography import x509

from simtrust.alerts import AlertDispatcher, AlertSink
from simtrust.bootstrap import NafId
from simtrust.crypto import Keyring
from simtrust.devices._bootstrap import (
    BOOTSTRAP_CIPHERS,
    UA_PSK_TLS_CCM8,
    BootstrapServer,
    EnterpriseServer,
    NafKeySource,
)
from simtrust.devices._certauth import X509_PREFIX, DeviceCertificates
from simtrust.devices._credentials import BOOTSTRAP, CredentialStore
from simtrust.devices._est_coaps import EstCoaps
from simtrust.devices._fota import FirmwareCampaigns
from simtrust.devices._records import Report, ReportWriter, record_device_reports
from simtrust.devices._server import DeviceAlert, DeviceManager, SimFinder
from simtrust.devices._transport import DtlsServerLink, UdpLink
from simtrust.errors import Conflict
from simtrust.store import Database

__all__ = ["DeviceServices", "QueuedSink"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class QueuedSink:
    """Hands device alerts to an :class:`~simtrust.alerts.AlertDispatcher` so a slow
    webhook or broker never holds up the CoAP loop."""

    name = "queued"

    def __init__(self, dispatcher: AlertDispatcher[DeviceAlert]) -> None:
        self._dispatcher = dispatcher

    def send(self, alert: DeviceAlert) -> None:
        self._dispatcher.submit(alert)

    def close(self) -> None:
        self._dispatcher.close()
SWEEP_S = 5.0


class DeviceServices:
    """Bootstrap + device-management servers over one credential store."""

    def __init__(self, db: Database, keyring: Keyring, clock: Callable[[], datetime], *,
                 sims: SimFinder, naf_keys: NafKeySource, naf_fqdn: str,
                 sinks: Sequence[AlertSink[DeviceAlert]] = (), allow_nosec: bool = False,
                 enterprise: Callable[[str], EnterpriseServer | None] = lambda _t: None,
                 public_host: str = "127.0.0.1",
                 certificates: DeviceCertificates | None = None) -> None:
        self.certificates = certificates
        self.credentials = CredentialStore(db, keyring, clock)
        self.manager = DeviceManager(sims, self.credentials, sinks, clock,
                                     allow_nosec=allow_nosec)
        self.campaigns = FirmwareCampaigns(self.manager)
        est = None if certificates is None else EstCoaps(
            self._enrol_certificate, sims, certificates.trust_anchor)
        self.bootstrap = BootstrapServer(naf_keys, NafId(naf_fqdn, UA_PSK_TLS_CCM8),
                                         self.credentials, sims, clock, dm_uri="",
                                         enterprise=enterprise, allow_nosec=allow_nosec,
                                         certificates=None if certificates is None
                                         else self._provision_certificate, est=est)
        self._public_host = public_host
        if certificates is not None:
            certificates.subscribe(self._certificate_event)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closers: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sinks = list(sinks)
        self._clock = clock
        self.records: ReportWriter | None = None
        self.dm_port = 0
        self.bs_port = 0
        self.nosec_port: int | None = None
        self.dm_link: DtlsServerLink | None = None
        self.bs_link: DtlsServerLink | None = None
        self.nosec_link: UdpLink | None = None

    def __repr__(self) -> str:
        return f"DeviceServices(dm={self.dm_port}, bs={self.bs_port}, {self.manager!r})"

    def issue_bootstrap_psk(self, imsi: str, tenant_id: str) -> tuple[str, bytes]:
        """A per-device bootstrap PSK for a SIM that cannot run GBA (shown once)."""
        return self.credentials.issue(BOOTSTRAP, imsi, tenant_id)

    def keep_records(self, write: Callable[[Sequence[Report]], object]) -> ReportWriter:
        """Write what devices report from objects 3, 4 and 5 to the inventory through
        ``write`` (batches, off the loop; ``devices/_records.py``)."""
        writer = ReportWriter(write)
        self.records = writer
        if self._loop is None:
            record_device_reports(self.manager, writer, self._clock)
        else:  # the listener list belongs to the loop once it runs
            self.run_sync(lambda: record_device_reports(self.manager, writer, self._clock))
        return writer

    # -- running --------------------------------------------------------------------------

    async def serve(self, host: str, dm_port: int, bs_port: int,
                    nosec_port: int | None) -> None:
        """Bind the sockets on the running loop (the caller keeps the loop going)."""
        loop = asyncio.get_running_loop()
        dm_link = DtlsServerLink(
            self.manager.endpoint, lambda identity: self.credentials.resolve(identity, "dm"),
            certificates=None if self.certificates is None else self.certificates.mode())
        self.dm_link = dm_link
        transport, _ = await loop.create_datagram_endpoint(lambda: dm_link,
                                                           local_addr=(host, dm_port))
        self._closers.append(transport.close)
        self.dm_port = transport.get_extra_info("sockname")[1]
        bs_link = DtlsServerLink(self.bootstrap.endpoint, self.bootstrap.resolve,
                                 ciphers=BOOTSTRAP_CIPHERS)
        self.bs_link = bs_link
        transport, _ = await loop.create_datagram_endpoint(lambda: bs_link,
                                                           local_addr=(host, bs_port))
        self._closers.append(transport.close)
        self.bs_port = transport.get_extra_info("sockname")[1]
        if nosec_port is not None:
            nosec_link = UdpLink(self.manager.endpoint)
            self.nosec_link = nosec_link
            transport, _ = await loop.create_datagram_endpoint(
                lambda: nosec_link, local_addr=(host, nosec_port))
            self._closers.append(transport.close)
            self.nosec_port = transport.get_extra_info("sockname")[1]
        self.bootstrap.dm_uri = f"coaps://{self._public_host}:{self.dm_port}"

    def _provision_certificate(self, tenant_id: str, iccid: str, imsi: str,
                               imei: str | None) -> tuple[bytes, bytes, bytes] | None:
        assert self.certificates is not None
        issued = self.certificates.provision(tenant_id, iccid, imsi, imei)
        if issued is not None:
            self.refresh_certificates()  # a CA registered since the last sweep
        return issued

    def _enrol_certificate(self, tenant_id: str, iccid: str, imsi: str,
                           csr: x509.CertificateSigningRequest) -> tuple[bytes, bytes] | None:
        assert self.certificates is not None
        issued = self.certificates.enrol(tenant_id, iccid, imsi, csr)
        if issued is not None:
            self.refresh_certificates()  # a CA registered since the last sweep
        return issued

    def _certificate_event(self, event: str, iccid: str) -> None:
        """A revoked certificate ends the SIM's certificate-mode sessions (called from the
        revoking thread; the sessions belong to the loop)."""
        loop, certificates = self._loop, self.certificates
        if event != "revoked" or loop is None or certificates is None:
            return
        imsi = certificates.imsi_of(iccid)

        def close() -> None:
            link = self.dm_link
            if link is not None and imsi is not None:
                link.close_where(lambda peer: (peer.identity or "").startswith(X509_PREFIX)
                                 and peer.entry is not None and peer.entry.imsi == imsi)

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(close)

    def refresh_certificates(self) -> bool:
        """Reload the tenant CAs as trust anchors if any was registered or removed since
        (called by the sweep; tests call it through :meth:`run_sync`)."""
        if self.certificates is None or self.dm_link is None or not self.certificates.changed():
            return False
        self.dm_link.use_certificates(self.certificates.mode())
        return True

    async def sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            self.manager.expire()
            try:
                self.refresh_certificates()
            except Exception:
                log.warning("LwM2M certificate trust could not be refreshed", exc_info=True)

    def start(self, host: str = "127.0.0.1", dm_port: int = 0, bs_port: int = 0,
              nosec_port: int | None = None) -> None:
        """Serve on a loop in a daemon thread; returns once the sockets are bound."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.serve(host, dm_port, bs_port, nosec_port))
            sweeper = loop.create_task(self.sweep())
            ready.set()
            loop.run_forever()
            sweeper.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="lwm2m", daemon=True)
        self._thread.start()
        ready.wait(30)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run ``coro`` on the servers' loop and wait for its result."""
        if self._loop is None:
            coro.close()  # never scheduled: closed here, not left to warn at collection
            raise Conflict("the LwM2M servers are not running (set SIMTRUST_LWM2M_BIND)",
                           reason="lwm2m-not-running")
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def run_sync(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the servers' loop (registry state is loop-owned)."""

        async def wrapped() -> T:
            return fn()

        return self.call(wrapped())

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a background task (a campaign) until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        def close() -> None:
            for closer in self._closers:
                closer()
            loop.stop()

        loop.call_soon_threadsafe(close)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        self.credentials.flush()
        if self.records is not None:
            self.records.flush()

    def close(self) -> None:
        self.stop()
        for sink in self._sinks:
            sink.close()
