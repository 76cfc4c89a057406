"""Bulk import of SIM-vendor files: accepted headers, all-or-nothing, every bad row by line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simtrust.errors import Conflict, InvalidInput
from simtrust.subscriber import ImportRejected, Imsi, OpKind, SimState, SubscriberServices
from simtrust.subscriber._sqn import decode_sqn_state

from .conftest import K1, OP1, OPC1, TENANT, iccid, spec
from .vendorfile import write_vendor_file

GOOD = f"""\ufeff# personalisation batch 42
ICCID;IMSI;Ki;OPc;OP;AMF;SQN;PIN1;Mnc_Len;State
{iccid(1)};001010000000001;{K1.hex()};{OPC1.hex()};;8001;;0000;2;active
{iccid(2)};001010000000002;{K1.hex().upper()};;{OP1.hex()};;00000000002a;0000;;test
"""


def test_import_good_file(subs: SubscriberServices, tmp_path: Path) -> None:
    path = tmp_path / "batch42.out"
    path.write_text(GOOD, encoding="utf-8")
    seen: list[int] = []
    summary = subs.importer.import_file(path, TENANT, actor="test", progress=seen.append)
    assert (2, 2) == (summary.rows, summary.imported)
    assert ["PIN1"] == summary.ignored_columns
    assert 2 == seen[-1]
    inv = subs.inventory
    first = inv.get_sim(iccid(1))
    assert (SimState.ACTIVE, OpKind.OPC, b"\x80\x01") == (first.state, first.op_kind, first.amf)
    second = inv.get_sim(iccid(2))
    assert (SimState.TEST, OpKind.OP) == (second.state, second.op_kind)
    assert OP1 == inv.open_secrets(second.iccid).op
    # SQN column: the AuC continues above the SQN the card was personalised with.
    assert 0x2A >> 5 == decode_sqn_state(inv.sqn_state(second.iccid)[0]).seq
    events = inv.audit.query(action="sim.import")
    assert 1 == len(events)
    assert summary.sha256 == events[0].details["sha256"]
    assert len(summary.sha256) == 64
    assert K1.hex() not in str(events[0].to_json())


def test_bad_rows_all_reported_and_nothing_written(subs: SubscriberServices,
                                                    tmp_path: Path) -> None:
    good_iccid = iccid(10).value
    bad_check = good_iccid[:-1] + str((int(good_iccid[-1]) + 1) % 10)
    lines = [
        "ICCID,IMSI,KI,OPC,OP,AMF",
        f"{iccid(11)},001010000000011,{K1.hex()},{OPC1.hex()},,8000",   # 2: good
        f"{bad_check},001010000000012,{K1.hex()},{OPC1.hex()},,8000",    # 3: check digit
        f"{iccid(13)},001010000000013,{K1.hex()},{OPC1.hex()},{OP1.hex()},8000",  # 4: both
        f"{iccid(14)},00101,{K1.hex()[:30]},{OPC1.hex()},,zz",           # 5: imsi, k, amf
        f"{iccid(15)},001010000000011,{K1.hex()},{OPC1.hex()},,8000",   # 6: duplicate IMSI
        "",
        f"{iccid(16)},001010000000016,{K1.hex()},{OPC1.hex()},,8000",   # 8: good
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        subs.importer.import_file(path, TENANT, actor="test")
    errors = info.value.errors
    assert [3, 4, 5, 5, 5, 6] == [e.line for e in errors]
    assert ["iccid", "opc", "imsi", "k", "amf", "imsi"] == [e.field for e in errors]
    assert "check digit" in errors[0].message
    assert 4 == info.value.context["bad_rows"]
    assert 0 == sum(subs.inventory.count_sims(TENANT).values())
    assert [] == subs.inventory.audit.query(action="sim.import")
    assert K1.hex() not in str(info.value.context)


def test_rows_clashing_with_the_store_are_reported(subs: SubscriberServices,
                                                   tmp_path: Path) -> None:
    first = write_vendor_file(tmp_path / "a.csv", 5)
    subs.importer.import_file(first, TENANT, actor="test")
    second = write_vendor_file(tmp_path / "b.csv", 5, start=3)
    with pytest.raises(ImportRejected) as info:
        subs.importer.import_file(second, TENANT, actor="test")
    assert [2, 2, 3, 3] == [e.line for e in info.value.errors]
    assert 5 == sum(subs.inventory.count_sims(TENANT).values())


@pytest.mark.parametrize(
    "header",
    ["IMSI,KI,OPC", "ICCID,IMSI,OPC", "ICCID,IMSI,KI", "ICCID,IMSI,KI,OPC,OPC"],
)
def test_bad_header_rejected(lite: SubscriberServices, tmp_path: Path, header: str) -> None:
    path = tmp_path / "h.csv"
    path.write_text(header + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        lite.importer.import_file(path, TENANT, actor="test")


def test_tuak_rows(lite: SubscriberServices, tmp_path: Path) -> None:
    k = os.urandom(32)
    topc = os.urandom(32)
    path = tmp_path / "tuak.csv"
    path.write_text(
        "ICCID,IMSI,K,TOPC,KECCAK_ITERATIONS,MAC_BITS,RES_BITS,CK_BITS,IK_BITS\n"
        f"{iccid(1)},001010000000001,{k.hex()},{topc.hex()},1,128,256,256,256\n"
        f"{iccid(2)},001010000000002,{k.hex()},{topc.hex()},1,100,64,128,128\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as info:
        lite.importer.import_file(path, TENANT, actor="test")
    assert [(3, "mac_bits")] == [(e.line, e.field) for e in info.value.errors]
    path.write_text(path.read_text().splitlines()[0] + "\n" + path.read_text().splitlines()[1]
                    + "\n", encoding="utf-8")
    lite.importer.import_file(path, TENANT, actor="test")
    sim = lite.inventory.get_sim(iccid(1))
    assert sim.tuak is not None
    assert 256 == sim.tuak.res_bits
    assert k == lite.inventory.open_secrets(sim.iccid).k


@pytest.mark.slow
def test_import_large(lite: SubscriberServices, tmp_path: Path) -> None:
    """100,000 SIMs from one vendor file in one transaction, every secret sealed; a
    million with SIMTRUST_IMPORT_1M=1 (CI). The million run asserts everything the
    100,000 one does, so an opted-in run imports the million only."""
    count = 1_000_000 if os.environ.get("SIMTRUST_IMPORT_1M") else 100_000
    path = write_vendor_file(tmp_path / "vendor.csv", count)
    summary = lite.importer.import_file(path, TENANT, actor="test")
    print(summary.to_json())
    assert count == summary.imported
    assert count == lite.inventory.count_sims(TENANT)["inventory"]
    last = lite.inventory.get_sim_by_imsi(Imsi(f"00101{count - 1:010d}"))
    assert 16 == len(lite.inventory.open_secrets(last.iccid).k)


def test_rows_clashing_with_the_store_are_reported_after_a_bad_row(
        subs: SubscriberServices, tmp_path: Path) -> None:
    """Every bad row is listed: a row whose ICCID exists still is, after a malformed one."""
    first = write_vendor_file(tmp_path / "a.csv", 3)
    subs.importer.import_file(first, TENANT, actor="test")
    lines = [
        "ICCID,IMSI,KI,OPC",
        f"{iccid(20)},00101,{K1.hex()},{OPC1.hex()}",                       # 2: bad IMSI
        f"{iccid(1)},001010000000031,{K1.hex()},{OPC1.hex()}",              # 3: ICCID exists
        f"{iccid(21)},001010000000002,{K1.hex()},{OPC1.hex()}",             # 4: IMSI exists
    ]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        subs.importer.import_file(path, TENANT, actor="test")
    assert [(2, "imsi"), (3, "iccid"), (4, "imsi")] == \
        [(e.line, e.field) for e in info.value.errors]
    assert 3 == sum(subs.inventory.count_sims(TENANT).values())


def test_static_addresses_are_never_shared(subs: SubscriberServices, tmp_path: Path) -> None:
    """Refused at assignment: in one file, against the store, on create and update."""
    inv = subs.inventory
    inv.add_sim(TENANT, spec(1, static_ip="10.9.9.1"), actor="test")
    with pytest.raises(Conflict, match=r"10\.9\.9\.1"):
        inv.add_sim(TENANT, spec(2, static_ip="10.9.9.1"), actor="test")
    inv.add_sim(TENANT, spec(2), actor="test")
    with pytest.raises(Conflict, match=r"10\.9\.9\.1"):
        inv.update_sim(iccid(2), actor="test", static_ip="10.9.9.1")
    inv.update_sim(iccid(1), actor="test", static_ip="10.9.9.1")  # its own address again
    lines = [
        "ICCID,IMSI,KI,OPC,STATIC_IP",
        f"{iccid(30)},001010000000030,{K1.hex()},{OPC1.hex()},10.9.9.1",   # 2: held
        f"{iccid(31)},001010000000031,{K1.hex()},{OPC1.hex()},10.9.9.7",   # 3: good
        f"{iccid(32)},001010000000032,{K1.hex()},{OPC1.hex()},10.9.9.7",   # 4: same as 3
    ]
    path = tmp_path / "ips.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        subs.importer.import_file(path, TENANT, actor="test")
    assert [(2, "static_ip"), (4, "static_ip")] == \
        [(e.line, e.field) for e in info.value.errors]
