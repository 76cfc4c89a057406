"""The usage counters of a column batch: the C pass against the numpy path.

``simtrust.policy._counters.segmented`` must give, for generated devices,
buckets, increments (up to the int64 edges) and stored counters, the counter
before every row and the (bucket, count) stored per device that
``_numpy_counters`` gives, and must leave to it (None) or to the per-record path
(``_Fallback``) the stored values the numpy path cannot take or would refuse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.policy import _batch

pytestmark = pytest.mark.skipif(_batch._counters_c is None,
                                reason="simtrust.policy._counters is not built")

_STORED = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 3), st.integers(-5, 10**6)),
    st.tuples(st.integers(0, 3), st.integers(2**61 - 2, 2**61 + 2)),
    st.tuples(st.integers(2**63 - 1, 2**64), st.integers(0, 5)),
    st.tuples(st.integers(0, 3), st.integers(2**63, 2**64)),
    st.lists(st.integers(0, 3), min_size=2, max_size=2),
    st.tuples(st.booleans(), st.integers(0, 5)),
)


def _run(fn: Any) -> Any:
    try:
        return fn()
    except _batch._Fallback:
        return "fallback"


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3),
                               st.one_of(st.integers(0, 10**6),
                                         st.integers(2**62, 2**63 - 1))),
                     min_size=1, max_size=40),
       stored=st.lists(_STORED, min_size=6, max_size=6), k=st.integers(1, 3))
def test_c_pass_gives_the_numpy_counters(rows: list[tuple[int, int, int]],
                                         stored: list[Any], k: int) -> None:
    dv = np.array([r[0] * 7 for r in rows], np.int64)  # device slots, not dense
    bucket = np.array([r[1] for r in rows], np.int64)
    inc = np.array([r[2] for r in rows], np.int64)
    ud, first_rev = np.unique(dv[::-1], return_index=True)
    last = len(dv) - 1 - first_rev
    keys = [("imsi", d) for d in ud.tolist()]
    counters = {("imsi", d): v for d, v in zip(range(0, 42, 7), stored, strict=True)
                if v is not None}
    with np.errstate(over="ignore"):
        want = _run(lambda: _batch._numpy_counters(dv, bucket, inc, k, ud, last, keys,
                                                   counters))
        got = _run(lambda: _batch._native_counters(dv, bucket, inc * k, ud, keys, counters))
    if got == "fallback":
        assert want == "fallback"
        return
    prev, stores = got
    if prev is None:  # left to numpy: a stored value is not a 2-tuple of exact ints
        assert any(type(v) is not tuple or type(v[0]) is not int or type(v[1]) is not int
                   for v in (counters.get(key) for key in keys) if v is not None)
        return
    assert want != "fallback"
    assert prev.tolist() == want[0].tolist()
    assert stores == want[1]


def test_counter_restarts_where_the_bucket_changes() -> None:
    dv = np.array([0, 1, 0, 0, 1], np.int64)
    bucket = np.array([5, 5, 5, 6, 5], np.int64)
    inc = np.array([10, 20, 30, 40, 50], np.int64)
    prev, stores = _batch._native_counters(dv, bucket, inc, np.array([0, 1], np.int64),
                                           ["a", "b"], {"a": (5, 100), "b": (4, 7)})
    assert prev is not None
    assert prev.tolist() == [100, 0, 110, 0, 20]
    assert stores == [(6, 40), (5, 70)]
