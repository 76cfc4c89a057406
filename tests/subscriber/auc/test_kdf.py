"""Key derivations: K_ASME vector, RFC 5448 CK'/IK' vectors, 5G keys checked independently."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import (
    ck_ik_prime,
    hmac_sha256,
    hres_star,
    kasme,
    kausf,
    kdf,
    kseaf,
    plmn_id,
    res_star,
    serving_network_name,
)
from tests.subscriber.auc.conftest import h


def test_kasme_matches_kdf_json(kdf_vectors: dict[str, Any]) -> None:
    v = kdf_vectors["kasme_ts33401"]
    sqn_xor_ak = bytes(a ^ b for a, b in zip(h(v["SQN"]), h(v["AK"]), strict=True))
    got = kasme(h(v["CK"]), h(v["IK"]), h(v["serving_network_id"]), sqn_xor_ak)
    assert v["KASME"] == got.hex()


def _rfc5448_cases(data_dir: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((data_dir / "rfc5448_appendix_c.json").read_text())[
        "cases"
    ]
    return cases


@pytest.mark.parametrize("case", [1, 2, 3, 4])
def test_ck_ik_prime_match_rfc5448_appendix_c(data_dir: Path, case: int) -> None:
    c = next(c for c in _rfc5448_cases(data_dir) if c["case"] == case)
    ckp, ikp = ck_ik_prime(h(c["CK"]), h(c["IK"]), c["network_name"], h(c["AUTN"])[:6])
    assert (c["CK_prime"], c["IK_prime"]) == (ckp.hex(), ikp.hex())


def _independent_kdf(key: bytes, fc: int, *params: bytes) -> bytes:
    s = bytes([fc]) + b"".join(p + len(p).to_bytes(2, "big") for p in params)
    return hmac.new(key, s, hashlib.sha256).digest()


SNN = "5G:mnc093.mcc208.3gppnetwork.org"
CK = bytes(range(16))
IK = bytes(range(16, 32))
RAND = bytes(range(32, 48))
SQN_XOR_AK = bytes.fromhex("0a0b0c0d0e0f")


def test_5g_keys_agree_with_an_independent_kdf() -> None:
    name = SNN.encode()
    assert _independent_kdf(CK + IK, 0x6A, name, SQN_XOR_AK) == kausf(CK, IK, SNN, SQN_XOR_AK)
    res = bytes(8)
    assert _independent_kdf(CK + IK, 0x6B, name, RAND, res)[16:] == res_star(CK, IK, SNN, RAND, res)
    ka = kausf(CK, IK, SNN, SQN_XOR_AK)
    assert _independent_kdf(ka, 0x6C, name) == kseaf(ka, SNN)
    xs = res_star(CK, IK, SNN, RAND, res)
    assert hashlib.sha256(RAND + xs).digest()[16:] == hres_star(RAND, xs)


def test_xres_star_and_hxres_star_are_128_bits() -> None:
    xs = res_star(CK, IK, SNN, RAND, bytes(8))
    assert (16, 16) == (len(xs), len(hres_star(RAND, xs)))


@given(key=st.binary(max_size=100), msg=st.binary(max_size=300))
def test_hmac_sha256_equals_the_standard_library(key: bytes, msg: bytes) -> None:
    assert hmac.digest(key, msg, "sha256") == hmac_sha256(key, msg)


def test_generic_kdf_encodes_lengths() -> None:
    assert _independent_kdf(b"k", 0x42, b"abc", b"") == kdf(b"k", 0x42, b"abc", b"")


@pytest.mark.parametrize(
    ("mcc", "mnc", "encoded"),
    [("208", "93", "02f839"), ("310", "410", "130014"), ("001", "01", "00f110")],
)
def test_plmn_id_encoding(mcc: str, mnc: str, encoded: str) -> None:
    assert encoded == plmn_id(mcc, mnc).hex()


def test_serving_network_name_pads_the_mnc() -> None:
    assert SNN == serving_network_name("208", "93")


@pytest.mark.parametrize(("mcc", "mnc"), [("20", "93"), ("208", "9"), ("2a8", "93")])
def test_bad_plmn_rejected(mcc: str, mnc: str) -> None:
    with pytest.raises(InvalidInput):
        plmn_id(mcc, mnc)


def test_ck_ik_prime_needs_a_network_name() -> None:
    with pytest.raises(InvalidInput):
        ck_ik_prime(CK, IK, "", SQN_XOR_AK)
