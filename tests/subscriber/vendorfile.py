"""Generates SIM-vendor output files for import tests and the documented 1M run."""

from __future__ import annotations

import os
from pathlib import Path

from simtrust.subscriber import luhn_check_digit


def write_vendor_file(path: Path, count: int, *, start: int = 0, imsi_prefix: str = "00101",
                      header: str = "ICCID,IMSI,KI,OPC,AMF,PIN1,PUK1") -> Path:
    """``count`` valid MILENAGE rows (random K/OPc) in the comma-separated vendor layout."""
    rand = os.urandom(32 * count).hex()
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "\n")
        lines = []
        for i in range(count):
            n = start + i
            body = f"89882{n:013d}"
            iccid = body + str(luhn_check_digit(body))
            imsi = f"{imsi_prefix}{n:010d}"
            key = rand[64 * i : 64 * i + 32]
            opc = rand[64 * i + 32 : 64 * i + 64]
            lines.append(f"{iccid},{imsi},{key},{opc},8000,1234,12345678\n")
            if len(lines) >= 10_000:
                fh.writelines(lines)
                lines = []
        fh.writelines(lines)
    return path
