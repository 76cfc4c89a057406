"""JCS (RFC 8785): the RFC's test data, and the fast path against the rfc8785 package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.identity import VerificationFailed, canonicalize

NAMES = ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", NAMES)
def test_rfc8785_test_data(shared_dir: Path, name: str) -> None:
    base = shared_dir / "vectors" / "rfc8785"
    data = json.loads((base / "input" / f"{name}.json").read_text("utf-8"))
    expected = (base / "output" / f"{name}.json").read_bytes().rstrip(b"\n")
    assert expected == canonicalize(data)
    hexed = bytes.fromhex(
        (base / "outhex" / f"{name}.txt").read_text().replace(" ", "").replace("\n", "")
    )
    assert hexed == canonicalize(data)


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["\u20ac", "\U0001f600", "\ue000", "a\u0000b", "\u007f", "\x1f", '"\\']
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | _text
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(_json)
def test_matches_the_rfc8785_package(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError):
        with pytest.raises(VerificationFailed):
            canonicalize(value)
        return
    assert expected == canonicalize(value)


def test_astral_keys_sort_by_utf16_code_units() -> None:
    value = {"\ue000": 1, "\U0001f600": 2}
    assert rfc8785.dumps(value) == canonicalize(value)
    assert canonicalize(value).startswith('{"\U0001f600"'.encode())


def test_lone_surrogate_and_nan_are_malformed() -> None:
    for bad in ({"a": "\ud800"}, [float("nan")], {1: 2}):
        with pytest.raises(VerificationFailed):
            canonicalize(bad)
