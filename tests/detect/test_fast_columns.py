"""The detector's column entry against ``observe`` at the edges of its C arithmetic.

``simtrust.detect._fast`` computes window numbers, byte counts and time
comparisons in C when the values are exact floats and ints below 2**52, and
through Python's number protocol otherwise. Generated records with negative,
ordinary and huge times, octet counts up to 2**64 - 1 and thresholds that are
floats or ints must leave the alerts and the device state that ``observe``
leaves record by record, with and without the extension.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import Detector, DeviceRef, Thresholds
from simtrust.detect import _batch as detect_batch
from simtrust.detect._device import DeviceState
from simtrust.domain import FlowRecord, imsi_digits

_DEVICES = ["10.64.0.1", "10.64.0.2", "10.64.0.3"]
_PEERS = ["192.0.2.3", "198.51.100.7", "203.0.113.5", "224.0.0.251"]


class _Columns:
    """The attributes ``observe_columns`` reads of a ``FlowColumns``, from records."""

    def __init__(self, records: list[FlowRecord]) -> None:
        self._records = records
        self.src_addr = b"".join(socket.inet_aton(r.src_addr) for r in records)
        self.dst_addr = b"".join(socket.inet_aton(r.dst_addr) for r in records)
        self.start = np.array([r.start for r in records], np.float64)
        self.end = np.array([r.end for r in records], np.float64)
        for name in ("dst_port", "protocol", "packets", "octets", "tcp_flags"):
            setattr(self, name, np.array([getattr(r, name) for r in records], np.uint64))

    def __len__(self) -> int:
        return len(self._records)

    def record(self, i: int) -> FlowRecord:
        return self._records[i]


def _detector(volume: float) -> Detector:
    refs = {a: DeviceRef(imsi_digits(f"00101{i:010d}"), "meters", "acme")
            for i, a in enumerate(_DEVICES)}
    th = Thresholds(scan_floor=3, breadth_floor=3, ddos_packets_floor=2000,
                    ddos_flows_floor=4, ddos_bytes_floor=50_000, volume_floor_default=volume,
                    beacon_min_contacts=3, beacon_min_period_s=1.0)
    return Detector(subscribers=refs, thresholds=th)


def _state(det: Detector) -> list[tuple[Any, ...]]:
    return [(imsi, *(getattr(dev, n) for n in DeviceState.__slots__
                     if n not in ("base", "cohort", "learn")))
            for imsi, dev in det._by_imsi.items()]


@contextmanager
def _native(native: bool) -> Iterator[None]:
    """The C path as built, or (``native`` false) observe's body in Python for every record."""
    saved = detect_batch._fast
    if not native:
        detect_batch._fast = None
    try:
        yield
    finally:
        detect_batch._fast = saved


_TIME = st.one_of(st.floats(-1e6, 1e6), st.floats(1.69e9, 1.71e9), st.floats(1e15, 1e18),
                  st.integers(-10**6, 10**6).map(float))
_RECORD = st.tuples(
    st.sampled_from(_DEVICES + _PEERS[:1]), st.sampled_from(_PEERS + _DEVICES[:1]),
    _TIME, st.floats(0, 40.0),
    st.one_of(st.integers(0, 30_000), st.integers(0, 2**64 - 1),
              st.integers(2**52 - 40_000, 2**52 + 40_000)),
    st.integers(1, 2000), st.sampled_from([443, 23, 53, 80]), st.sampled_from([6, 17]),
    st.sampled_from([0x02, 0x12, 0x1B, 0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_RECORD, min_size=1, max_size=60), split=st.integers(1, 20),
       volume=st.sampled_from([60_000, 60_000.0, 2**53, float(2**53), 1e300]),
       native=st.booleans(), ordered=st.booleans())
def test_columns_leave_what_observe_leaves(records: list[tuple[Any, ...]], split: int,
                                           volume: float, native: bool, ordered: bool) -> None:
    flows = [FlowRecord(t, t + dur, s, d, 4000, port, proto, packets, octets, flags, "x")
             for s, d, t, dur, octets, packets, port, proto, flags in records]
    if ordered:
        flows.sort(key=lambda f: f.end)
    want, got = _detector(volume), _detector(volume)
    with _native(native):
        for k in range(0, len(flows), split):
            chunk = flows[k:k + split]
            assert want.run(chunk) == got.observe_columns(_Columns(chunk))
    assert _state(want) == _state(got)


@pytest.mark.skipif(detect_batch._fast is None, reason="simtrust.detect._fast is not built")
def test_byte_counts_past_the_c_range_go_through_python_ints() -> None:
    """Bytes summed past 2**52 (and past 2**64) stay exact Python ints, as observe has them."""
    det, ref = _detector(1e300), _detector(1e300)
    flows = [FlowRecord(100.0 + i, 101.0 + i, _DEVICES[0], _PEERS[0], 4000, 443, 6, 3,
                        2**63 + i, 0x1B, "x") for i in range(6)]
    assert det.observe_columns(_Columns(flows)) == ref.run(flows)
    dev = det._by_imsi[imsi_digits(f"00101{0:010d}")]
    assert dev.by_cur == sum(f.octets for f in flows)
    assert type(dev.by_cur) is int
