"""The IMSI on the flow path is ``ImsiDigits``: a NewType over ``str`` that only the
validating constructor produces, and the type every flow, policy and detection
signature names (mypy --strict holds callers to it; this pins the annotations)."""

from __future__ import annotations

import typing

import pytest

from simtrust.detect import DeviceRef
from simtrust.domain import DeviceContext, FlowRecord, Imsi, ImsiDigits, imsi_digits
from simtrust.errors import InvalidIdentifier
from simtrust.policy import AddressResolver, DeviceDirectory, PolicyEngine, UsageMeter


def test_imsi_digits_accepts_what_imsi_accepts_and_costs_no_object() -> None:
    value = imsi_digits("001010000000001")
    assert str is type(value)
    assert "001010000000001" == value == Imsi("001010000000001").digits
    assert "001010000000001" == imsi_digits(" 001010000000001 ")


@pytest.mark.parametrize("bad", ["", "12345", "1234567890123456", "00101abc", "٠٠١٠١٠٠٠٠", 5])
def test_imsi_digits_refuses_what_imsi_refuses(bad: object) -> None:
    with pytest.raises(InvalidIdentifier):
        imsi_digits(bad)


def test_flow_path_signatures_name_imsi_digits() -> None:
    def hints(obj: object) -> dict[str, object]:
        return typing.get_type_hints(obj)

    assert ImsiDigits | None == hints(FlowRecord)["imsi"]
    assert ImsiDigits == hints(DeviceContext)["imsi"]
    assert ImsiDigits == hints(DeviceRef)["imsi"]
    assert ImsiDigits | None == hints(AddressResolver.lookup)["return"]
    assert ImsiDigits == hints(DeviceDirectory.context)["imsi"]
    assert ImsiDigits == hints(PolicyEngine.meter)["imsi"]


def test_per_imsi_state_on_the_flow_path_is_keyed_by_imsi_digits() -> None:
    """The byte counters of volume caps are keyed by the typed IMSI as well (the
    partitioned ingestion restores and writes them back)."""
    assert dict[tuple[ImsiDigits, str], tuple[int, int]] == typing.get_type_hints(
        UsageMeter.volume.fget)["return"]
