"""The device behind a flow as the inventory and the attach path know it.

Filled by the subscriber inventory and read by policy evaluation and
enforcement; it lives here, in the base layer, so neither package has to
import the other to exchange it.
"""

from __future__ import annotations

from dataclasses import dataclass

from simtrust.domain._identifiers import ImsiDigits

__all__ = ["DeviceContext"]


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """What the policy needs to know about the device behind a flow.

    Filled by the subscriber inventory (tenant, APN, group, time zone) and the
    attach path (``serving_mcc``: the MCC of the network the SIM is attached to).
    ``active`` is false for a SIM that is suspended or terminated: none of its
    flows may start.
    """

    imsi: ImsiDigits
    tenant_id: str
    apn: str = ""
    group: str = ""
    tz: str = "UTC"
    serving_mcc: str | None = None
    active: bool = True
