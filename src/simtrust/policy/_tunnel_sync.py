"""``simtrust serve`` applying the stored tunnels to its gateway (issue 21: tunnels "set up
and torn down by the operator as the enterprise's APN changes").

:meth:`TunnelSync.check` runs on the serve loop: it reads every tunnel of the
:class:`~simtrust.policy.TunnelStore` (so a tunnel stored, changed or removed by any API
worker or by the CLI counts), and when the rendered configuration differs from the one it
applied last it hands the whole set to the gateway's ``apply``
(:meth:`~simtrust.policy.TunnelGateway.apply`: ``swanctl --load-all --clear`` over charon's
VICI socket, strongSwan swanctl(8), then the guard table). The first check at serve start
applies all stored tunnels. Unchanged configuration is not applied again (idempotent).
A refused apply is one ``tunnel-apply-failed`` alert per affected tunnel (audit record,
MQTT, webhook) and is retried every ``retry_s`` seconds; it never stops the serve loop.
The affected tunnels are the ones being applied and the ones applied last that the store
no longer holds (their removal failed: the gateway may still carry their traffic), so a
removal that fails also alerts when the store is now empty; when nothing was applied yet
and nothing is stored, one operator-level alert names the gateway as a whole (tunnel
``*``). Only a digest of the rendered configuration is kept: it holds the PSKs.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from simtrust.errors import SimtrustError
from simtrust.policy._tunnel_gateway import TunnelChange
from simtrust.policy._tunnel_store import TunnelStore
from simtrust.policy._tunnels import TunnelAlert, TunnelSpec, render_swanctl

__all__ = ["TunnelSync"]

log = logging.getLogger(__name__)


class TunnelSync:
    """Keeps one gateway's charon equal to the stored tunnels."""

    def __init__(self, store: TunnelStore, apply: Callable[[Sequence[TunnelSpec]], TunnelChange],
                 *, on_alert: Callable[[TunnelAlert], None], clock: Callable[[], datetime],
                 retry_s: float = 5.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._apply = apply
        self._on_alert = on_alert
        self._clock = clock
        self._retry_s = retry_s
        self._monotonic = monotonic
        self._applied: bytes | None = None
        self._live: dict[str, TunnelSpec] = {}  # the tunnels of the last successful apply
        self._failed: bytes | None = None
        self._next_try = 0.0
        self.applies = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"TunnelSync(applies={self.applies}, failures={self.failures})"

    def check(self) -> TunnelChange | None:
        """Apply the stored tunnels if they changed since the last apply; the change, or
        None when nothing was applied (unchanged, failed, or waiting to retry)."""
        try:
            specs = sorted(self._store.tunnels(), key=lambda s: s.name)
        except SimtrustError:
            log.exception("the stored tunnels could not be read")
            return None
        digest = hashlib.sha256(render_swanctl(specs, start=True).encode()).digest()
        if digest == self._applied:
            return None
        now = self._monotonic()
        if digest == self._failed and now < self._next_try:
            return None
        try:
            change = self._apply(specs)
        except (SimtrustError, OSError, subprocess.SubprocessError) as exc:
            self._fail(digest, specs, exc, now)
            return None
        self._applied, self._failed = digest, None
        self._live = {s.name: s for s in specs}
        self.applies += 1
        log.info("tunnels applied: added %s, removed %s", change.added, change.removed)
        return change

    def _fail(self, digest: bytes, specs: Sequence[TunnelSpec], exc: Exception,
              now: float) -> None:
        self._next_try = now + self._retry_s
        self.failures += 1
        if digest == self._failed:
            return  # one alert per configuration, not one per retry
        self._failed = digest
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        log.warning("applying %d stored tunnels failed: %s; retrying", len(specs), reason)
        at = self._clock().isoformat()
        for spec in specs:
            self._on_alert(TunnelAlert(spec.name, spec.tenant_id, spec.apn,
                                       {"apply": reason}, at, kind="tunnel-apply-failed"))
        wanted = {s.name for s in specs}
        gone = [s for name, s in sorted(self._live.items()) if name not in wanted]
        for spec in gone:
            self._on_alert(TunnelAlert(spec.name, spec.tenant_id, spec.apn,
                                       {"apply": reason, "removal": "failed"}, at,
                                       kind="tunnel-apply-failed"))
        if not specs and not gone:
            self._on_alert(TunnelAlert("*", "", "", {"apply": reason}, at,
                                       kind="tunnel-apply-failed"))
