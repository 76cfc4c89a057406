"""The AuC's batch path: SIM rows read together, the credential memo and its invalidation.

A memo entry is used only while the SIM's stored row is the one it was built
from; writes of another process are simulated by changing the row directly
(no notification reaches the AuC). docs/decisions/auc-credential-memo.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from simtrust.errors import AuthenticationFailure, NotFound
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    AuthQuery,
    AuthService,
    HssOutcome,
    Inventory,
    Plmn,
    SimState,
    SubscriberServices,
)
from simtrust.subscriber import _attach as attach_module
from simtrust.subscriber._auc_service import SWAP_BATCH_BACKOFF
from simtrust.subscriber._sim_rows import secret_aad
from simtrust.subscriber._sim_view import read_views
from simtrust.subscriber._sqn import decode_sqn_state
from simtrust.subscriber.auc import (
    EapAkaPrimeVector,
    Milenage,
    UmtsVector,
    ck_ik_prime,
    split_sqn,
)
from simtrust.subscriber.auc.vectors import EpsVector

from .conftest import K1, OPC1, TENANT, iccid, imsi, spec

SERVING = Plmn("001", "01")
K2 = bytes.fromhex("0396eb317b6d1c36f19c1c84cd6ffd16")  # TS 35.208 test set 2


def serve(auth: AuthService, *numbers: int) -> list[Any]:
    return list(auth.eps_vectors_many([(imsi(n), SERVING, 1, "mme") for n in numbers]))


def seq_of(vector: EpsVector, k: bytes = K1) -> int | None:
    """SEQ of the vector if its MAC verifies under ``k`` (None if it does not)."""
    alg = Milenage(k, OPC1)
    sqn = bytes(a ^ b for a, b in zip(vector.autn[:6], alg.f2345(vector.rand).ak, strict=True))
    if alg.f1(vector.rand, sqn, vector.autn[6:8]) != vector.autn[8:]:
        return None
    return split_sqn(sqn)[0]


def count_unseals(monkeypatch: pytest.MonkeyPatch, subs: SubscriberServices) -> list[str]:
    opened: list[str] = []
    original = Inventory.unseal_row

    def unseal_row(self: Inventory, sim: Any, row: Any) -> Any:
        opened.append(sim.iccid.value)
        return original(self, sim, row)

    monkeypatch.setattr(Inventory, "unseal_row", unseal_row)
    return opened


def test_batch_reads_each_sim_once_and_unseals_it_once(
    subs: SubscriberServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2):
        subs.inventory.add_sim(TENANT, spec(n), actor="test")
    opened = count_unseals(monkeypatch, subs)
    first = serve(subs.auth, 1, 2, 1, 3)  # SIM 1 twice in one batch, SIM 3 unknown
    second = serve(subs.auth, 2, 1)
    assert [1, 1, 2] == [seq_of(v[0]) for v in first[:3]]
    assert isinstance(first[3], NotFound)
    assert [2, 3] == [seq_of(v[0]) for v in second]
    assert 2 == len(opened)  # one unseal per SIM, not per request
    sim = subs.inventory.get_sim_by_imsi(imsi(1))
    assert 3 == decode_sqn_state(subs.inventory.sqn_state(sim.iccid)[0]).seq
    assert 5 == len(subs.inventory.audit.query(action="auc.eps-vectors"))
    assert K1.hex() not in repr(subs.auth) + repr(subs.auth._memo)


def test_key_changed_by_another_process_is_used_at_once(
    subs: SubscriberServices, runtime: Runtime
) -> None:
    sim = subs.inventory.add_sim(TENANT, spec(1), actor="test")
    assert 1 == seq_of(serve(subs.auth, 1)[0][0])
    sealed = runtime.keyring.seal(K2, secret_aad(sim.iccid.value, "k"))
    with runtime.db.transaction():  # no notification reaches this process's AuC
        runtime.db.execute("UPDATE sub_sims SET k_sealed = ? WHERE iccid = ?",
                           (sealed, sim.iccid.value))
    vector = serve(subs.auth, 1)[0][0]
    assert seq_of(vector, K1) is None
    assert 2 == seq_of(vector, K2)


def test_suspension_refuses_and_drops_the_entry(subs: SubscriberServices) -> None:
    for n in (1, 2):
        subs.inventory.add_sim(TENANT, spec(n), actor="test")
    serve(subs.auth, 1, 2)
    assert "memo=2/" in repr(subs.auth)
    subs.inventory.transition(subs.inventory.get_sim_by_imsi(imsi(1)).iccid,
                              SimState.SUSPENDED, actor="test")
    assert "memo=1/" in repr(subs.auth)  # this process's own change: dropped at once
    refused = serve(subs.auth, 1)[0]
    assert isinstance(refused, AuthenticationFailure)
    assert "AUTHENTICATION_REJECTED" == refused.context["cause"]


def test_state_changed_by_another_process_refuses(
    subs: SubscriberServices, runtime: Runtime
) -> None:
    sim = subs.inventory.add_sim(TENANT, spec(1), actor="test")
    serve(subs.auth, 1)
    with runtime.db.transaction():
        runtime.db.execute("UPDATE sub_sims SET state = 'suspended' WHERE iccid = ?",
                           (sim.iccid.value,))
    assert isinstance(serve(subs.auth, 1)[0], AuthenticationFailure)
    with runtime.db.transaction():
        runtime.db.execute("DELETE FROM sub_sims WHERE iccid = ?", (sim.iccid.value,))
    assert isinstance(serve(subs.auth, 1)[0], NotFound)
    assert "memo=0/" in repr(subs.auth)


def test_sqn_moved_after_the_read_is_read_again(
    subs: SubscriberServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs.inventory.add_sim(TENANT, spec(1), actor="test")
    original = Inventory.auth_rows

    def stale_rows(self: Inventory, imsis: Any) -> Any:
        rows = original(self, imsis)
        subs.auth.eps_vectors(imsi(1), SERVING)  # another writer advances SEQ to 1 meanwhile
        return rows

    monkeypatch.setattr(Inventory, "auth_rows", stale_rows)
    vector = serve(subs.auth, 1)[0][0]
    assert 2 == seq_of(vector)
    sim = subs.inventory.get_sim_by_imsi(imsi(1))
    assert 2 == decode_sqn_state(subs.inventory.sqn_state(sim.iccid)[0]).seq


def test_memo_is_bounded_and_can_be_off(
    lite: SubscriberServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2, 3):
        lite.inventory.add_sim(TENANT, spec(n), actor="test")
    bounded = AuthService(lite.inventory, credential_memo=2)
    serve(bounded, 1, 2, 3)
    assert "memo=2/2" in repr(bounded)
    serve(bounded, 3, 1)  # 3 kept (most recent), 1 unsealed again, 2 evicted
    assert list(bounded._memo) == [imsi(3).value, imsi(1).value]
    off = AuthService(lite.inventory, credential_memo=0)
    opened = count_unseals(monkeypatch, lite)
    serve(off, 1)
    serve(off, 1)
    assert 2 == len(opened)
    assert "memo=0/0" in repr(off)


def test_a_burst_of_airs_reads_the_views_of_new_sims_in_one_query(
    subs: SubscriberServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2):
        subs.inventory.add_sim(TENANT, spec(n), actor="test")
    reads: list[list[str]] = []

    def counting(db: Any, imsis: Any) -> Any:
        reads.append(list(imsis))
        return read_views(db, imsis)

    monkeypatch.setattr(attach_module, "read_views", counting)
    queries = [AuthQuery(imsi(n).value, SERVING, 1, None, "mme") for n in (1, 2, 3, 1)]
    outcomes = [r.outcome for r in subs.hss.authentication_info_many(queries)]
    assert [HssOutcome.OK, HssOutcome.OK, HssOutcome.USER_UNKNOWN, HssOutcome.OK] == outcomes
    assert [[imsi(n).value for n in (1, 2, 3, 1)]] == reads  # one read for the burst
    subs.hss.authentication_info_many(queries)
    assert 1 == len(reads)  # all cached now, the unknown one too
    subs.inventory.transition(subs.inventory.get_sim_by_imsi(imsi(2)).iccid,
                              SimState.SUSPENDED, actor="test")
    again = subs.hss.authentication_info_many(queries[:2])
    assert [HssOutcome.OK, HssOutcome.UNKNOWN_EPS_SUBSCRIPTION] == [r.outcome for r in again]
    assert [imsi(2).value] in reads  # the dropped view was read again


def test_eap_vectors_of_a_burst_share_one_commit_and_one_audit_append(
    subs: SubscriberServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EAP-AKA' and EAP-AKA vectors requested together: one read, one durable group
    commit, one audit append; each vector verifies under the SIM's key and carries the
    SQN the store now holds; an unknown SIM fails alone."""
    for n in (1, 2):
        subs.inventory.add_sim(TENANT, spec(n), actor="test")
    appends: list[int] = []
    original = type(subs.inventory.audit).append_many

    def append_many(self: Any, entries: Any, **options: Any) -> Any:
        appends.append(len(entries))
        return original(self, entries, **options)

    monkeypatch.setattr(type(subs.inventory.audit), "append_many", append_many)
    batches = subs.auth.group_commit.batches
    out = subs.auth.eap_vectors_many([(imsi(1), "WLAN", "eap-aka-prime"),
                                      (imsi(2), None, "eap-aka"),
                                      (imsi(3), "WLAN", "eap-aka-prime"),
                                      (imsi(1), "WLAN", "eap-aka-prime")])
    assert batches + 1 == subs.auth.group_commit.batches
    assert [3] == appends
    first, umts, unknown, second = out
    assert isinstance(first, EapAkaPrimeVector)
    assert isinstance(second, EapAkaPrimeVector)
    assert isinstance(umts, UmtsVector)
    assert isinstance(unknown, NotFound)
    alg = Milenage(K1, OPC1)
    seqs = []
    for vector in (first, second, umts):
        f = alg.f2345(vector.rand)
        sqn = bytes(a ^ b for a, b in zip(vector.autn[:6], f.ak, strict=True))
        assert alg.f1(vector.rand, sqn, vector.autn[6:8]) == vector.autn[8:]
        assert f.res == vector.xres
        seqs.append(split_sqn(sqn)[0])
        if isinstance(vector, EapAkaPrimeVector):
            assert (vector.ck_prime, vector.ik_prime) == ck_ik_prime(f.ck, f.ik, "WLAN",
                                                                     vector.autn[:6])
    assert [1, 2, 1] == seqs  # SIM 1 twice in one batch: consecutive SQNs
    for n, seq in ((1, 2), (2, 1)):
        sim = subs.inventory.get_sim_by_imsi(imsi(n))
        assert seq == decode_sqn_state(subs.inventory.sqn_state(sim.iccid)[0]).seq
    assert 2 == len(subs.inventory.audit.query(action="auc.eap-aka-prime"))
    assert 1 == len(subs.inventory.audit.query(action="auc.umts-av"))


def test_a_burst_is_swapped_in_one_statement_batch(
    subs: SubscriberServices, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No SIM moved between the read and the write: one batch of compare-and-swaps, no
    swap one by one; every request served, one audit record each with its SEQ."""
    for n in (1, 2):
        subs.inventory.add_sim(TENANT, spec(n), actor="test")
    one_by_one: list[object] = []
    original = Inventory.swap_sqn_state

    def swap(self: Inventory, *args: Any) -> bool:
        one_by_one.append(args)
        return original(self, *args)

    monkeypatch.setattr(Inventory, "swap_sqn_state", swap)
    out = serve(subs.auth, 1, 2, 1)
    assert [] == one_by_one
    assert [1, 1, 2] == [seq_of(vectors[0]) for vectors in out]
    records = [e for e in runtime.audit.iter_all() if e.action == "auc.eps-vectors"]
    assert [1, 1, 2] == [e.details["seq_he"] for e in records]


def test_a_burst_with_one_sqn_moved_is_served_one_by_one_and_audited_once(
    subs: SubscriberServices, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer advances SIM 2 between the burst's read and its write: the batch's
    swaps are rolled back (nothing of them stays, not even audit records) and every
    request is served again swap by swap, each SQN issued once."""
    for n in (1, 2, 3):
        subs.inventory.add_sim(TENANT, spec(n), actor="test")
    original = Inventory.auth_rows

    def stale_rows(self: Inventory, imsis: Any) -> Any:
        rows = original(self, imsis)
        subs.auth.eps_vectors(imsi(2), SERVING)  # SEQ of SIM 2 is 1 from now on
        return rows

    monkeypatch.setattr(Inventory, "auth_rows", stale_rows)
    out = serve(subs.auth, 1, 2, 3, 1)
    assert [1, 2, 1, 2] == [seq_of(vectors[0]) for vectors in out]
    for n, seq in ((1, 2), (2, 2), (3, 1)):
        sim = subs.inventory.get_sim_by_imsi(imsi(n))
        assert seq == decode_sqn_state(subs.inventory.sqn_state(sim.iccid)[0]).seq
    records = [e for e in runtime.audit.iter_all() if e.action == "auc.eps-vectors"]
    assert [(2, 1), (1, 1), (2, 2), (3, 1), (1, 2)] == [
        (next(n for n in (1, 2, 3) if e.subject == f"sim:{iccid(n)}"), e.details["seq_he"])
        for e in records]


def test_after_a_rolled_back_batch_the_next_batches_swap_one_by_one(
    subs: SubscriberServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Contended SIMs (another process advancing them) would roll back every statement
    batch and serve it twice: after one roll-back, the next batches go one by one."""
    for n in (1, 2):
        subs.inventory.add_sim(TENANT, spec(n), actor="test")
    original = Inventory.auth_rows
    moved = [True]

    def stale_rows(self: Inventory, imsis: Any) -> Any:
        rows = original(self, imsis)
        if moved.pop() if moved else False:
            subs.auth.eps_vectors(imsi(2), SERVING)
        return rows

    monkeypatch.setattr(Inventory, "auth_rows", stale_rows)
    batched: list[object] = []
    swap_many = Inventory.swap_sqn_states

    def count(self: Inventory, swaps: Any) -> int:
        batched.append(swaps)
        return swap_many(self, swaps)

    monkeypatch.setattr(Inventory, "swap_sqn_states", count)
    serve(subs.auth, 1, 2)  # rolled back, served one by one
    assert 1 == len(batched)
    for _ in range(SWAP_BATCH_BACKOFF):
        serve(subs.auth, 1, 2)
    assert 1 == len(batched)  # the back-off's batches went one by one
    out = serve(subs.auth, 1, 2)
    assert 2 == len(batched)  # then statement batches again
    assert [SWAP_BATCH_BACKOFF + 2, SWAP_BATCH_BACKOFF + 3] == [seq_of(v[0]) for v in out]
