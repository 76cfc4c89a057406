"""The public surface of simtrust.detect is exactly its sorted ``__all__``."""

from __future__ import annotations

import simtrust.detect as detect
from simtrust.testing.detect import attacks, evaluation


def _ruff_order(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_resolvable() -> None:
    for module in (detect, attacks, evaluation):
        names = list(module.__all__)
        assert names == sorted(names, key=_ruff_order)
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_alert_kinds_are_the_contract() -> None:
    assert set(detect.ALERT_KINDS) == {
        "scan",
        "ddos",
        "beacon",
        "volume",
        "time",
        "destination",
        "sim-swap",
    }
