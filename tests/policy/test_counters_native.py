"""The usage counters of a column batch: the C pass, the numpy path and the per-row rule.

``simtrust.policy._slots.count_rows`` must give, for generated device slots,
buckets, increments and stored counters (absent, ordinary, at and above 2^61),
the counter before every row and the (bucket, count) left per slot that
``UsageMeter.add_bytes`` gives row by row in Python integers, with the C extension
(``simtrust.policy._counters``) and without it, and must refuse (None, nothing
changed) a batch touching a slot that stores a count above 2^61.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.policy import _slots

_STORED = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 3), st.integers(-5, 10**6)),
    st.tuples(st.integers(0, 3), st.integers(2**61 - 2, 2**61 + 2)),
)


def _per_row(rows: list[tuple[int, int, int]], stored: list[Any]) -> Any:
    """add_bytes row by row over Python ints; "refused" where the arrays may not go."""
    if any(stored[p] is not None and stored[p][1] > 2**61 for p, _, _ in rows):
        return "refused"
    state = list(stored)
    prev = []
    for p, b, x in rows:
        cur = state[p]
        c = cur[1] if cur is not None and cur[0] == b else 0
        prev.append(c)
        state[p] = (b, c + x)
    return prev, state


def _arrays(rows: list[tuple[int, int, int]], stored: list[Any], native: bool,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    if not native:
        monkeypatch.setattr(_slots, "_counters_c", None)
    pos = np.array([r[0] for r in rows], np.int64)
    bucket = np.array([r[1] for r in rows], np.int64)
    inc = np.array([r[2] for r in rows], np.int64)
    sb = np.array([s[0] if s else 0 for s in stored], np.int64)
    sc = np.array([s[1] if s else 0 for s in stored], np.int64)
    has = np.array([s is not None for s in stored], bool)
    before = (sb.copy(), sc.copy(), has.copy())
    prev = _slots.count_rows(pos, bucket, inc, sb, sc, has)
    monkeypatch.undo()
    if prev is None:
        assert all((a == b).all() for a, b in zip(before, (sb, sc, has), strict=True))
        return "refused"
    state = [(b, c) if h else None
             for b, c, h in zip(sb.tolist(), sc.tolist(), has.tolist(), strict=True)]
    return prev.tolist(), state


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3),
                               st.one_of(st.integers(0, 10**6),
                                         st.integers(2**39, 2**40 - 1))),
                     min_size=1, max_size=40),
       stored=st.lists(_STORED, min_size=6, max_size=6))
def test_both_passes_give_the_per_row_counters(rows: list[tuple[int, int, int]],
                                               stored: list[Any]) -> None:
    want = _per_row(rows, stored)
    with pytest.MonkeyPatch.context() as mp:
        assert _arrays(rows, stored, False, mp) == want
    if _slots._counters_c is not None:
        with pytest.MonkeyPatch.context() as mp:
            assert _arrays(rows, stored, True, mp) == want


@pytest.mark.parametrize("native", [True, False])
def test_counter_restarts_where_the_bucket_changes(native: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if native and _slots._counters_c is None:
        pytest.skip("simtrust.policy._counters is not built")
    rows = [(0, 5, 10), (1, 5, 20), (0, 5, 30), (0, 6, 40), (1, 5, 50), (0, 5, 1)]
    got = _arrays(rows, [(5, 100), (4, 7)], native, monkeypatch)
    assert got == ([100, 0, 110, 0, 20, 0], [(5, 1), (5, 70)])


def test_stored_values_the_arrays_cannot_hold_are_refused_when_touched() -> None:
    """A list is read as the per-record path reads it; a value outside 64 bits or not
    a pair is never written back and sends the batches touching it to that path."""
    volume: dict[Any, Any] = {("a", "day"): [3, 9], ("b", "day"): (2**64, 1),
                              ("c", "day"): "x", ("d", "day"): (True, 2)}
    c = _slots.Counter([("a", "day"), ("b", "day"), ("c", "day"), ("d", "day"),
                        ("e", "day")], volume)
    assert c.bucket.tolist()[0::3] == [3, 1]
    assert c.count.tolist()[0::3] == [9, 2]
    assert c.has.tolist() == [True, True, True, True, False]
    for slot in (1, 2):
        sb, sc, has = c.bucket.copy(), c.count.copy(), c.has.copy()
        assert _slots.count_rows(np.array([0, slot], np.int64), np.array([3, 3], np.int64),
                                 np.array([1, 1], np.int64), sb, sc, has) is None
