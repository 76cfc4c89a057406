"""The C Keccak-f[1600] equals the Python reference, and TUAK passes TS 35.233 through both.

Without the extension these tests skip (CI sets SIMTRUST_REQUIRE_NATIVE=1 and
test_native.py fails there if the build fell back).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.subscriber.auc import (
    KECCAK_BACKEND,
    Tuak,
    keccak_f1600_bytes,
    keccak_f1600_reference,
    tuak,
)
from tests.subscriber.auc.conftest import h
from tests.subscriber.auc.test_tuak import FUNCTIONS

try:
    from simtrust.subscriber.auc import _native
except ImportError:
    _native = None  # type: ignore[assignment]  # the extension is optional; tests skip

needs_native = pytest.mark.skipif(KECCAK_BACKEND != "c", reason="the C extension is not built")


@needs_native
def test_zero_state_known_answer() -> None:
    # The first lane of Keccak-f[1600] applied to the all-zero state (FIPS 202 test data).
    assert "f1258f7940e1dde7" == keccak_f1600_bytes(bytes(200))[:8][::-1].hex()


@needs_native
@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=200, max_size=200), st.integers(1, 4))
def test_native_equals_the_python_reference(state: bytes, iterations: int) -> None:
    assert keccak_f1600_reference(state, iterations) == keccak_f1600_bytes(state, iterations)


@needs_native
def test_native_rejects_bad_input() -> None:
    assert _native is not None
    with pytest.raises(ValueError, match="200-octet"):
        _native.keccak_f1600(bytes(199), 1)
    with pytest.raises(ValueError, match="iterations"):
        _native.keccak_f1600(bytes(200), 0)


def _check(s: dict[str, Any]) -> None:
    assert s["TOPc"] == tuak.compute_topc(h(s["K"]), h(s["TOP"]), s["keccak_iterations"]).hex()
    alg = Tuak(h(s["K"]), h(s["TOPc"]), mac_bits=len(s["f1"]) * 4, res_bits=len(s["f2"]) * 4,
               ck_bits=len(s["f3"]) * 4, ik_bits=len(s["f4"]) * 4,
               keccak_iterations=s["keccak_iterations"])
    out = alg.compute(h(s["RAND"]), h(s["SQN"]), h(s["AMF"]))
    assert {f: s[f] for f in FUNCTIONS} == {f: getattr(out, f).hex() for f in FUNCTIONS}


def test_ts35233_sets_through_the_c_and_the_python_permutation(
    tuak_set: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _check(tuak_set)  # the default: the C permutation when built
    monkeypatch.setattr(tuak, "keccak_f1600_bytes", keccak_f1600_reference)
    _check(tuak_set)  # the Python reference


def test_ts35233_sets_through_the_c_kernel_and_the_python_kernel(
    tuak_set: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    if tuak.TUAK_BACKEND != "c" and _native is not None:
        pytest.fail("the extension is built without the TUAK kernel")
    _check(tuak_set)  # the native kernel when built
    monkeypatch.setattr(tuak, "_core", tuak.tuak_core_reference)
    _check(tuak_set)  # INOUT and the permutation in Python


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 255), st.binary(min_size=16, max_size=16),
       st.binary(min_size=2, max_size=2), st.binary(min_size=6, max_size=6),
       st.sampled_from((16, 32)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.integers(1, 4))
def test_native_tuak_kernel_equals_the_python_kernel(
    top: bytes, instance: int, rand: bytes, amf: bytes, sqn: bytes, k: bytes, iterations: int
) -> None:
    assert tuak.tuak_core_reference(top, instance, rand, amf, sqn, k, iterations) == \
        _native.tuak_core(top, instance, rand, amf, sqn, k, iterations)


@needs_native
@pytest.mark.parametrize("args", [
    (bytes(31), 0, bytes(16), bytes(2), bytes(6), bytes(16), 1),
    (bytes(32), 256, bytes(16), bytes(2), bytes(6), bytes(16), 1),
    (bytes(32), 0, bytes(15), bytes(2), bytes(6), bytes(16), 1),
    (bytes(32), 0, bytes(16), bytes(2), bytes(6), bytes(24), 1),
    (bytes(32), 0, bytes(16), bytes(2), bytes(6), bytes(16), 0),
])
def test_native_tuak_kernel_rejects_bad_input(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="tuak_core"):
        _native.tuak_core(*args)


@needs_native
@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.sampled_from((16, 32)).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)), st.integers(1, 5), st.integers(1, 3),
    st.binary(min_size=2, max_size=2), st.data())
def test_native_tuak_kernel_batch_equals_the_single_functions(
    topc: bytes, k: bytes, count: int, iterations: int, amf: bytes, data: st.DataObject
) -> None:
    alg = Tuak(k, topc, keccak_iterations=iterations)
    rands = data.draw(st.binary(min_size=16 * count, max_size=16 * count))
    sqns = data.draw(st.binary(min_size=6 * count, max_size=6 * count))
    assert alg.kernel_batch_reference(rands, sqns, amf) == alg.kernel_batch(rands, sqns, amf)
