"""The AuC service: vectors for stored SIMs verify on a simulated USIM; SQN persists; AUTS."""

from __future__ import annotations

import os
import threading

import pytest

from simtrust.errors import AuthenticationFailure, DecryptionFailed, NotFound, UnknownKey
from simtrust.subscriber import (
    OpKind,
    Plmn,
    SimSecrets,
    SimState,
    SubscriberServices,
    TuakParams,
    build_services,
)
from simtrust.subscriber._sqn import decode_sqn_state
from simtrust.subscriber.auc import (
    AucSqnState,
    Milenage,
    SyncFailure,
    Tuak,
    Usim,
    UsimSqnArray,
    ck_ik_prime,
    kasme,
    kausf,
    plmn_id,
    split_sqn,
)
from simtrust.subscriber.auc.suci import PROFILE_A, PROFILE_B, conceal_imsi

from .conftest import K1, OP1, OPC1, TENANT, imsi, spec

SERVING = Plmn("001", "01")
SN_NAME = SERVING.serving_network_name


def usim(ahead: int = 0) -> Usim:
    array = UsimSqnArray()
    if ahead:
        array = UsimSqnArray(tuple([ahead] + [0] * 31))
    return Usim(Milenage(K1, OPC1), array)


def test_eps_vectors_verify_on_the_usim(subs: SubscriberServices) -> None:
    subs.inventory.add_sim(TENANT, spec(1), actor="test")
    vectors = subs.auth.eps_vectors(imsi(1), SERVING, count=3, actor="mme")
    card = usim()
    seqs = []
    for vector in vectors:
        response, card = card.authenticate(vector.rand, vector.autn,
                                           require_separation_bit=True)
        assert vector.xres == response.res
        sqn_xor_ak = vector.autn[:6]
        assert vector.kasme == kasme(response.ck, response.ik, plmn_id("001", "01"), sqn_xor_ak)
        seqs.append(split_sqn(response.sqn)[0])
    assert [1, 2, 3] == seqs
    stored = decode_sqn_state(subs.inventory.sqn_state(subs.inventory.get_sim_by_imsi(
        imsi(1)).iccid)[0])
    assert 3 == stored.seq
    events = subs.inventory.audit.query(action="auc.eps-vectors")
    assert [3] == [e.details["count"] for e in events]
    assert K1.hex() not in str(events[0].to_json())


def test_sqn_survives_a_restart(subs: SubscriberServices, runtime: object) -> None:
    subs.inventory.add_sim(TENANT, spec(1), actor="test")
    first = subs.auth.he_av_5g(imsi(1), SN_NAME)
    again = build_services(runtime.db, runtime.keyring, runtime.audit, runtime.clock, sinks=[])  # type: ignore[arg-type]
    second = again.auth.he_av_5g(imsi(1), SN_NAME)
    card = usim()
    r1, card = card.authenticate(first.rand, first.autn)
    r2, card = card.authenticate(second.rand, second.autn)
    assert split_sqn(r1.sqn)[0] < split_sqn(r2.sqn)[0]
    assert second.xres_star == r2.res_star(SN_NAME, second.rand)
    assert second.kausf == kausf(r2.ck, r2.ik, SN_NAME, second.autn[:6])
    again.close()


def test_eap_aka_prime_vector(lite: SubscriberServices) -> None:
    lite.inventory.add_sim(TENANT, spec(1, secrets=SimSecrets(K1, OP1, OpKind.OP)),
                           actor="test")
    vector = lite.auth.eap_aka_prime(imsi(1), SN_NAME)
    response, _ = usim().authenticate(vector.rand, vector.autn)
    assert vector.xres == response.res
    assert (vector.ck_prime, vector.ik_prime) == ck_ik_prime(response.ck, response.ik, SN_NAME,
                                                            vector.autn[:6])


def test_tuak_sim_with_top(lite: SubscriberServices) -> None:
    k, top = os.urandom(32), os.urandom(32)
    params = TuakParams(keccak_iterations=1, mac_bits=64, res_bits=128, ck_bits=128)
    lite.inventory.add_sim(TENANT, spec(1, secrets=SimSecrets(k, top, OpKind.TOP), tuak=params),
                           actor="test")
    vector = lite.auth.eps_vectors(imsi(1), SERVING)[0]
    card = Usim(Tuak.from_top(k, top, res_bits=128))
    response, _ = card.authenticate(vector.rand, vector.autn)
    assert vector.xres == response.res
    assert 16 == len(response.res)


def test_resync_from_auts(subs: SubscriberServices) -> None:
    inv = subs.inventory
    sim = inv.add_sim(TENANT, spec(1), actor="test")
    card = usim(ahead=5000)  # the card has seen SEQ 5000 (e.g. another AuC, restored backup)
    vector = subs.auth.eps_vectors(imsi(1), SERVING)[0]
    with pytest.raises(SyncFailure) as info:
        card.authenticate(vector.rand, vector.autn)
    sqn_ms = subs.auth.resynchronise(imsi(1), vector.rand, info.value.auts, actor="ausf")
    assert 5000 == split_sqn(sqn_ms)[0]
    assert 5000 == decode_sqn_state(inv.sqn_state(sim.iccid)[0]).seq
    fresh = subs.auth.eps_vectors(imsi(1), SERVING)[0]
    response, _ = card.authenticate(fresh.rand, fresh.autn)
    assert 5001 == split_sqn(response.sqn)[0]
    events = inv.audit.query(action="auc.resync")
    assert [("success", "reset")] == [(e.outcome, e.reason) for e in events]


def test_forged_auts_refused_and_audited(subs: SubscriberServices) -> None:
    inv = subs.inventory
    sim = inv.add_sim(TENANT, spec(1), actor="test")
    vector = subs.auth.eps_vectors(imsi(1), SERVING)[0]
    with pytest.raises(SyncFailure) as info:
        usim(ahead=5000).authenticate(vector.rand, vector.autn)
    forged = bytearray(info.value.auts)
    forged[-1] ^= 1
    before = inv.sqn_state(sim.iccid)
    with pytest.raises(AuthenticationFailure) as refused:
        subs.auth.resynchronise(imsi(1), vector.rand, bytes(forged))
    assert "AUTHENTICATION_REJECTED" == refused.value.context["cause"]
    assert before == inv.sqn_state(sim.iccid)
    # Pushing SQN forward with a made-up SQN_MS needs K: random AUTS fail too.
    with pytest.raises(AuthenticationFailure):
        subs.auth.resynchronise(imsi(1), vector.rand, os.urandom(14))
    assert ["failure", "failure"] == [e.outcome for e in inv.audit.query(action="auc.resync")]


def test_unknown_and_barred_subscribers(lite: SubscriberServices) -> None:
    with pytest.raises(NotFound) as missing:
        lite.auth.he_av_5g(imsi(1), SN_NAME)
    assert "USER_NOT_FOUND" == missing.value.context["cause"]
    sim = lite.inventory.add_sim(TENANT, spec(1), actor="test")
    lite.inventory.transition(sim.iccid, SimState.SUSPENDED, actor="test")
    with pytest.raises(AuthenticationFailure) as barred:
        lite.auth.he_av_5g(imsi(1), SN_NAME)
    assert "AUTHENTICATION_REJECTED" == barred.value.context["cause"]


def test_concurrent_generation_never_repeats_an_sqn(subs: SubscriberServices) -> None:
    subs.inventory.add_sim(TENANT, spec(1), actor="test")
    issued: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            vector = subs.auth.eps_vectors(imsi(1), SERVING)[0]
            with lock:
                issued.append((vector.rand, vector.autn))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alg = Milenage(K1, OPC1)
    seqs = set()
    for rand, autn in issued:
        ak = alg.f2345(rand).ak
        sqn = bytes(x ^ y for x, y in zip(autn[:6], ak, strict=True))
        seqs.add(split_sqn(sqn)[0])
    assert set(range(1, 46)) == seqs
    sim = subs.inventory.get_sim_by_imsi(imsi(1))
    assert AucSqnState(seq=45, ind=45 % 32) == decode_sqn_state(
        subs.inventory.sqn_state(sim.iccid)[0])


def test_home_network_keys_and_suci(subs: SubscriberServices) -> None:

    keys = subs.hn_keys
    a = keys.generate(1, "A", actor="test")
    b = keys.generate(2, "B", actor="test")
    assert (32, 33) == (len(a.public_key), len(b.public_key))
    row = subs.inventory.db.query_one("SELECT private_sealed FROM sub_hn_keys WHERE key_id = 1")
    assert row is not None
    assert len(bytes(row[0])) > 32
    for scheme, key in ((PROFILE_A, a), (PROFILE_B, b)):
        suci = conceal_imsi(imsi(7).value, 2, scheme=scheme, key_id=key.key_id,
                            hn_public_key=key.public_key)
        assert imsi(7) == keys.deconceal(str(suci))
    suci = str(conceal_imsi(imsi(7).value, 2, scheme=PROFILE_A, key_id=9,
                            hn_public_key=a.public_key))
    with pytest.raises(UnknownKey):
        keys.deconceal(suci)
    good = str(conceal_imsi(imsi(7).value, 2, scheme=PROFILE_A, key_id=1,
                            hn_public_key=a.public_key))
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(DecryptionFailed):
        keys.deconceal(tampered)
    assert [1, 2] == [k.key_id for k in keys.list()]
