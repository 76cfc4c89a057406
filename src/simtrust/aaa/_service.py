"""The AAA services of one process, built from their collaborators, and the link from
SIM life-cycle changes to Disconnect-Requests (RFC 5176 §3).

When a SIM is suspended or terminated — by an operator, a policy ``remove``
action (a volume cap crossed in accounting included) or a detection action —
every open session of that SIM is disconnected at its gateway, on a
background thread so the transition itself never waits for a gateway.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.aaa._apn import ApnAccessStore
from simtrust.aaa._clients import GatewayClients
from simtrust.aaa._coa import CoaResult, DynamicAuthClient
from simtrust.aaa._server import EapHandler, RadiusServer, UsageSink
from simtrust.aaa._sessions import AccountingLog, Session
from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.errors import NotFound, SimtrustError
from simtrust.store import Database
from simtrust.subscriber import AttachEngine, Imsi, Inventory, SimState

__all__ = ["AaaServices", "build_aaa"]

_log = logging.getLogger("simtrust.aaa")


@dataclass(slots=True)
class AaaServices:
    """Gateway clients, APN access, accounting, the server and dynamic authorization."""

    clients: GatewayClients
    apns: ApnAccessStore
    accounting: AccountingLog
    server: RadiusServer
    coa: DynamicAuthClient
    inventory: Inventory
    _jobs: queue.SimpleQueue[tuple[str, str] | None]
    _worker: threading.Thread | None = None
    _watch_stop: threading.Event | None = None
    #: False in a RADIUS worker process: the ``serve`` master alone sends
    #: Disconnect-Requests for SIM changes (it follows every process's through the
    #: change feed, :meth:`watch`), so a gateway gets one per change, not one per process.
    sends_coa: bool = True

    def __repr__(self) -> str:
        return f"AaaServices({self.server!r})"

    def disconnect_sim(self, imsi: str, *, actor: str, reason: str) -> list[CoaResult]:
        """Send a Disconnect-Request for every open session of ``imsi``; the results."""
        results = []
        for session in self.accounting.open_sessions_of_imsi(imsi):
            results.append(self._disconnect(session, actor=actor, reason=reason))
        return results

    def change_sim(self, imsi: str, *, actor: str, reason: str,
                   session_timeout: int | None = None,
                   filter_id: str | None = None) -> list[CoaResult]:
        """A CoA-Request for every open session of ``imsi``."""
        results = []
        for session in self.accounting.open_sessions_of_imsi(imsi):
            try:
                client = self.clients.get(session.client_id)
            except NotFound:
                continue
            results.append(self.coa.change(session, client, actor=actor, reason=reason,
                                           session_timeout=session_timeout,
                                           filter_id=filter_id))
        return results

    def _disconnect(self, session: Session, *, actor: str, reason: str) -> CoaResult:
        try:
            client = self.clients.get(session.client_id)
        except NotFound:
            return CoaResult("no-client", session.acct_session_id, "", 0)
        return self.coa.disconnect(session, client, actor=actor, reason=reason)

    def as_worker(self, index: int, count: int) -> None:
        """Serve as RADIUS worker ``index`` of ``count`` (:meth:`RadiusServer.as_worker`),
        leaving Disconnect-Requests to the master."""
        self.server.as_worker(index, count)
        self.sends_coa = False

    def _on_change(self, kind: str, item: str) -> None:
        if kind == "sim" and item != "*" and self.sends_coa:
            self._jobs.put(("sim", item))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="simtrust-aaa-coa",
                                                 daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            imsi = job[1]
            try:
                sim = self.inventory.find_sim(Imsi(imsi))
                if sim is None or sim.state in (SimState.SUSPENDED, SimState.TERMINATED):
                    state = "removed" if sim is None else str(sim.state)
                    self.disconnect_sim(imsi, actor="aaa", reason=f"sim-{state}")
            except (SimtrustError, OSError) as exc:
                _log.error("disconnect of SIM %s failed: %s", imsi, exc)

    def watch(self, interval: float = 0.5) -> None:
        """Follow SIM changes other processes make (the inventory's change feed), so a
        SIM suspended through another process's CLI or API is disconnected too."""
        if self._watch_stop is not None:
            return
        stop = self._watch_stop = threading.Event()
        changes = self.inventory.changes
        seen = changes.head()
        applied: set[int] = set()

        def loop() -> None:
            nonlocal seen, applied
            while not stop.wait(interval):
                try:
                    rows, _reload = changes.since(seen)
                except SimtrustError as exc:
                    _log.error("change feed unreadable: %s", exc.detail)
                    continue
                for seq, kind, item in rows:
                    if seq in applied:
                        continue
                    applied.add(seq)
                    seen = max(seen, seq)
                    self._on_change(kind, item)
                if len(applied) > 4096:
                    applied = {q for q in applied if q > seen - 1024}

        threading.Thread(target=loop, name="simtrust-aaa-watch", daemon=True).start()

    def close(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join(timeout=10)
            self._worker = None
        self.server.committer.close()
        self.accounting.close()
        close_eap = getattr(self.server.eap, "close", None)
        if close_eap is not None:
            close_eap()


def build_aaa(
    db: Database,
    keyring: Keyring,
    audit: AuditLog,
    clock: Callable[[], datetime],
    inventory: Inventory,
    attach: AttachEngine,
    *,
    usage: UsageSink | None = None,
    eap: EapHandler | None = None,
    **server_options: Any,
) -> AaaServices:
    """Build the AAA services; ``usage`` receives accounted bytes (the policy engine)."""
    clients = GatewayClients(db, keyring, audit, clock)
    apns = ApnAccessStore(db, keyring, audit, clock)
    accounting = AccountingLog(db)
    server = RadiusServer(clients, attach, apns, accounting, audit, clock, usage=usage, eap=eap,
                          **server_options)
    services = AaaServices(clients, apns, accounting, server, DynamicAuthClient(audit),
                           inventory, queue.SimpleQueue())
    inventory.subscribe(services._on_change)
    return services
