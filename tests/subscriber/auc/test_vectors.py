"""EPS-AKA, 5G-AKA and EAP-AKA' vectors: structure, batch = single, USIM round trips."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import (
    AucSqnState,
    Milenage,
    Tuak,
    Usim,
    build_autn,
    ck_ik_prime,
    eap_aka_prime_vector,
    eps_vector,
    eps_vectors,
    he_av_5g,
    he_avs_5g,
    hres_star,
    kasme,
    kausf,
    kseaf,
    plmn_id,
    res_star,
    se_av_5g,
    with_separation_bit,
)
from tests.subscriber.auc.conftest import h

K = h("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = h("cd63cb71954a9f4e48a5994e37a02baf")
SN_ID = plmn_id("208", "93")
SNN = "5G:mnc093.mcc208.3gppnetwork.org"


def counter_rand() -> object:
    counter = itertools.count()

    def rand(n: int) -> bytes:
        return b"".join(next(counter).to_bytes(16, "big") for _ in range(n // 16))

    return rand


def test_separation_bit_is_forced_on() -> None:
    assert b"\x80\x00" == with_separation_bit(b"\x00\x00")
    assert b"\xb9\xb9" == with_separation_bit(b"\x39\xb9")


def test_eps_vector_composition_from_the_functions() -> None:
    m = Milenage(K, OPC)
    rand, sqn = bytes(range(16)), bytes.fromhex("000000000021")
    v = eps_vector(m, sqn, b"\x00\x00", SN_ID, rand)
    f = m.f2345(rand)
    autn = build_autn(sqn, f.ak, b"\x80\x00", m.f1(rand, sqn, b"\x80\x00"))
    assert (rand, f.res, autn) == (v.rand, v.xres, v.autn)
    assert kasme(f.ck, f.ik, SN_ID, autn[:6]) == v.kasme


def test_he_and_se_av_composition() -> None:
    m = Milenage(K, OPC)
    rand, sqn = bytes(range(16)), bytes.fromhex("000000000021")
    he = he_av_5g(m, sqn, b"\x80\x00", SNN, rand)
    f = m.f2345(rand)
    assert res_star(f.ck, f.ik, SNN, rand, f.res) == he.xres_star
    assert kausf(f.ck, f.ik, SNN, he.autn[:6]) == he.kausf
    se = se_av_5g(he, SNN)
    assert (hres_star(rand, he.xres_star), kseaf(he.kausf, SNN)) == (se.hxres_star, se.kseaf)
    assert (he.rand, he.autn) == (se.rand, se.autn)


def test_eap_aka_prime_vector_composition() -> None:
    m = Milenage(K, OPC)
    rand, sqn = bytes(range(16)), bytes.fromhex("000000000021")
    v = eap_aka_prime_vector(m, sqn, b"\x80\x00", "WLAN", rand)
    f = m.f2345(rand)
    assert ck_ik_prime(f.ck, f.ik, "WLAN", v.autn[:6]) == (v.ck_prime, v.ik_prime)
    assert f.res == v.xres


@pytest.mark.parametrize("count", [1, 2, 7, 33])
def test_batched_eps_equals_one_by_one(count: int) -> None:
    m = Milenage(K, OPC)
    state = AucSqnState(seq=40, ind=30)
    batch, after = eps_vectors(m, state, count, SN_ID, rand=counter_rand())  # type: ignore[arg-type]
    sqns, expected_after = state.issue(count)
    rand = counter_rand()
    single = [eps_vector(m, s, b"\x80\x00", SN_ID, rand(16)) for s in sqns]  # type: ignore[operator]
    assert single == batch
    assert expected_after == after


@pytest.mark.parametrize("count", [1, 5, 17])
def test_batched_5g_equals_one_by_one(count: int) -> None:
    m = Milenage(K, OPC)
    state = AucSqnState(seq=3)
    batch, _ = he_avs_5g(m, state, count, SNN, rand=counter_rand())  # type: ignore[arg-type]
    sqns, _ = state.issue(count)
    rand = counter_rand()
    single = [he_av_5g(m, s, b"\x80\x00", SNN, rand(16)) for s in sqns]  # type: ignore[operator]
    assert single == batch


def test_tuak_vectors_take_the_generic_path_and_verify_on_a_usim() -> None:
    t = Tuak(bytes(range(32)), bytes(32), res_bits=128)
    vecs, _ = eps_vectors(t, AucSqnState(), 3, SN_ID)
    usim = Usim(t)
    for v in vecs:
        resp, usim = usim.authenticate(v.rand, v.autn, require_separation_bit=True)
        assert v.xres == resp.res
        assert 16 == len(resp.res)


def test_vector_reprs_hide_session_keys() -> None:
    m = Milenage(K, OPC)
    v = eps_vector(m, bytes(6), b"\x80\x00", SN_ID, bytes(16))
    he = he_av_5g(m, bytes(6), b"\x80\x00", SNN, bytes(16))
    assert v.kasme.hex() not in repr(v)
    assert v.xres.hex() not in repr(v)
    assert he.kausf.hex() not in repr(he)
    assert he.xres_star.hex() not in repr(he)


def test_rand_source_of_wrong_size_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        eps_vectors(Milenage(K, OPC), AucSqnState(), 2, SN_ID, rand=lambda n: bytes(n - 1))


def test_count_must_be_positive() -> None:
    with pytest.raises(InvalidInput):
        eps_vectors(Milenage(K, OPC), AucSqnState(), 0, SN_ID)


keys = st.binary(min_size=16, max_size=16)


@settings(max_examples=50)
@given(k=keys, opc=keys, count=st.integers(1, 6), seq=st.integers(0, 1000))
def test_generated_vectors_verify_on_the_usim_in_order(
    k: bytes, opc: bytes, count: int, seq: int
) -> None:
    m = Milenage(k, opc)
    vecs, _ = eps_vectors(m, AucSqnState(seq=seq), count, SN_ID)
    usim = Usim(m)
    for v in vecs:
        resp, usim = usim.authenticate(v.rand, v.autn, require_separation_bit=True)
        assert v.xres == resp.res
        assert v.kasme == kasme(resp.ck, resp.ik, SN_ID, v.autn[:6])


@settings(max_examples=30)
@given(k=keys, opc=keys)
def test_5g_res_star_from_the_usim_matches_xres_star(k: bytes, opc: bytes) -> None:
    m = Milenage(k, opc)
    (he,), _ = he_avs_5g(m, AucSqnState(), 1, SNN)
    resp, _ = Usim(m).authenticate(he.rand, he.autn, require_separation_bit=True)
    res = resp.res_star(SNN, he.rand)
    assert he.xres_star == res
    assert se_av_5g(he, SNN).hxres_star == hres_star(he.rand, res)
