"""A capture of the tests' RADIUS traffic (radclient access and accounting, a Disconnect
exchange with the pyrad gateway) dissects in tshark with no malformed packet and no
expert error."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from simtrust.aaa import RadiusListener
from simtrust.subscriber import SimState

from .conftest import APN, SECRET, Aaa, iccid, imeisv, imsi, radclient, wait_until
from .peers import Capture, CoaReceiver


def test_capture_decodes_in_tshark(aaa: Aaa, tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is not installed")
    capture = Capture()

    def tap(src: tuple[str, int], dst: tuple[str, int], data: bytes) -> None:
        capture.add(src[1], dst[1], data)

    receiver = CoaReceiver(SECRET, capture=capture)
    aaa.services.clients.remove("127.0.0.1/32", actor="test")
    aaa.services.clients.add("127.0.0.1/32", SECRET, actor="test", coa_port=receiver.port)
    auth = RadiusListener(aaa.services.server, "127.0.0.1", 0, "auth", tap=tap).start()
    acct = RadiusListener(aaa.services.server, "127.0.0.1", 0, "acct", tap=tap).start()
    try:
        aaa.add_sim(1)
        out = radclient(auth.address[1], "auth",
                        f'3GPP-IMSI = "{imsi(1)}", 3GPP-IMEISV = "{imeisv(1)}", '
                        f'Called-Station-Id = "{APN}", User-Name = "{imsi(1)}", '
                        f'3GPP-SGSN-MCC-MNC = "00101", Message-Authenticator = 0x00\n')
        assert "Access-Accept" in out, out
        radclient(auth.address[1], "auth", f'3GPP-IMSI = "{imsi(9)}", '
                  f'3GPP-IMEISV = "{imeisv(9)}"\n')
        out = radclient(acct.address[1], "acct",
                        f'Acct-Session-Id = "cap-1", Acct-Status-Type = Start, '
                        f'3GPP-IMSI = "{imsi(1)}", Framed-IP-Address = 10.45.0.1, '
                        f'NAS-IP-Address = 127.0.0.1, Acct-Input-Octets = 10, '
                        f'Acct-Input-Gigawords = 2\n')
        assert "Accounting-Response" in out, out
        aaa.rt.subscriber.inventory.transition(iccid(1), SimState.SUSPENDED,
                                                         actor="test")
        wait_until(lambda: len(capture.datagrams) >= 8)
    finally:
        auth.close()
        acct.close()
        receiver.close()
    ports = {auth.address[1]: 1812, acct.address[1]: 1813, receiver.port: 3799}
    pcap = capture.write_pcap(tmp_path / "radius.pcap", ports)
    dissected = subprocess.run(
        [tshark, "-r", str(pcap), "-o", f"radius.shared_secret:{SECRET}", "-V"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "Malformed" not in dissected
    for code in ("Access-Request", "Access-Accept", "Access-Reject", "Accounting-Request",
                 "Accounting-Response", "Disconnect-Request", "Disconnect-ACK"):
        assert f"Code: {code}" in dissected, code
    assert "3GPP-IMSI" in dissected
    expert = subprocess.run(
        [tshark, "-r", str(pcap), "-q", "-z", "expert,error"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "Malformed" not in expert
    assert "Errors (" not in expert, expert
