"""Tier-2 credentials die with the SIM: revocation on suspension, termination, remove and swap.

- Inventory change notifications (``Inventory.subscribe``): a SIM that became
  ``suspended`` loses its certificates with reason certificateHold, a
  ``terminated`` one with cessationOfOperation (RFC 5280 §5.3.1); both also lose
  their GBA and AKMA contexts, so they cannot bootstrap a new certificate.
- A policy or detection ``remove`` action (``policy.RemoveAction``) revokes with
  privilegeWithdrawn (the policy package also suspends the SIM, which lands here too).
- A SIM seen in a new device (the attach engine's ``sim-in-new-device`` alert,
  delivered through ``subscriber.AlertDispatcher``) revokes with affiliationChanged.
"""

from __future__ import annotations

import logging

from simtrust.bootstrap._akma import Aanf
from simtrust.bootstrap._bsf import Bsf
from simtrust.bootstrap._ca import CertificateAuthorities
from simtrust.domain import Imsi
from simtrust.errors import InvalidInput, NotFound
from simtrust.subscriber import Inventory, SimState, SwapAlert

__all__ = ["SimRevocation"]

_log = logging.getLogger("simtrust.bootstrap.revocation")


class SimRevocation:
    """Listener, remove action and alert sink that revoke a SIM's tier-2 certificates."""

    name = "bootstrap-revocation"

    def __init__(self, cas: CertificateAuthorities, bsf: Bsf, aanf: Aanf,
                 inventory: Inventory) -> None:
        self._cas = cas
        self._bsf = bsf
        self._aanf = aanf
        self._inventory = inventory
        self.revoked = 0

    def __repr__(self) -> str:
        return f"SimRevocation(revoked={self.revoked})"

    def _revoke(self, iccid: str, imsi: str, reason: str, actor: str, why: str) -> list[str]:
        serials = self._cas.revoke_sim(iccid, reason=reason, actor=actor, why=why)
        self._bsf.forget(imsi)
        self._aanf.remove(f"imsi-{imsi}", actor=actor)
        self.revoked += len(serials)
        return serials

    def on_change(self, kind: str, item: str) -> None:
        """Inventory listener: ``("sim", imsi)`` after each SIM write."""
        if kind != "sim":
            return
        try:
            sim = self._inventory.find_sim(Imsi(item))
        except InvalidInput:
            return
        if sim is None:
            return
        if sim.state is SimState.SUSPENDED:
            self._revoke(sim.iccid.value, sim.imsi.value, "certificateHold", "sim-lifecycle",
                         "sim suspended")
        elif sim.state is SimState.TERMINATED:
            self._revoke(sim.iccid.value, sim.imsi.value, "cessationOfOperation",
                         "sim-lifecycle", "sim terminated")

    def remove(self, imsi: Imsi, *, tenant_id: str, reason: str, actor: str) -> None:
        """``policy.RemoveAction``: revoke the SIM's credentials."""
        sim = self._inventory.find_sim(imsi)
        if sim is None or sim.tenant_id != tenant_id:
            raise NotFound("no such SIM for this tenant")
        self._revoke(sim.iccid.value, sim.imsi.value, "privilegeWithdrawn", actor, reason)

    def send(self, alert: SwapAlert) -> None:
        """Alert sink: a SIM in a new device loses its certificates."""
        if alert.kind != "sim-in-new-device":
            return
        serials = self._revoke(alert.iccid, alert.imsi, "affiliationChanged", "attach",
                               f"sim seen in new device {alert.imei}")
        if serials:
            _log.info("revoked %d certificate(s) of SIM %s after a swap", len(serials),
                      alert.iccid)

    def close(self) -> None:
        """Nothing to release (the authorities belong to the bootstrap services)."""
