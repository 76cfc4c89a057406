"""The device directory the policy engine reads: IMSI → tenant, APN, group, serving MCC.

:class:`SubscriberDirectory` answers ``simtrust.policy``'s ``DeviceDirectory``
protocol (``context(imsi)``) from the attach engine's cache: the SIM's tenant,
APN and device group from the inventory, ``active`` from its life-cycle state,
and ``serving_mcc`` from the SIM's latest allowed attach. Paired with
:class:`AddressBook` (the ``AddressResolver``), it lets the policy engine map
flows to SIMs and their context.
"""

from __future__ import annotations

from simtrust.domain import DeviceContext, ImsiDigits
from simtrust.subscriber._attach import AttachEngine
from simtrust.subscriber._model import SimState

__all__ = ["SubscriberDirectory"]


class SubscriberDirectory:
    """``DeviceDirectory`` over the subscriber inventory (cached, coherent)."""

    __slots__ = ("_engine", "_tz")

    def __init__(self, engine: AttachEngine, tz: str = "UTC") -> None:
        self._engine = engine
        self._tz = tz

    def __repr__(self) -> str:
        return f"SubscriberDirectory({self._engine!r})"

    def context(self, imsi: ImsiDigits) -> DeviceContext | None:
        view = self._engine.sim_view(imsi)
        if view is None:
            return None
        group = self._engine.group_name(view.group_id)
        return DeviceContext(
            imsi=ImsiDigits(view.imsi),  # from the store: validated when provisioned
            tenant_id=view.tenant_id,
            apn=view.apn or "",
            group=group or "",
            tz=self._tz,
            serving_mcc=self._engine.serving_mcc(imsi),
            active=view.state in (SimState.ACTIVE, SimState.TEST),
        )
