"""MILENAGE (TS 35.206) against every TS 35.208 set, and its fast paths against the plain one."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import Milenage, compute_opc
from tests.subscriber.auc.conftest import h

FUNCTIONS = ("f1", "f1star", "f2", "f3", "f4", "f5", "f5star")


def test_opc_from_op_matches_ts35208(milenage_set: dict[str, Any]) -> None:
    s = milenage_set
    assert s["OPc"].lower() == compute_opc(h(s["K"]), h(s["OP"])).hex()


def test_all_functions_match_ts35208(milenage_set: dict[str, Any]) -> None:
    s = milenage_set
    out = Milenage.from_op(h(s["K"]), h(s["OP"])).compute(h(s["RAND"]), h(s["SQN"]), h(s["AMF"]))
    assert {f: s[f].lower() for f in FUNCTIONS} == {f: getattr(out, f).hex() for f in FUNCTIONS}


def test_single_functions_match_ts35208(milenage_set: dict[str, Any]) -> None:
    s = milenage_set
    m = Milenage(h(s["K"]), h(s["OPc"]))
    rand, sqn, amf = h(s["RAND"]), h(s["SQN"]), h(s["AMF"])
    f = m.f2345(rand)
    assert s["f1"] == m.f1(rand, sqn, amf).hex()
    assert s["f1star"] == m.f1star(rand, sqn, amf).hex()
    assert (s["f2"], s["f3"], s["f4"], s["f5"]) == (f.res.hex(), f.ck.hex(), f.ik.hex(), f.ak.hex())
    assert s["f5star"] == m.f5star(rand).hex()


def test_kernel_record_layout_matches_ts35208(milenage_set: dict[str, Any]) -> None:
    s = milenage_set
    m = Milenage(h(s["K"]), h(s["OPc"]))
    r = m.kernel(h(s["RAND"]), h(s["SQN"]), h(s["AMF"]))
    sqn_xor_ak = int(s["SQN"], 16) ^ int(s["f5"], 16)
    assert s["f1"] + s["f1star"] == r[0:16].hex()
    assert f"{sqn_xor_ak:012x}" == r[16:22].hex()
    assert s["f2"] + s["f3"] + s["f4"] == r[24:64].hex()


keys = st.binary(min_size=16, max_size=16)


@given(
    k=keys,
    opc=keys,
    rand=keys,
    sqn=st.binary(min_size=6, max_size=6),
    amf=st.binary(min_size=2, max_size=2),
)
def test_kernel_agrees_with_the_spec_functions(
    k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes
) -> None:
    m = Milenage(k, opc)
    out = m.compute(rand, sqn, amf)
    r = m.kernel(rand, sqn, amf)
    ak_int = int.from_bytes(out.f5, "big") ^ int.from_bytes(sqn, "big")
    assert out.f1 + out.f1star == r[:16]
    assert ak_int.to_bytes(6, "big") == r[16:22]
    assert out.f2 + out.f3 + out.f4 == r[24:]


@given(
    k=keys,
    opc=keys,
    items=st.lists(st.tuples(keys, st.binary(min_size=6, max_size=6)), min_size=1, max_size=9),
    amf=st.binary(min_size=2, max_size=2),
)
def test_kernel_batch_equals_kernel_per_vector(
    k: bytes, opc: bytes, items: list[tuple[bytes, bytes]], amf: bytes
) -> None:
    m = Milenage(k, opc)
    rands = b"".join(r for r, _ in items)
    sqns = b"".join(s for _, s in items)
    assert b"".join(m.kernel(r, s, amf) for r, s in items) == m.kernel_batch(rands, sqns, amf)


@given(k=keys, opc=keys, rand=keys)
def test_f5_and_f5star_are_consistent_across_entry_points(
    k: bytes, opc: bytes, rand: bytes
) -> None:
    m = Milenage(k, opc)
    out = m.compute(rand, bytes(6), bytes(2))
    assert out.f5 == m.f2345(rand).ak
    assert out.f5star == m.f5star(rand)


def test_secrets_never_in_repr() -> None:
    k, opc = bytes(range(16)), bytes(range(16, 32))
    m = Milenage(k, opc)
    text = repr(m) + repr(m.compute(bytes(16), bytes(6), bytes(2))) + repr(m.f2345(bytes(16)))
    assert k.hex() not in text
    assert opc.hex() not in text
    assert "redacted" in repr(m)


@pytest.mark.parametrize(
    ("k", "opc", "field"), [(bytes(15), bytes(16), "K"), (bytes(16), bytes(17), "OPc")]
)
def test_wrong_lengths_are_rejected(k: bytes, opc: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Milenage(k, opc)
    assert field == err.value.context["field"]


def test_kernel_rejects_short_rand() -> None:
    with pytest.raises(InvalidInput):
        Milenage(bytes(16), bytes(16)).kernel(bytes(15), bytes(6), bytes(2))


def test_kernel_batch_rejects_mismatched_columns() -> None:
    with pytest.raises(InvalidInput):
        Milenage(bytes(16), bytes(16)).kernel_batch(bytes(32), bytes(6), bytes(2))
