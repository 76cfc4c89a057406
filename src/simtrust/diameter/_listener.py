"""The Diameter listener as ``simtrust serve`` runs it: a node on its own thread and loop.

Built from the settings (``SIMTRUST_DIAMETER_BIND``, ``_ORIGIN_HOST``,
``_ORIGIN_REALM``, ``_PEERS``) and the subscriber services it is handed;
:meth:`DiameterListener.start` returns once the socket is bound, and
:meth:`DiameterListener.stop` sends DPR to the peers and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future

from simtrust.audit import AuditLog
from simtrust.detect import SimEvent, StormGuard
from simtrust.diameter._apps import CoreNetworkApps
from simtrust.diameter._node import DiameterNode, NodeSettings
from simtrust.subscriber import EirService, HssService

__all__ = ["DiameterListener"]


class DiameterListener:
    """A :class:`DiameterNode` serving S6a and S13 on a background event loop."""

    def __init__(
        self, settings: NodeSettings, hss: HssService, eir: EirService, audit: AuditLog,
        *, storm: StormGuard | None = None,
        observer: Callable[[SimEvent], object] | None = None,
    ) -> None:
        self.apps = CoreNetworkApps(hss, eir, settings.origin_host, settings.origin_realm,
                                    storm=storm, observer=observer)
        self.node = DiameterNode(settings, self.apps.handlers(), audit,
                                 self.apps.batch_handlers())
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"DiameterListener({self.node!r}, address={self.address})"

    def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind ``host:port`` (0: ephemeral) and serve in the background; the bound address."""
        bound: Future[tuple[str, int]] = Future()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                address = self._loop.run_until_complete(self.node.start(host, port))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller by bound.result()
                bound.set_exception(exc)
                return
            self.apps.attach(self.node)
            bound.set_result(address)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="diameter", daemon=True)
        self._thread.start()
        self.address = bound.result(timeout=30)
        return self.address

    def stop(self) -> None:
        if self._thread is None:
            return
        self.apps.detach()
        done = asyncio.run_coroutine_threadsafe(self.node.close(), self._loop)
        done.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop.close()
