"""The live fraud path over RADIUS accounting: one IMSI in two concurrent sessions
(Debian's radclient as the gateway) raises a cloned-SIM alert through the
runtime's detection service."""

from __future__ import annotations

from simtrust.alerts import MemorySink
from simtrust.detect import Alert

from .conftest import APN, Aaa, imsi, radclient, wait_until


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
    _start(aaa, "s-1", "00101", "10.45.0.9")
    # the detectors see a record once it is committed (the answer may go out first)
    wait_until(lambda: aaa.rt.detect.fraud.events >= 1)
    assert [] == sink.alerts
    # the same IMSI opens a second session from another network while the first is open
    _start(aaa, "s-2", "26201", "10.45.0.10")
    wait_until(lambda: sink.alerts)  # fails after its timeout if nothing is raised
    assert {str(imsi(7))} == {a.imsi for a in sink.alerts}
    assert "sim-clone" in {a.kind for a in sink.alerts}
