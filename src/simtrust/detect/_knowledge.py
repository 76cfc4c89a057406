"""What the detector knows about destinations: address classes and DNS names.

A destination is *known* to a device when its baseline (or its cohort's)
holds the address, a covering prefix or one of the names DNS answers tied to
it; without any baseline, a destination the device looked up by name is known
(self-baselining, docs/decisions/detect-self-baselining.md).
"""

from __future__ import annotations

from simtrust.detect._addresses import classify
from simtrust.detect._device import DeviceState

__all__ = ["DestinationKnowledge"]


class DestinationKnowledge:
    """Address classes (cached) and name→address facts shared by every device."""

    __slots__ = ("classes", "names")

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.classes: dict[str, int] = {}

    def learn_name(self, address: str, name: str) -> None:
        self.names.setdefault(address, set()).add(name.lower().rstrip("."))

    def classify(self, dst: str) -> int:
        """The address class of ``dst`` (cached)."""
        cls = self.classes.get(dst)
        if cls is None:
            if len(self.classes) > 1_000_000:
                self.classes.clear()
            cls = self.classes[dst] = classify(dst)
        return cls

    def known(self, dev: DeviceState, dst: str) -> bool:
        """Whether ``dst`` is one of the device's known destinations (cached per device)."""
        known = dev.known.get(dst)
        if known is None:
            known = self._knows(dev, dst)
            if known or len(dev.known) < 100_000:
                dev.known[dst] = known
        return known

    def _knows(self, dev: DeviceState, dst: str) -> bool:
        names = self.names.get(dst, ())
        if dev.base is None and dev.cohort is None:
            # Self-baselining: a destination the device looked up by name is one it meant
            # to reach; bare-address contact is what needs explaining.
            return bool(names)
        return bool(
            (dev.base is not None and dev.base.knows(dst, names))
            or (dev.cohort is not None and dev.cohort.knows(dst, names))
        )
