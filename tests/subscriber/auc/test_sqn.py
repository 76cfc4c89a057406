"""SQN management (TS 33.102 Annex C): issuing, the USIM's window, storage encodings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.errors import Conflict, DecodeError, InvalidInput
from simtrust.subscriber.auc import AucSqnState, SyncFailure, UsimSqnArray, split_sqn


def sqn(seq: int, ind: int, bits: int = 5) -> bytes:
    return ((seq << bits) | ind).to_bytes(6, "big")


def test_issue_increments_seq_and_cycles_ind() -> None:
    out, after = AucSqnState(seq=10, ind=30).issue(4)
    assert [(11, 30), (12, 31), (13, 0), (14, 1)] == [split_sqn(s) for s in out]
    assert AucSqnState(seq=14, ind=2) == after


@pytest.mark.parametrize("count", [0, 1, 5, 15, 16, 70])
def test_issue_joined_equals_issue(count: int) -> None:
    state = AucSqnState(seq=99, ind=17, ind_bits=6)
    out, a = state.issue(count)
    joined, b = state.issue_joined(count)
    assert (b"".join(out), a) == (joined, b)


def test_configurable_ind_length() -> None:
    out, _ = AucSqnState(ind_bits=3).issue(9)
    assert [0, 1, 2, 3, 4, 5, 6, 7, 0] == [split_sqn(x, 3)[1] for x in out]


def test_exhausted_sqn_space_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        AucSqnState(seq=(1 << 43) - 1).issue(1)


@given(
    bits=st.integers(0, 10),
    data=st.data(),
)
def test_state_round_trips_through_int_and_bytes(bits: int, data: st.DataObject) -> None:
    seq = data.draw(st.integers(0, (1 << (48 - bits)) - 1))
    ind = data.draw(st.integers(0, (1 << bits) - 1))
    state = AucSqnState(seq=seq, ind=ind, ind_bits=bits)
    assert state == AucSqnState.from_int(state.to_int())
    assert state == AucSqnState.from_bytes(state.to_bytes())
    assert 7 == len(state.to_bytes())


@pytest.mark.parametrize("blob", [b"", bytes(6), b"\x0b" + bytes(6)])
def test_bad_state_encodings_raise_decode_error(blob: bytes) -> None:
    with pytest.raises(DecodeError):
        AucSqnState.from_bytes(blob)


def test_from_sqn_continues_after_the_last_issued() -> None:
    state = AucSqnState.from_sqn(sqn(500, 31))
    assert sqn(500, 31) == state.last_sqn
    (nxt,), _ = state.issue(1)
    assert (501, 0) == split_sqn(nxt)


def test_usim_accepts_fresh_seq_per_ind_even_out_of_order() -> None:
    arr = UsimSqnArray().check(sqn(5, 1)).check(sqn(4, 2))
    assert 5 == arr.highest
    assert (5, 4) == (arr.seq_ms[1], arr.seq_ms[2])


def test_usim_rejects_replay_for_the_same_ind() -> None:
    arr = UsimSqnArray().check(sqn(5, 1))
    with pytest.raises(SyncFailure) as err:
        arr.check(sqn(5, 1))
    assert "replay" == err.value.reason
    with pytest.raises(SyncFailure):
        arr.check(sqn(3, 1))


def test_usim_rejects_seq_beyond_delta() -> None:
    arr = UsimSqnArray(delta=100).check(sqn(50, 0))
    arr.check(sqn(150, 1))  # exactly Δ ahead: accepted
    with pytest.raises(SyncFailure) as err:
        arr.check(sqn(151, 1))
    assert "delta" == err.value.reason


def test_usim_limit_l_rejects_old_seq() -> None:
    arr = UsimSqnArray(limit=10).check(sqn(100, 0))
    arr.check(sqn(90, 1))  # exactly L behind: accepted
    with pytest.raises(SyncFailure) as err:
        arr.check(sqn(89, 2))
    assert "age" == err.value.reason


def test_usim_sqn_ms_is_highest_with_its_ind() -> None:
    arr = UsimSqnArray().check(sqn(7, 3)).check(sqn(9, 12)).check(sqn(8, 4))
    assert sqn(9, 12) == arr.sqn_ms


def test_auc_next_would_be_accepted() -> None:
    state = AucSqnState(seq=10)
    assert state.next_would_be_accepted(sqn(10, 0))
    assert not state.next_would_be_accepted(sqn(11, 0))
    assert not AucSqnState(seq=10).next_would_be_accepted(sqn(0, 0), delta=5)


@pytest.mark.parametrize(
    "kwargs", [{"seq_ms": (0, 0)}, {"delta": 0}, {"limit": 0}, {"ind_bits": 11}]
)
def test_usim_array_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        UsimSqnArray(**kwargs)  # type: ignore[arg-type]


@given(st.lists(st.integers(1, 1 << 20), min_size=1, max_size=40))
def test_usim_accepts_exactly_the_fresh_sqns(seqs: list[int]) -> None:
    arr = UsimSqnArray(ind_bits=2, delta=1 << 30)
    highest = [0, 0, 0, 0]
    for i, seq in enumerate(seqs):
        ind = i % 4
        fresh = seq > highest[ind]
        try:
            arr = arr.check(sqn(seq, ind, 2))
            accepted = True
        except SyncFailure:
            accepted = False
        assert fresh == accepted
        if fresh:
            highest[ind] = seq


@given(st.binary(min_size=7, max_size=7))
def test_decoding_stored_state_fails_only_with_decode_error(blob: bytes) -> None:
    try:
        state = AucSqnState.from_bytes(blob)
    except DecodeError:
        assert blob[0] > 10  # only an impossible IND length is refused
    else:
        assert blob == state.to_bytes()
