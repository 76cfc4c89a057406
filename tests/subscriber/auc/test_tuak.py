"""TUAK (TS 35.231) against every TS 35.233 set; Keccak-f[1600] against hashlib's SHA-3."""

from __future__ import annotations

import hashlib
from itertools import product
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import Tuak, compute_topc, keccak_f1600, keccak_f1600_bytes
from tests.subscriber.auc.conftest import h

FUNCTIONS = ("f1", "f1star", "f2", "f3", "f4", "f5", "f5star")


def _tuak(s: dict[str, Any]) -> Tuak:
    # Output lengths follow from the hex lengths of the published values.
    return Tuak(
        h(s["K"]),
        h(s["TOPc"]),
        mac_bits=len(s["f1"]) * 4,
        res_bits=len(s["f2"]) * 4,
        ck_bits=len(s["f3"]) * 4,
        ik_bits=len(s["f4"]) * 4,
        keccak_iterations=s["keccak_iterations"],
    )


def test_topc_from_top_matches_ts35233(tuak_set: dict[str, Any]) -> None:
    s = tuak_set
    assert s["TOPc"] == compute_topc(h(s["K"]), h(s["TOP"]), s["keccak_iterations"]).hex()


def test_all_functions_match_ts35233(tuak_set: dict[str, Any]) -> None:
    s = tuak_set
    out = _tuak(s).compute(h(s["RAND"]), h(s["SQN"]), h(s["AMF"]))
    assert {f: s[f] for f in FUNCTIONS} == {f: getattr(out, f).hex() for f in FUNCTIONS}


def test_from_top_equals_from_topc(tuak_set: dict[str, Any]) -> None:
    s = tuak_set
    a = Tuak.from_top(h(s["K"]), h(s["TOP"]), keccak_iterations=s["keccak_iterations"])
    b = Tuak(h(s["K"]), h(s["TOPc"]), keccak_iterations=s["keccak_iterations"])
    assert b.f1(h(s["RAND"]), h(s["SQN"]), h(s["AMF"])) == a.f1(
        h(s["RAND"]), h(s["SQN"]), h(s["AMF"])
    )


@pytest.mark.parametrize(
    ("mac", "res", "ck", "ik", "klen"),
    list(product((64, 128, 256), (32, 64, 128, 256), (128, 256), (128, 256), (16, 32))),
)
def test_every_output_length_combination(mac: int, res: int, ck: int, ik: int, klen: int) -> None:
    t = Tuak(bytes(range(klen)), bytes(32), mac_bits=mac, res_bits=res, ck_bits=ck, ik_bits=ik)
    out = t.compute(bytes(16), bytes(6), bytes(2))
    lengths = [len(getattr(out, f)) * 8 for f in FUNCTIONS]
    assert [mac, mac, res, ck, ik, 48, 48] == lengths


def test_output_lengths_select_distinct_instances() -> None:
    # INSTANCE encodes the lengths (TS 35.231 §6.2): a 128-bit MAC is no extension of a 64-bit one.
    a = Tuak(bytes(16), bytes(32), mac_bits=64).f1(bytes(16), bytes(6), bytes(2))
    b = Tuak(bytes(16), bytes(32), mac_bits=128).f1(bytes(16), bytes(6), bytes(2))
    assert a != b[:8]


def test_keccak_iterations_change_the_output() -> None:
    one = Tuak(bytes(16), bytes(32), keccak_iterations=1).f2345(bytes(16))
    two = Tuak(bytes(16), bytes(32), keccak_iterations=2).f2345(bytes(16))
    assert one.res != two.res


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mac_bits": 32},
        {"res_bits": 16},
        {"ck_bits": 64},
        {"ik_bits": 512},
        {"keccak_iterations": 0},
    ],
)
def test_invalid_parameters_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidInput):
        Tuak(bytes(16), bytes(32), **kwargs)


def test_key_of_wrong_length_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        compute_topc(bytes(24), bytes(32))


def test_repr_hides_keys() -> None:
    k, topc = bytes(range(32)), bytes(range(32, 64))
    text = repr(Tuak(k, topc)) + repr(Tuak(k, topc).f2345(bytes(16)))
    assert k.hex() not in text
    assert topc.hex() not in text


def _sha3_256_one_block(msg: bytes) -> bytes:
    """SHA3-256 built on the hand-written permutation (one absorbed block)."""
    state = bytearray(200)
    state[: len(msg)] = msg
    state[len(msg)] ^= 0x06
    state[135] ^= 0x80
    return keccak_f1600_bytes(bytes(state))[:32]


@given(st.binary(max_size=135))
def test_keccak_permutation_reproduces_sha3_256(msg: bytes) -> None:
    assert hashlib.sha3_256(msg).digest() == _sha3_256_one_block(msg)


def test_keccak_iterations_compose() -> None:
    state = bytes(range(200))
    assert keccak_f1600_bytes(keccak_f1600_bytes(state)) == keccak_f1600_bytes(state, 2)


def test_keccak_rejects_wrong_sizes() -> None:
    with pytest.raises(ValueError, match="200 octets"):
        keccak_f1600_bytes(bytes(199))
    with pytest.raises(ValueError, match="25 lanes"):
        keccak_f1600([0] * 24)
