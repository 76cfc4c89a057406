"""Baselines: JSON round trip, merge into cohorts, and malformed stored baselines rejected."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.detect import Baseline
from simtrust.detect._baseline import name_suffix, prefix_of
from simtrust.errors import InvalidInput


def _sample(key: str, packets: float) -> Baseline:
    b = Baseline("device", key, windows=3, observed_s=180.0, days={"2026-11-20"})
    b.raise_feature("dst_packets_10s", packets)
    b.add_destination("198.51.100.7", ["eu.api.example.com"])
    b.ports.add(443)
    b.hours[9] = 3
    b.imeis.add("356938035643809")
    return b


def test_round_trip_is_exact() -> None:
    b = _sample("001010000000001", 42.0)
    doc = json.loads(json.dumps(b.to_json()))
    assert Baseline.from_json(doc).to_json() == b.to_json()


def test_knows_by_address_prefix_and_name() -> None:
    b = _sample("1", 1.0)
    assert b.knows("198.51.100.7")
    assert b.knows("198.51.100.200"), "same /24"
    assert b.knows("203.0.113.1", ["us.api.example.com"]), "same registered suffix"
    assert not b.knows("203.0.113.1", ["evil.example.net"])
    assert prefix_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert name_suffix("a.b.example.com.") == "example.com"


def test_cohort_merge_takes_maxima_and_unions() -> None:
    cohort = Baseline.merge("cohort", "meters", [_sample("1", 10.0), _sample("2", 30.0)])
    assert cohort.feature("dst_packets_10s") == 30.0
    assert cohort.members == 2
    assert cohort.windows == 6
    assert cohort.hours[9] == 6


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"version": 2},
        {"version": 1},
        {**_sample("1", 1.0).to_json(), "hours": [1]},
        {**_sample("1", 1.0).to_json(), "features": {"x": "many"}},
    ],
)
def test_malformed_documents_are_rejected(doc: object) -> None:
    with pytest.raises(InvalidInput):
        Baseline.from_json(doc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(list(_sample("1", 1.0).to_json())), json_values))
def test_fuzz_stored_baselines_never_crash(doc: dict[str, object]) -> None:
    base = {**_sample("1", 1.0).to_json(), **doc}
    try:
        b = Baseline.from_json(base)
    except InvalidInput:
        return
    assert isinstance(b, Baseline)
