"""The live fraud path over S6a: a cloned SIM seen from two networks raises an alert.

Two MMEs (python-diameter) register one IMSI from Germany and from the USA
seconds apart; the ULRs reach the fraud detectors through the listener's
observer and the alert arrives at the detection service's sink.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from diameter.message.avp import Avp
from diameter.message.constants import VENDOR_TGPP

from simtrust.alerts import MemorySink
from simtrust.detect import (
    Alert,
    BucketRate,
    DetectionService,
    SimEvent,
    StormGuard,
    StormLimits,
)
from simtrust.diameter import DiameterListener, NodeSettings
from simtrust.runtime import Runtime
from simtrust.subscriber import Roaming, build_services

from ..subscriber.conftest import TENANT, imei, imsi, spec
from .conftest import HSS, MME, REALM, Env, Mme
from .reference import auts, plmn_bytes
from .test_s6a import air, ulr

GERMANY = plmn_bytes("262", "01")
USA = plmn_bytes("310", "260")


@pytest.fixture
def watched(sqlite_runtime: Runtime) -> Iterator[tuple[Env, MemorySink[Alert]]]:
    rt = sqlite_runtime
    rt.tenants.create_tenant(TENANT, "Acme Meters")
    subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
    subs.inventory.add_sim(TENANT, spec(1, roaming=Roaming.parse(["*"])), actor="test")
    sink: MemorySink[Alert] = MemorySink()
    detect = DetectionService([sink])
    settings = NodeSettings(HSS, REALM, frozenset({MME, "mme2.test.realm"}), watchdog_s=1.0)
    listener = DiameterListener(settings, subs.hss, subs.eir, rt.audit,
                                observer=detect.observe_sim)
    host, port = listener.start("127.0.0.1", 0)
    try:
        yield Env(rt, subs, listener, host, port), sink
    finally:
        listener.stop()
        subs.close()


def test_one_imsi_registered_from_two_continents_raises_an_alert(
    watched: tuple[Env, MemorySink[Alert]],
) -> None:
    env, sink = watched
    a, b = Mme(env.port), Mme(env.port, origin="mme2.test.realm")
    try:
        assert 2001 == a.cer().result_code
        assert 2001 == b.cer().result_code
        assert 2001 == a.exchange(ulr(str(imsi(1)), str(imei(1)), plmn=GERMANY)).result_code
        assert [] == sink.alerts
        assert 2001 == b.exchange(ulr(str(imsi(1)), str(imei(1)), plmn=USA)).result_code
    finally:
        a.close()
        b.close()
    assert sink.alerts, "no alert for a SIM in Germany and the USA seconds apart"
    alert = sink.alerts[0]
    assert str(imsi(1)) == alert.imsi
    assert alert.kind in ("impossible-travel", "sim-clone")


def test_repeated_auts_resyncs_raise_a_clone_alert(
    watched: tuple[Env, MemorySink[Alert]],
) -> None:
    env, sink = watched
    client = Mme(env.port)
    try:
        assert 2001 == client.cer().result_code
        for step in range(3):
            first = client.exchange(air(str(imsi(1)))).authentication_info.e_utran_vector[0]
            sqn_ms = (2**40 + step * 2**20).to_bytes(6, "big")
            answer = client.exchange(air(str(imsi(1)), resync=first.rand + auts(first.rand, sqn_ms)))
            assert 2001 == answer.result_code
    finally:
        client.close()
    assert sink.alerts, "three AUTS re-syncs raised nothing"
    assert {"sim-clone"} == {a.kind for a in sink.alerts}


def test_a_usim_sequence_number_beyond_the_home_auc_raises_a_clone_alert(
    watched: tuple[Env, MemorySink[Alert]],
) -> None:
    """A genuine re-sync reports an SQN_MS the AuC issued: no alert. An SQN_MS beyond
    every SEQ the AuC issued (vectors made elsewhere with the SIM's key) is one."""
    env, sink = watched
    client = Mme(env.port)
    try:
        assert 2001 == client.cer().result_code
        first = client.exchange(air(str(imsi(1)))).authentication_info.e_utran_vector[0]
        behind = (1 << 5).to_bytes(6, "big")  # SEQ 1: issued by the AuC already
        answer = client.exchange(air(str(imsi(1)), resync=first.rand + auts(first.rand, behind)))
        assert 2001 == answer.result_code
        assert [] == sink.alerts
        second = client.exchange(air(str(imsi(1)))).authentication_info.e_utran_vector[0]
        ahead = (10_000 << 5).to_bytes(6, "big")
        answer = client.exchange(air(str(imsi(1)), resync=second.rand + auts(second.rand, ahead)))
        assert 2001 == answer.result_code
    finally:
        client.close()
    assert [("sim-clone", "sqn_out_of_window")] == [
        (a.kind, a.evidence["feature"]) for a in sink.alerts]


def test_ulr_cell_reaches_the_detectors_and_the_cell_storm_scope(
        sqlite_runtime: Runtime) -> None:
    """An MME that sends E-UTRAN-Cell-Global-Identity in its ULR: the location event names
    the cell, and a storm limit on that cell answers 3004 while another cell passes."""
    rt = sqlite_runtime
    rt.tenants.create_tenant(TENANT, "Acme Meters")
    subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
    for n in (1, 2):
        subs.inventory.add_sim(TENANT, spec(n, roaming=Roaming.parse(["*"])), actor="test")
    events: list[SimEvent] = []
    guard = StormGuard(StormLimits(tenant=None, tac=None, cell=BucketRate(0.001, 1.0)))
    settings = NodeSettings(HSS, REALM, frozenset({MME}), watchdog_s=1.0)
    listener = DiameterListener(settings, subs.hss, subs.eir, rt.audit, storm=guard,
                                observer=events.append)
    _, port = listener.start("127.0.0.1", 0)
    mme = Mme(port)

    def located(n: int, eci: str) -> Any:
        msg = ulr(str(imsi(n)), str(imei(n)), plmn=GERMANY)
        msg.append_avp(Avp.new(1602, VENDOR_TGPP, value=GERMANY + bytes.fromhex(eci)))
        return mme.exchange(msg)

    try:
        assert 2001 == mme.cer().result_code
        assert 2001 == located(1, "01a2b3c4").result_code
        assert 3004 == located(2, "01a2b3c4").result_code  # the cell's burst is spent
        assert 2001 == located(2, "00000099").result_code  # another cell
    finally:
        mme.close()
        listener.stop()
        subs.close()
    assert [("location", "ecgi:26201:1a2b3c4"), ("location", "ecgi:26201:99")] == [
        (e.kind, e.cell) for e in events]
    assert 1 == guard.stats()["refused"]["cell"]
