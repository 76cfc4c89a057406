"""The live fraud path over RADIUS: one IMSI in two concurrent sessions (Debian's
radclient as the gateway) raises a cloned-SIM alert through the runtime's detection
service; accounting of a suspended SIM a usage-fraud alert; an EAP-AKA' authentication
(hostapd's eapol_test as the peer) reaches the detectors as an auth event."""

from __future__ import annotations

from pathlib import Path

from simtrust.alerts import MemorySink
from simtrust.detect import Alert, SimEvent
from simtrust.subscriber import SimState

from .conftest import APN, K1, OPC1, Aaa, imsi, radclient, wait_until
from .eap_peer import Usim
from .test_eapol_test import REALM, _eapol_test


def _start(aaa: Aaa, session: str, plmn: str, ip: str) -> None:
    out = radclient(aaa.acct_port, "acct",
                    f'Acct-Session-Id = "{session}", 3GPP-IMSI = "{imsi(7)}", '
                    f'Framed-IP-Address = {ip}, NAS-IP-Address = 127.0.0.1, '
                    f'Called-Station-Id = "{APN}", 3GPP-SGSN-MCC-MNC = "{plmn}", '
                    'Acct-Status-Type = Start\n')
    assert "Received Accounting-Response" in out, out


def test_two_concurrent_sessions_of_one_imsi_raise_a_clone_alert(aaa: Aaa) -> None:
    aaa.add_sim(7)
    sink: MemorySink[Alert] = MemorySink()
    aaa.rt.detect.add_sink(sink)
    seen: list[SimEvent] = []
    observe = aaa.rt.detect.fraud.observe

    def spy(event: SimEvent) -> list[Alert]:
        seen.append(event)
        return observe(event)

    aaa.rt.detect.fraud.observe = spy  # type: ignore[method-assign]
    _start(aaa, "s-1", "00101", "10.45.0.9")
    # the detectors see a record once it is committed (the answer may go out first)
    wait_until(lambda: aaa.rt.detect.fraud.events >= 1)
    assert [] == sink.alerts
    # the session names its APN: with the tenant, the cohort of the usage baselines
    assert [("session-start", APN)] == [(e.kind, e.apn) for e in seen]
    assert seen[0].cohort.endswith("/" + APN)
    # the same IMSI opens a second session from another network while the first is open
    _start(aaa, "s-2", "26201", "10.45.0.10")
    wait_until(lambda: sink.alerts)  # fails after its timeout if nothing is raised
    assert {str(imsi(7))} == {a.imsi for a in sink.alerts}
    assert "sim-clone" in {a.kind for a in sink.alerts}


def test_accounting_of_a_suspended_sim_raises_a_usage_fraud_alert(aaa: Aaa) -> None:
    """A gateway still accounts a session of a SIM its home side suspended."""
    aaa.add_sim(8, state=SimState.SUSPENDED)
    sink: MemorySink[Alert] = MemorySink()
    aaa.rt.detect.add_sink(sink)
    out = radclient(aaa.acct_port, "acct",
                    f'Acct-Session-Id = "s-9", 3GPP-IMSI = "{imsi(8)}", '
                    f'Framed-IP-Address = 10.45.0.11, NAS-IP-Address = 127.0.0.1, '
                    f'Called-Station-Id = "{APN}", 3GPP-SGSN-MCC-MNC = "26201", '
                    'Acct-Status-Type = Start\n')
    assert "Received Accounting-Response" in out, out
    wait_until(lambda: sink.alerts)
    assert [("usage-fraud", "used_while_suspended", "26201")] == [
        (a.kind, a.evidence["feature"], a.evidence["plmn"]) for a in sink.alerts]


def test_an_eap_aka_authentication_reaches_the_fraud_detectors(aaa: Aaa,
                                                               tmp_path: Path) -> None:
    aaa.add_sim(3)
    before = aaa.rt.detect.fraud.events
    out, peer = _eapol_test(aaa, tmp_path, "AKA'", f"6{imsi(3)}@{REALM}", Usim(K1, OPC1))
    assert "SUCCESS" in out.splitlines()[-1], out[-4000:]
    assert peer.error is None, peer.error
    # eapol_test sends no 3GPP-IMEISV: no attach decision, so the event is the EAP one
    assert before + 1 == aaa.rt.detect.fraud.events
    assert 1 == len(aaa.rt.detect.fraud)


def test_an_eap_resync_beyond_the_home_auc_raises_a_clone_alert(aaa: Aaa,
                                                               tmp_path: Path) -> None:
    """The USIM's SQN is far beyond anything the AuC issued (vectors made elsewhere with
    its key): the EAP-AKA' re-sync succeeds and the detectors raise sqn_out_of_window."""
    aaa.add_sim(4)
    sink: MemorySink[Alert] = MemorySink()
    aaa.rt.detect.add_sink(sink)
    out, peer = _eapol_test(aaa, tmp_path, "AKA'", f"6{imsi(4)}@{REALM}",
                            Usim(K1, OPC1, sqn_ms=1 << 40))
    assert peer.error is None, peer.error
    assert peer.resyncs == 1
    assert "SUCCESS" in out.splitlines()[-1], out[-4000:]
    assert [("sim-clone", "sqn_out_of_window")] == [
        (a.kind, a.evidence["feature"]) for a in sink.alerts]


def test_user_location_info_names_the_cell_of_accounting_events(aaa: Aaa) -> None:
    """3GPP-User-Location-Info (TAI and ECGI) sent by radclient: the session's event carries
    the cell (the more precise identity) for the detectors and the storm guard."""
    aaa.add_sim(9)
    seen: list[SimEvent] = []
    observe = aaa.rt.detect.fraud.observe

    def spy(event: SimEvent) -> list[Alert]:
        seen.append(event)
        return observe(event)

    aaa.rt.detect.fraud.observe = spy  # type: ignore[method-assign]
    out = radclient(aaa.acct_port, "acct",
                    f'Acct-Session-Id = "s-uli", 3GPP-IMSI = "{imsi(9)}", '
                    f'Framed-IP-Address = 10.45.0.12, NAS-IP-Address = 127.0.0.1, '
                    f'Called-Station-Id = "{APN}", 3GPP-SGSN-MCC-MNC = "26201", '
                    '3GPP-User-Location-Info = 0x8262f21000ff62f21001a2b3c4, '
                    'Acct-Status-Type = Start\n')
    assert "Received Accounting-Response" in out, out
    wait_until(lambda: bool(seen))
    assert [("session-start", "ecgi:26201:1a2b3c4")] == [(e.kind, e.cell) for e in seen]
