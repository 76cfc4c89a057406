"""The batch path's usage counters against everything else that reads or writes them.

:meth:`PolicyEngine.ingest_columns` keeps the volume and rate counters in arrays
between batches and writes them into the :class:`UsageMeter` dicts only when
something else uses the meter (``policy/_slots.py``). Here one engine takes
every record through :meth:`PolicyEngine.ingest` and another takes the same
operations with column batches interleaved with per-record batches, RADIUS
byte counts (:meth:`PolicyEngine.meter`), counters written into
``usage.volume`` (as the NATS applier restores them), ``reset`` and reads, on
generated records spanning hour and rate-window boundaries: every decision, the
counters at every read and at the end must be the same.
"""

from __future__ import annotations

import socket
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.domain import FlowRecord, imsi_digits
from simtrust.flows import FlowDecoder
from simtrust.flows._columns import FlowColumns
from simtrust.policy import PolicyEngine, _slots
from tests.flows.test_batch_path import (
    _DEVICES,
    _POLICY,
    _RECORD,
    RECORD,
    _buffer,
    _message,
    _notable,
    _world,
    needs_rx,
)

_EXPORT = 1_700_002_000  # 33 minutes past an hour (UTC): records cross hour boundaries
_IMSIS = [imsi_digits(f"00101{i:010d}") for i in range(len(_DEVICES))]

_OP = st.one_of(
    st.tuples(st.just("columns"), st.lists(_RECORD, min_size=1, max_size=30)),
    st.tuples(st.just("records"), st.lists(_RECORD, min_size=1, max_size=10)),
    st.tuples(st.just("meter"), st.integers(0, len(_DEVICES) - 1), st.integers(0, 60_000),
              st.integers(-4_000, 8_000)),
    st.tuples(st.just("write"), st.integers(0, len(_DEVICES) - 1),
              st.sampled_from(["hour", "day", "month"]), st.integers(0, 3),
              st.integers(0, 200_000)),
    st.tuples(st.just("reset"), st.one_of(st.none(), st.integers(0, len(_DEVICES) - 1))),
    st.tuples(st.just("read"),),
)


def _decoded(records: list[tuple[Any, ...]], seq: int
             ) -> tuple[list[FlowRecord], list[FlowColumns | list[FlowRecord]]]:
    raw = [RECORD.pack(socket.inet_aton(s), socket.inet_aton(d), t, t + dur, octets, packets,
                       0, 0, 0, 0, sport, dport, proto, flags, 4, 0)
           for s, d, t, dur, octets, packets, sport, dport, proto, flags in records]
    chunk = [_message([], _EXPORT, 0, True), _message(raw, _EXPORT + seq, seq, False)]
    segs = FlowDecoder().decode_received(_buffer(chunk), [len(m) for m in chunk],
                                         ["192.0.2.200"] * len(chunk), 1_700_000_000.0)
    flat: list[FlowRecord] = []
    for seg in segs:
        flat.extend(seg.records() if isinstance(seg, FlowColumns) else seg)
    return flat, segs


def _step(engine: PolicyEngine, op: tuple[Any, ...], columnar: bool, seq: int) -> Any:
    kind = op[0]
    usage = engine.policies.usage
    if kind in ("columns", "records"):
        flat, segs = _decoded(op[1], seq)
        if not (columnar and kind == "columns"):
            return [v for v in engine.ingest(flat) if _notable(v)]
        out = []
        for seg in segs:
            out += engine.ingest_columns(seg) if isinstance(seg, FlowColumns) else [
                v for v in engine.ingest(seg) if _notable(v)]
        return out
    if kind == "meter":
        return engine.meter(_IMSIS[op[1]], op[2], at=float(_EXPORT + op[3]))
    if kind == "write":
        usage.volume[(_IMSIS[op[1]], op[2])] = (op[3] + _EXPORT // 3600, op[4])
        return None
    if kind == "reset":
        usage.reset(None if op[1] is None else _IMSIS[op[1]])
        return None
    return (dict(usage.volume), dict(usage._flows),
            [usage.bytes_in(i, "hour", _EXPORT // 3600) for i in _IMSIS])


@needs_rx
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_OP, min_size=1, max_size=12), native=st.booleans())
def test_readers_and_writers_between_batches_see_the_per_record_counters(
        ops: list[tuple[Any, ...]], native: bool) -> None:
    saved = _slots._counters_c
    if not native:
        _slots._counters_c = None
    try:
        want_engine, _, want_log = _world(_DEVICES, [_POLICY])
        got_engine, _, got_log = _world(_DEVICES, [_POLICY])
        for seq, op in enumerate(ops):
            assert _step(got_engine, op, True, seq) == _step(want_engine, op, False, seq), op
        assert want_log.log == got_log.log
        want, got = want_engine.policies.usage, got_engine.policies.usage
        assert (want.volume, want._flows) == (got.volume, got._flows)
    finally:
        _slots._counters_c = saved


@needs_rx
def test_counters_held_in_arrays_reach_the_dicts_only_when_read() -> None:
    """Between column batches the dicts lag (nothing is written per batch); any access
    through the meter writes the held counters first, and a later batch reads the dicts
    again, so a counter written in between counts."""
    engine, _, _ = _world(_DEVICES, [_POLICY])
    usage = engine.policies.usage
    rows = [(_DEVICES[0], "192.0.2.3", 1000 * i, 1000 * i + 10, 100, 1, 4000, 443, 6, 0x1B)
            for i in range(3)]
    for seq in range(2):
        for seg in _decoded(rows, seq)[1]:
            if isinstance(seg, FlowColumns):
                engine.ingest_columns(seg)
    key = (_IMSIS[0], "hour")  # one rule counts per hour (two share the day counter)
    assert usage.held is not None
    assert key not in usage.raw()[0]
    bucket, octets = usage.volume[key]
    assert octets == 600
    assert usage.held is None
    usage.volume[key] = (bucket, 10)
    for seg in _decoded(rows, 2)[1]:
        if isinstance(seg, FlowColumns):
            engine.ingest_columns(seg)
    assert usage.volume[key] == (bucket, 310)
