"""Re-synchronisation (TS 33.102 §6.3.3, §6.3.5): AUTS round trips, forgeries, SQN reset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import AuthenticationFailure, InvalidInput
from simtrust.subscriber.auc import (
    RESYNC_AMF,
    AucSqnState,
    MacFailure,
    Milenage,
    SyncFailure,
    Tuak,
    Usim,
    UsimSqnArray,
    build_auts,
    eps_vectors,
    plmn_id,
    resynchronise,
    split_sqn,
    verify_auts,
)

SN_ID = plmn_id("001", "01")
M = Milenage(bytes(range(16)), bytes(range(16, 32)))
RAND = bytes(range(100, 116))


def test_auts_uses_f5star_and_f1star_with_dummy_amf() -> None:
    sqn_ms = bytes.fromhex("0000000012a3")
    auts = build_auts(M, RAND, sqn_ms)
    ak_star = M.f5star(RAND)
    assert bytes(a ^ b for a, b in zip(sqn_ms, ak_star, strict=True)) == auts[:6]
    assert M.f1star(RAND, sqn_ms, RESYNC_AMF) == auts[6:]
    assert b"\x00\x00" == RESYNC_AMF


@settings(max_examples=50)
@given(sqn_ms=st.binary(min_size=6, max_size=6), rand=st.binary(min_size=16, max_size=16))
def test_auts_round_trip(sqn_ms: bytes, rand: bytes) -> None:
    assert sqn_ms == verify_auts(M, rand, build_auts(M, rand, sqn_ms))


@settings(max_examples=50)
@given(flip=st.integers(0, 13 * 8 - 1))
def test_any_flipped_bit_is_a_forgery(flip: int) -> None:
    auts = bytearray(build_auts(M, RAND, bytes.fromhex("000000000421")))
    auts[flip // 8] ^= 1 << (flip % 8)
    with pytest.raises(MacFailure) as err:
        verify_auts(M, RAND, bytes(auts))
    assert "mac-s" == err.value.reason
    assert isinstance(err.value, AuthenticationFailure)


def test_auts_from_another_key_is_rejected() -> None:
    other = Milenage(bytes(16), bytes(16))
    with pytest.raises(MacFailure):
        verify_auts(M, RAND, build_auts(other, RAND, bytes(6)))


def test_auts_of_wrong_length_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        verify_auts(M, RAND, bytes(13))


def test_forged_auts_leaves_no_state_change() -> None:
    state = AucSqnState(seq=5)
    with pytest.raises(MacFailure):
        resynchronise(M, state, RAND, bytes(14))
    assert AucSqnState(seq=5) == state


def test_resync_end_to_end_after_the_auc_lost_its_sqn() -> None:
    """The SIM has accepted SEQ 1000 (IND 0); the AuC restarts at 0; one AUTS fixes it."""
    usim = Usim(M, UsimSqnArray().check((1000 << 5).to_bytes(6, "big")))
    (v,), state = eps_vectors(M, AucSqnState(), 1, SN_ID)
    with pytest.raises(SyncFailure) as err:
        usim.authenticate(v.rand, v.autn)
    assert "replay" == err.value.reason
    new_state, sqn_ms = resynchronise(M, state, v.rand, err.value.auts)
    assert (1000, 0) == split_sqn(sqn_ms)
    assert 1000 == new_state.seq
    (v2,), _ = eps_vectors(M, new_state, 1, SN_ID)
    resp, _ = usim.authenticate(v2.rand, v2.autn)
    assert v2.xres == resp.res


def test_old_seq_on_another_ind_needs_the_age_limit_to_be_refused() -> None:
    """C.2.1 checks per IND; only the limit L of C.2.3 refuses old SEQs on unused INDs."""
    seen = UsimSqnArray().check(((1000 << 5) | 7).to_bytes(6, "big"))
    (v,), _ = eps_vectors(M, AucSqnState(), 1, SN_ID)
    Usim(M, seen).authenticate(v.rand, v.autn)
    limited = UsimSqnArray(limit=100).check(((1000 << 5) | 7).to_bytes(6, "big"))
    with pytest.raises(SyncFailure) as err:
        Usim(M, limited).authenticate(v.rand, v.autn)
    assert "age" == err.value.reason
    assert 14 == len(err.value.auts)


def test_resync_keeps_state_when_the_next_sqn_is_already_acceptable() -> None:
    state = AucSqnState(seq=2000)
    auts = build_auts(M, RAND, ((1500 << 5) | 1).to_bytes(6, "big"))
    new_state, _ = resynchronise(M, state, RAND, auts)
    assert state == new_state


def test_resync_resets_when_the_auc_is_beyond_delta() -> None:
    state = AucSqnState(seq=5000)
    auts = build_auts(M, RAND, (10 << 5).to_bytes(6, "big"))
    new_state, _ = resynchronise(M, state, RAND, auts, delta=100)
    assert 10 == new_state.seq


def test_tuak_auts_round_trip_with_long_mac() -> None:
    t = Tuak(bytes(range(32)), bytes(32), mac_bits=128)
    auts = build_auts(t, RAND, bytes.fromhex("000000000101"))
    assert 22 == len(auts)
    assert bytes.fromhex("000000000101") == verify_auts(t, RAND, auts)


def test_usim_rejects_a_vector_for_another_key_with_mac_failure() -> None:
    (v,), _ = eps_vectors(M, AucSqnState(), 1, SN_ID)
    with pytest.raises(MacFailure) as err:
        Usim(Milenage(bytes(16), bytes(16))).authenticate(v.rand, v.autn)
    assert "mac-a" == err.value.reason


def test_usim_can_require_the_separation_bit() -> None:
    sqn = bytes.fromhex("000000000020")
    f = M.f2345(RAND)
    amf = b"\x00\x00"
    autn = bytes(a ^ b for a, b in zip(sqn, f.ak, strict=True)) + amf + M.f1(RAND, sqn, amf)
    Usim(M).authenticate(RAND, autn)  # UMTS: accepted
    with pytest.raises(AuthenticationFailure) as err:
        Usim(M).authenticate(RAND, autn, require_separation_bit=True)
    assert "separation-bit" == err.value.context["reason"]


@settings(max_examples=60)
@given(auts=st.binary(min_size=14, max_size=14))
def test_random_auts_fails_only_with_mac_failure(auts: bytes) -> None:
    with pytest.raises(MacFailure):
        verify_auts(M, RAND, auts)


@settings(max_examples=60)
@given(autn=st.binary(min_size=16, max_size=16), rand=st.binary(min_size=16, max_size=16))
def test_random_autn_fails_only_with_mac_failure(autn: bytes, rand: bytes) -> None:
    with pytest.raises(MacFailure):
        Usim(M).authenticate(rand, autn)
