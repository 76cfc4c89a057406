"""The detector's C path reads the numeric columns where they lie.

``simtrust.detect._fast`` reads start and end times, ports, protocols, packet and
octet counts and TCP flags through the buffer protocol (the collector's
memoryviews, or arrays) instead of lists of Python numbers. Columns of unsigned
integers of any width, given as arrays or as memoryviews, must leave the alerts
and the state that ``observe`` leaves record by record, with and without the
extension; a port or protocol past the C range is left to Python, and a column
that is not one of those formats, or of another length, is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import _batch as detect_batch
from simtrust.domain import FlowRecord
from tests.detect.test_fast_columns import (
    _DEVICES,
    _PEERS,
    _RECORD,
    _Columns,
    _detector,
    _native,
    _state,
)

_INTS = ("dst_port", "protocol", "packets", "octets", "tcp_flags")
_WIDTH = {"dst_port": np.uint16, "protocol": np.uint8, "packets": np.uint16,
          "octets": np.uint64, "tcp_flags": np.uint8}


class _Narrow(_Columns):
    """Columns of the narrowest unsigned type each holds, as arrays or memoryviews."""

    def __init__(self, records: list[FlowRecord], views: bool) -> None:
        super().__init__(records)
        for name in _INTS:
            col = getattr(self, name).astype(_WIDTH[name])
            setattr(self, name, memoryview(col) if views else col)
        if views:
            for name in ("start", "end"):
                setattr(self, name, memoryview(getattr(self, name)))


def _flows(records: list[tuple[Any, ...]]) -> list[FlowRecord]:
    return [FlowRecord(t, t + dur, s, d, 4000, port, proto, packets, octets, flags, "x")
            for s, d, t, dur, octets, packets, port, proto, flags in records]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_RECORD, min_size=1, max_size=60), split=st.integers(1, 20),
       views=st.booleans(), native=st.booleans(), ordered=st.booleans())
def test_narrow_columns_leave_what_observe_leaves(records: list[tuple[Any, ...]], split: int,
                                                  views: bool, native: bool,
                                                  ordered: bool) -> None:
    flows = _flows(records)
    if ordered:
        flows.sort(key=lambda f: f.end)
    want, got = _detector(60_000.0), _detector(60_000.0)
    with _native(native):
        for k in range(0, len(flows), split):
            chunk = flows[k:k + split]
            assert want.run(chunk) == got.observe_columns(_Narrow(chunk, views))
    assert _state(want) == _state(got)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(big=st.lists(st.tuples(st.integers(2**63, 2**64 - 1), st.booleans()), min_size=1,
                    max_size=6),
       native=st.booleans())
def test_ports_and_protocols_past_the_c_range_are_left_to_python(
        big: list[tuple[int, bool]], native: bool) -> None:
    """A port or protocol number no C long holds is judged by Python's ints, as observe does."""
    flows = []
    for k, (value, as_port) in enumerate(big):
        t = 1_700_000_000.0 + 3 * k
        flows.append(FlowRecord(t, t + 1.0, _DEVICES[0], _PEERS[k % 3], 4000,
                                value if as_port else 443, 6 if as_port else value, 3, 900,
                                0x1B, "x"))
        flows.append(FlowRecord(t + 1, t + 2.0, _DEVICES[0], _PEERS[0], 4000, 443, 6, 2, 400,
                                0x1B, "x"))
    want, got = _detector(60_000.0), _detector(60_000.0)
    with _native(native):
        assert want.run(flows) == got.observe_columns(_Columns(flows))
    assert _state(want) == _state(got)


def _quiet(n: int) -> list[FlowRecord]:
    return [FlowRecord(1_700_000_000.0 + i, 1_700_000_001.0 + i, _DEVICES[0], _PEERS[0], 4000,
                       443, 6, 3, 900, 0x1B, "x") for i in range(n)]


@pytest.mark.skipif(detect_batch._fast is None, reason="simtrust.detect._fast is not built")
@pytest.mark.parametrize(("name", "dtype"), [("start", np.float32), ("end", np.int64),
                                             ("octets", np.int64), ("packets", np.float64)])
def test_a_column_of_another_format_is_refused(name: str, dtype: Any) -> None:
    cols = _Columns(_quiet(4))
    setattr(cols, name, getattr(cols, name).astype(dtype))
    with pytest.raises(ValueError, match="a column of format"):
        _detector(60_000.0).observe_columns(cols)


@pytest.mark.skipif(detect_batch._fast is None, reason="simtrust.detect._fast is not built")
def test_a_column_of_another_length_is_refused() -> None:
    cols: Any = _Columns(_quiet(4))
    cols.octets = cols.octets[:3]
    with pytest.raises(ValueError, match="different lengths"):
        _detector(60_000.0).observe_columns(cols)
