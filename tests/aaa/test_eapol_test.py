"""hostapd's ``eapol_test`` (Debian package eapoltest) as the EAP peer: EAP-AKA and
EAP-AKA' full authentications against simtrust's RADIUS server, the MSK compared with
the MS-MPPE keys of the Access-Accept ("MPPE keys OK").

Debian builds eapol_test without its USIM simulator, so the USIM runs outside it the
way wpa_supplicant supports for external SIMs (``external_sim=1``): eapol_test asks
``CTRL-REQ-SIM-…:UMTS-AUTH:RAND:AUTN`` on its control interface and this test answers
``UMTS-AUTH:IK:CK:RES`` (or ``UMTS-AUTS:AUTS``) with the test peer's own MILENAGE
(tests/aaa/eap_peer.py). Everything EAP — the identity, AT_KDF_INPUT and CK'/IK', the
key hierarchy, AT_MAC, AT_ENCR_DATA, the MSK — is eapol_test's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from .conftest import K1, OPC1, SECRET, Aaa, imsi, wait_until
from .eap_peer import Usim

REALM = "wlan.mnc001.mcc001.3gppnetwork.org"


class _ExternalUsim(threading.Thread):
    """Attaches to eapol_test's control interface and answers its UMTS-AUTH requests."""

    def __init__(self, ctrl_path: Path, usim: Usim, local: Path) -> None:
        super().__init__(daemon=True)
        self.usim = usim
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(local))
        self.ctrl_path = ctrl_path
        self.requests = 0
        self.resyncs = 0
        self.error: str | None = None

    def attach(self) -> None:
        self.sock.connect(str(self.ctrl_path))
        self.sock.send(b"ATTACH")
        reply = self.sock.recv(4096)
        assert reply.startswith(b"OK"), reply

    def run(self) -> None:
        try:
            while True:
                event = self.sock.recv(4096).decode()
                if "CTRL-REQ-SIM-" not in event:
                    continue
                # <3>CTRL-REQ-SIM-<id>:UMTS-AUTH:<RAND>:<AUTN> needed for SSID ...
                body = event.split("CTRL-REQ-SIM-", 1)[1].split(" ", 1)[0]
                net_id, kind, rand, autn = body.split(":")[:4]
                assert kind == "UMTS-AUTH", event
                self.requests += 1
                result = self.usim.authenticate(bytes.fromhex(rand), bytes.fromhex(autn))
                if isinstance(result, bytes):
                    self.resyncs += 1
                    answer = f"UMTS-AUTS:{result.hex()}"
                else:
                    res, ck, ik = result
                    answer = f"UMTS-AUTH:{ik.hex()}:{ck.hex()}:{res.hex()}"
                self.sock.send(f"CTRL-RSP-SIM-{net_id}:{answer}".encode())
                self.sock.recv(4096)  # OK
        except OSError:
            return
        except AssertionError as exc:  # reported by the test
            self.error = str(exc)


def _eapol_test(aaa: Aaa, tmp_path: Path, method: str, identity: str, usim: Usim
                ) -> tuple[str, _ExternalUsim]:
    exe = shutil.which("eapol_test")
    if exe is None:
        pytest.fail("eapol_test (Debian package eapoltest) is not installed")
    ctrl_dir = tmp_path / f"ctrl-{method.strip(chr(39))}{len(method)}"
    conf = tmp_path / f"eapol-{len(method)}.conf"
    conf.write_text(
        f"ctrl_interface={ctrl_dir}\n"
        "external_sim=1\n"
        "network={\n"
        '  ssid="simtrust"\n'
        "  key_mgmt=WPA-EAP\n"
        f"  eap={method}\n"
        f'  identity="{identity}"\n'
        "}\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf), "-a", "127.0.0.1", "-p", str(aaa.auth_port), "-s", SECRET,
         "-W", "-t", "20", "-i", "eapol0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctrl = ctrl_dir / "eapol0"
    # -W: eapol_test opens its control interface and waits for a monitor before it starts.
    wait_until(lambda: ctrl.exists() or proc.poll() is not None)
    if not ctrl.exists():
        pytest.fail("eapol_test did not open its control interface:\n"
                    + proc.communicate()[0][-3000:])
    peer = _ExternalUsim(ctrl, usim, tmp_path / f"mon-{os.getpid()}-{len(method)}")
    peer.attach()
    peer.start()
    out, _ = proc.communicate(timeout=60)
    peer.sock.close()
    return out, peer


@pytest.mark.parametrize(("method", "prefix"), [("AKA'", "6"), ("AKA", "0")])
def test_eapol_test_authenticates_with_the_sim(aaa: Aaa, tmp_path: Path, method: str,
                                               prefix: str) -> None:
    aaa.add_sim(1)
    usim = Usim(K1, OPC1)
    out, peer = _eapol_test(aaa, tmp_path, method, f"{prefix}{imsi(1)}@{REALM}", usim)
    assert peer.error is None, peer.error
    assert peer.requests >= 1, out[-3000:]
    assert "SUCCESS" in out.splitlines()[-1], out[-4000:]
    assert "MPPE keys OK: 1  mismatch: 0" in out, out[-4000:]
    assert aaa.services.server.counters["accepts"] >= 1


def test_eapol_test_resynchronises_a_stale_sqn(aaa: Aaa, tmp_path: Path) -> None:
    """The USIM's SQN is ahead of the AuC's: AT_AUTS, re-synchronisation, a fresh
    challenge, success."""
    aaa.add_sim(2)
    usim = Usim(K1, OPC1, sqn_ms=1 << 40)
    out, peer = _eapol_test(aaa, tmp_path, "AKA'", f"6{imsi(2)}@{REALM}", usim)
    assert peer.error is None, peer.error
    assert peer.resyncs == 1
    assert "MPPE keys OK: 1  mismatch: 0" in out, out[-4000:]
