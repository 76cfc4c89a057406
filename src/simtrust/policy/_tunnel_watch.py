"""``simtrust serve`` watching the gateway's charon (``SIMTRUST_TUNNEL_VICI``): a
:class:`~simtrust.policy.TunnelEvents` on charon's VICI socket (strongSwan
``src/libcharon/plugins/vici/README.md``, "Event messages") whose ``down`` events of a
tunnel stored for an APN (:class:`~simtrust.policy.TunnelStore`, looked up at the event,
so a tunnel stored by any API worker counts at once) become ``tunnel-down`` alerts for the
alert stack. charon restarting closes the socket; the serve loop's :meth:`TunnelWatch.check`
connects again (at most every ``retry_s`` seconds), and an unreachable socket is logged
once per outage, not per attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from simtrust.errors import SimtrustError
from simtrust.policy._tunnel_store import TunnelStore
from simtrust.policy._tunnels import TunnelAlert
from simtrust.policy._vici import TunnelEvent, TunnelEvents

__all__ = ["TunnelWatch"]

log = logging.getLogger(__name__)


class TunnelWatch:
    """Keeps one :class:`TunnelEvents` connected to charon and alerts on stored tunnels."""

    def __init__(self, path: str, store: TunnelStore, *,
                 on_alert: Callable[[TunnelAlert], None],
                 on_event: Callable[[TunnelEvent], None] = lambda _e: None,
                 clock: Callable[[], datetime], retry_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._store = store
        self._on_alert = on_alert
        self._on_event = on_event
        self._clock = clock
        self._retry_s = retry_s
        self._monotonic = monotonic
        self._next_try = 0.0
        self._reported = False
        self.events: TunnelEvents | None = None
        self.connects = 0

    def __repr__(self) -> str:
        return f"TunnelWatch({self._path}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        return self.events is not None and self.events.alive

    def _event(self, event: TunnelEvent) -> None:
        self._on_event(event)
        if event.kind != "down":
            return
        try:
            spec = self._store.find(event.tunnel)
        except SimtrustError:
            log.exception("tunnel %s went down; the stored tunnels could not be read",
                          event.tunnel)
            return
        if spec is not None:
            self._on_alert(TunnelAlert(spec.name, spec.tenant_id, spec.apn,
                                       {"ike": event.state or "DELETING"}, event.at))

    def check(self) -> bool:
        """Connect if not connected and the retry interval has passed; True if connected."""
        if self.connected:
            return True
        now = self._monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self._retry_s
        if self.events is not None:
            self.events.close()
            self.events = None
        events = TunnelEvents(self._path, (), on_event=self._event, clock=self._clock)
        try:
            events.start()
        except (OSError, ConnectionError, SimtrustError) as exc:
            if not self._reported:
                log.warning("charon's VICI socket %s is not reachable (%s); retrying",
                            self._path, exc)
                self._reported = True
            return False
        self.events = events
        self.connects += 1
        self._reported = False
        return True

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
