"""tshark, an independent decoder, reads 3GPP-User-Location-Info the way simtrust does.

Random TAI, ECGI and TAI+ECGI values (two- and three-digit MNCs) are put in
RADIUS Accounting-Requests (TS 29.061 §16.4.7.2) in a pcap; tshark's MCC, MNC,
ECI and TAC for each packet must equal what :func:`user_location_cell` made of
the same octets.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from simtrust.domain import user_location_cell
from tests.aaa.peers import Capture

FIELDS = ("e212.ecgi.mcc", "e212.ecgi.mnc", "gtpv2.ecgi_eci", "e212.tai.mcc", "e212.tai.mnc",
          "gtpv2.tai_tac")


def _bcd(mcc: str, mnc: str) -> bytes:
    m3 = mnc[2] if len(mnc) == 3 else "f"
    return bytes.fromhex(mcc[1] + mcc[0] + m3 + mcc[2] + mnc[1] + mnc[0])


def _packet(n: int, uli: bytes) -> bytes:
    vsa = struct.pack("!BB", 22, 2 + len(uli)) + uli
    body = struct.pack("!BBI", 26, 6 + len(vsa), 10415) + vsa + bytes([40, 6, 0, 0, 0, 1])
    return struct.pack("!BBH", 4, n % 256, 20 + len(body)) + b"\0" * 16 + body


def test_tshark_reads_the_same_cells(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is not installed")
    rng = random.Random(19)
    capture = Capture()
    ours: list[str] = []
    for n in range(30):
        plmn = _bcd(rng.choice(["262", "310", "234", "001"]), rng.choice(["01", "260", "15"]))
        tai = plmn + rng.randrange(1 << 16).to_bytes(2, "big")
        ecgi = plmn + rng.randrange(1 << 28).to_bytes(4, "big")
        kind = rng.choice([128, 129, 130])
        uli = bytes([kind]) + (tai if kind == 128 else ecgi if kind == 129 else tai + ecgi)
        capture.add(40000, 1813, _packet(n, uli))
        ours.append(user_location_cell(uli))
    pcap = capture.write_pcap(tmp_path / "uli.pcap", {1813: 1813})
    out = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-E", "separator=|",
                          *[a for f in FIELDS for a in ("-e", f)]],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    assert len(rows) == len(ours)
    for ours_key, (emcc, emnc, eci, tmcc, tmnc, tac) in zip(ours, rows, strict=True):
        kind, plmn, value = ours_key.split(":")
        if kind == "ecgi":
            assert (int(emcc), int(emnc), int(eci)) == (
                int(plmn[:3]), int(plmn[3:]), int(value, 16)), ours_key
        else:
            assert "tai" == kind
            assert "" == eci
            assert (int(tmcc), int(tmnc), int(tac, 0)) == (
                int(plmn[:3]), int(plmn[3:]), int(value, 16)), ours_key
