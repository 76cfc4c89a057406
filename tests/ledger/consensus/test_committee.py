"""Committee thresholds, leader schedule and committee changes (docs/consensus.md §2, §3, §8)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError, InvalidInput, InvalidSignature, Rejected
from simtrust.ledger.consensus import (
    Committee,
    CommitteeChange,
    CommitteeChangeSignature,
    Validator,
    sign_committee_change,
    verify_committee_change,
)

from .conftest import Dag, raw_public


def test_thresholds_are_strict() -> None:
    committee = Dag(4).committee
    assert 4 == committee.total_weight
    assert not committee.is_quorum(2)
    assert committee.is_quorum(3)
    assert not committee.is_validity(1)
    assert committee.is_validity(2)
    six = Dag(6).committee  # exactly 2/3 is not a quorum
    assert not six.is_quorum(4)
    assert six.is_quorum(5)


def test_weight_counts_each_author_once() -> None:
    committee = Dag(4, [5, 1, 1, 1]).committee
    assert 7 == committee.weight_of([1, 0, 1, 2, 2])


def test_committee_validation() -> None:
    dag = Dag(2)
    key = raw_public(dag.keys[0])
    with pytest.raises(InvalidInput):
        Committee(0, [])
    with pytest.raises(InvalidInput):
        Committee(0, [Validator(1, key, 1)])
    with pytest.raises(InvalidInput):
        Committee(0, [Validator(0, key, 1), Validator(1, key, 1)])
    with pytest.raises(InvalidInput):
        Validator(0, key, 0)
    with pytest.raises(InvalidInput):
        Validator(0, b"short", 1)
    assert "public_key" not in repr(Validator(0, key, 1))


def test_leader_schedule_is_proportional_to_weight() -> None:
    committee = Dag(4, [4, 2, 1, 1]).committee
    counts = Counter(committee.leader(r) for r in range(8 * 100))
    assert {0: 400, 1: 200, 2: 100, 3: 100} == dict(counts)
    # smooth: the heaviest validator never leads more than twice in a row here
    run = longest = 0
    for r in range(800):
        run = run + 1 if committee.leader(r) == 0 else 0
        longest = max(longest, run)
    assert longest <= 2


def test_leader_schedule_is_deterministic_and_seeded_by_epoch() -> None:
    a, b = Dag(7).committee, Dag(7).committee
    assert [a.leader(r) for r in range(50)] == [b.leader(r) for r in range(50)]
    assert sorted(a.leader(r) for r in range(7)) == list(range(7))
    schedules = {tuple(Dag(7, epoch=e).committee.leader(r) for r in range(7)) for e in range(6)}
    assert len(schedules) > 1


def test_large_weights_keep_a_bounded_schedule() -> None:
    committee = Dag(3, [10**12, 10**12 + 1, 3]).committee
    assert {0, 1, 2} == {committee.leader(r) for r in range(5000)}


def _change(dag: Dag, epoch: int = 1) -> CommitteeChange:
    members = tuple((raw_public(k), 2) for k in dag.keys[:3])
    return CommitteeChange(epoch, members)


def test_committee_change_with_supermajority() -> None:
    dag = Dag(4)
    change = _change(dag)
    sigs = [sign_committee_change(change, i, dag.keys[i]) for i in (0, 2, 3)]
    new = verify_committee_change(dag.committee, change, sigs)
    assert 1 == new.epoch
    assert 3 == len(new)
    assert 6 == new.total_weight
    assert change == CommitteeChange.decode(change.encode())


def test_committee_change_rejections() -> None:
    dag = Dag(4)
    change = _change(dag)
    sig = [sign_committee_change(change, i, dag.keys[i]) for i in range(4)]
    with pytest.raises(Rejected) as exc:
        verify_committee_change(dag.committee, change, sig[:2])
    assert "no-supermajority" == exc.value.reason
    with pytest.raises(Rejected) as exc:
        verify_committee_change(dag.committee, change, [sig[0], sig[0], sig[1]])
    assert "duplicate-signer" == exc.value.reason
    with pytest.raises(Rejected) as exc:
        verify_committee_change(dag.committee, _change(dag, epoch=2), sig)
    assert "epoch" == exc.value.reason
    with pytest.raises(Rejected) as exc:
        verify_committee_change(dag.committee, change, [CommitteeChangeSignature(9, bytes(64))])
    assert "signer" == exc.value.reason
    wrong_key = sign_committee_change(change, 1, dag.keys[2])
    with pytest.raises(InvalidSignature):
        verify_committee_change(dag.committee, change, [sig[0], wrong_key, sig[3]])
    other = CommitteeChange(1, tuple((key, weight + 1) for key, weight in change.members))
    with pytest.raises(InvalidSignature):
        verify_committee_change(dag.committee, other, sig[:3])


def test_weighted_supermajority() -> None:
    dag = Dag(4, [7, 1, 1, 1])
    change = _change(dag)
    heavy = [sign_committee_change(change, 0, dag.keys[0])]
    assert 1 == verify_committee_change(dag.committee, change, heavy).epoch
    light = [sign_committee_change(change, i, dag.keys[i]) for i in (1, 2, 3)]
    with pytest.raises(Rejected):
        verify_committee_change(dag.committee, change, light)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_committee_change_decoder(data: bytes) -> None:
    try:
        change = CommitteeChange.decode(data)
    except (DecodeError, InvalidInput):
        return
    assert data == change.encode()


def test_an_annex_is_signed_with_the_change() -> None:
    dag = Dag(4)
    plain = _change(dag)
    annexed = CommitteeChange(plain.new_epoch, plain.members, b"\x05" * 32)
    assert 1 == plain.encode()[0]
    assert 2 == annexed.encode()[0]
    assert annexed == CommitteeChange.decode(annexed.encode())
    assert plain == CommitteeChange.decode(plain.encode())
    sigs = [sign_committee_change(annexed, i, dag.keys[i]) for i in (0, 1, 2)]
    verify_committee_change(dag.committee, annexed, sigs)
    other = CommitteeChange(plain.new_epoch, plain.members, b"\x06" * 32)
    with pytest.raises(InvalidSignature):
        verify_committee_change(dag.committee, other, sigs)
    with pytest.raises(InvalidInput):
        CommitteeChange(1, plain.members, b"short").encode()
    with pytest.raises(DecodeError):
        CommitteeChange.decode(annexed.encode()[:-1])
