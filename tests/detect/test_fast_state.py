"""The detector's C path and the objects in a device's state that others may hold.

``simtrust.detect._fast`` gives a float of a flood entry or of a destination's
contact moments its new value in place when the entry's list is the float's only
holder, and reads the state of the records a few places ahead before taking
each record (prefetching, a hint only). A float anyone else holds must keep its
value, and no state, however unusual its containers, may change what a record
does: the alerts and the state stay those of ``observe`` record by record.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import _batch as detect_batch
from simtrust.domain import FlowRecord, imsi_digits
from tests.detect.test_fast_columns import _DEVICES, _PEERS, _Columns, _detector, _state

pytestmark = pytest.mark.skipif(detect_batch._fast is None,
                                reason="simtrust.detect._fast is not built")

_HELD = st.lists(st.tuples(st.sampled_from(_DEVICES), st.sampled_from(_PEERS[:3]),
                           st.floats(0, 25.0), st.integers(1, 6), st.integers(40, 4000),
                           st.sampled_from([0x1B, 0x02])),
                 min_size=1, max_size=80)


def _flows(records: list[tuple[Any, ...]]) -> list[FlowRecord]:
    """Records in time order, a few seconds apart: flood entries and contact moments move."""
    out, t = [], 1_700_000_000.0
    for src, dst, gap, packets, octets, flags in records:
        t += gap
        out.append(FlowRecord(t, t + 1.0, src, dst, 4000, 443, 6, packets, octets, flags, "x"))
    return out


def _floats(det: Any) -> list[tuple[float, float]]:
    """Every float of every flood entry and contact moments list, with its value now."""
    held = []
    for dev in det._by_imsi.values():
        for entries in (dev.dst_cur, dev.dst_prev, dev.beacons):
            for e in entries.values():
                held += [(x, float(x)) for x in e if type(x) is float]
    return held


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=_HELD, split=st.integers(1, 12))
def test_floats_held_elsewhere_keep_their_value(records: list[tuple[Any, ...]],
                                                split: int) -> None:
    flows = _flows(records)
    want, got = _detector(60_000.0), _detector(60_000.0)
    for k in range(0, len(flows), split):
        held = _floats(got)
        chunk = flows[k:k + split]
        assert want.run(chunk) == got.observe_columns(_Columns(chunk))
        assert all(x == value for x, value in held)
    assert _state(want) == _state(got)


def test_unusual_containers_leave_what_observe_leaves() -> None:
    """Dictionaries with keys other than addresses, more entries than are read ahead, and
    containers of other types change nothing the C path or its reading ahead does."""
    flows = _flows([(_DEVICES[i % 3], _PEERS[i % 3], 3.0, 4, 300, 0x1B) for i in range(40)])
    want, got = _detector(60_000.0), _detector(60_000.0)
    assert want.run(flows[:6]) == got.observe_columns(_Columns(flows[:6]))
    for det in (want, got):
        devs = list(det._by_imsi.values())
        devs[0].beacons[7] = [0.0, 0.0, 0.0, 0.0, 0.0]  # a key that is not a str
        devs[0].dst_prev = {f"198.18.0.{i}": [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] for i in range(20)}
        devs[1].known = {("not", "an address"): True, **devs[1].known}
        devs[1].dst_cur = dict(devs[1].dst_cur)
        devs[2].beacons = {f"198.18.1.{i}": [0.0, 0.0, 0.0, 0.0, 0.0] for i in range(300)}
    for k in range(6, len(flows), 5):
        chunk = flows[k:k + 5]
        assert want.run(chunk) == got.observe_columns(_Columns(chunk))
    assert _state(want) == _state(got)
    dev = got._by_imsi[imsi_digits(f"00101{2:010d}")]
    assert len(dev.beacons) == 301
