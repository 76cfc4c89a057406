"""A small fleet of two tenants for the dashboard tests (SIMs, a group, a device, an alert)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from fastapi.testclient import TestClient

from simtrust.domain import Iccid, Imei
from simtrust.runtime import Runtime
from simtrust.settlement import CONTRACT_CODES, code_hash, create_payload
from simtrust.subscriber import SimState, luhn_check_digit
from simtrust.web import create_site
from tests.settlement.test_contracts import INITIAL

MSISDN = "491701234567"
EVIDENCE = {"feature": "scan_score_60s", "baseline": "device", "observed": 412.0,
            "expected": 3.5, "threshold": 40.0, "ratio": 117.71, "times_threshold": 10.3,
            "window_s": 60.0, "ports": {"23": 180, "2323": 40}}


@dataclass(frozen=True)
class Fleet:
    acme_admin: str
    acme_viewer: str
    globex_admin: str
    operator: str
    acme_iccids: list[str]
    globex_iccids: list[str]
    alert_id: str
    group_id: int


def _iccid(n: int, prefix: str) -> str:
    body = f"{prefix}{n:0{18 - len(prefix)}d}"
    return body + str(luhn_check_digit(body))


def _vendor_lines(count: int, iccid_prefix: str, imsi_prefix: str) -> str:
    lines = ["ICCID,IMSI,KI,OPC"]
    for i in range(count):
        lines.append(f"{_iccid(i, iccid_prefix)},{imsi_prefix}{i:07d},{'11' * 16},{'22' * 16}")
    return "\n".join(lines) + "\n"


def add_contract(rt: Runtime, name: str = "ra-acme-globex") -> None:
    """A roaming agreement on the ledger, submitted through the API as an operator would."""
    key = rt.tenants.create_key("operator-admin", "contracts").secret
    client = TestClient(create_site(rt), headers={"Authorization": f"Bearer {key}"})
    code = code_hash(CONTRACT_CODES["roaming-agreement"])
    answer = client.post("/v1/settlement/contracts",
                         json={"payload": json.loads(create_payload(name, code, INITIAL))})
    assert "applied" == answer.json()["status"], answer.text


def build(rt: Runtime, per_tenant: int = 30) -> Fleet:
    rt.tenants.create_tenant("acme", "Acme Metering")
    rt.tenants.create_tenant("globex", "Globex Logistics")
    inv = rt.subscriber.inventory
    importer = rt.subscriber.importer
    importer.import_stream(io.StringIO(_vendor_lines(per_tenant, "8988211", "00101100"),
                                       newline=""), "acme", actor="test")
    importer.import_stream(io.StringIO(_vendor_lines(per_tenant, "8988222", "00101200"),
                                       newline=""), "globex", actor="test")
    acme = [s.iccid.value for s in inv.list_sims("acme", limit=1000)]
    globex = [s.iccid.value for s in inv.list_sims("globex", limit=1000)]
    inv.transition_many(acme + globex, SimState.ACTIVE, actor="test")
    group = inv.create_group("acme", "meters-north", actor="test")
    body = "35693803564380"
    imei = body + str(luhn_check_digit(body))
    inv.add_device("acme", Imei(imei), actor="test", label="Pump house 7")
    rt.db.execute("INSERT INTO sub_bindings (iccid, imei, mode, sim_lock, dev_lock, bound_at)"
                  " VALUES (?, ?, 'exact', NULL, NULL, '2026-01-01T00:00:00+00:00')",
                  (acme[3], imei))
    bound_imsi = inv.get_sim(Iccid(acme[3])).imsi.value
    # Five days of RADIUS accounting for the bound SIM (as the accounting server stores it).
    rt.db.executemany(
        "INSERT INTO aaa_sessions (session_key, acct_session_id, client_id, imsi, iccid,"
        " tenant_id, apn, msisdn, framed_ip, serving_plmn, status, started_at, updated_at,"
        " stopped_at, in_octets, out_octets) VALUES (?, ?, 1, ?, ?, 'acme', 'iot', ?,"
        " '10.64.0.7', '00101', 'closed', ?, ?, ?, ?, ?)",
        [(f"s{d}", f"acct-{d}", bound_imsi, acme[3], MSISDN,
          f"2026-11-0{d + 1}T08:00:00+00:00", f"2026-11-0{d + 1}T09:00:00+00:00",
          f"2026-11-0{d + 1}T09:00:00+00:00", 400_000 * (d + 1), 90_000 * (d + 2))
         for d in range(5)])
    acme_imsi = inv.get_sim(Iccid(acme[5])).imsi.value
    event = rt.audit.append(
        actor="detect", action="detect.alert.scan", subject=f"sim:{acme_imsi}",
        outcome="alert", reason="Telnet scan of 220 addresses in 60 s", tenant_id="acme",
        details={"imsi": acme_imsi, "kind": "scan", "summary": "Telnet scan", "evidence": EVIDENCE})
    rt.audit.append(actor="policy", action="policy.remove", subject=f"imsi:{acme_imsi}",
                    outcome="success", reason="destination budget exceeded: SIM suspended",
                    tenant_id="acme", details={"policy": "acme/default"})
    return Fleet(
        acme_admin=rt.tenants.create_key("tenant-admin", "acme admin", "acme").secret,
        acme_viewer=rt.tenants.create_key("tenant-viewer", "acme viewer", "acme").secret,
        globex_admin=rt.tenants.create_key("tenant-admin", "globex admin", "globex").secret,
        operator=rt.tenants.create_key("operator-admin", "noc").secret,
        acme_iccids=acme, globex_iccids=globex, alert_id=event.event_id, group_id=group.id,
    )
