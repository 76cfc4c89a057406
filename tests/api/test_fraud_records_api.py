"""Usage records and the GSMA TAC database over HTTP (operator-admin), with RFC 9457 errors.

Records of an inventory SIM (by ICCID) reach the fraud detectors through the
runtime's one event path: a data-only SIM's burst of calls raises the
phone-like-use alert, listed with its evidence; records of unknown SIMs are
counted; a malformed record names its index; a tenant key is refused. An
imported TAC database makes the TAC check exact; the OpenAPI document
describes both routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.detect import SimEvent
from simtrust.domain import Imei, imsi_digits
from simtrust.runtime import Runtime
from simtrust.subscriber import Iccid, Imsi, OpKind, SimSecrets, SimSpec, SimState, luhn_check_digit

K1 = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC1 = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
IMSI = "001010000000007"
_BODY = "89882" + "0" * 12 + "7"
ICCID = _BODY + str(luhn_check_digit(_BODY))
DAY = 86_400.0
T0 = 1_796_083_200.0  # 2026-12-01T00:00:00Z


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.ephemeral(tmp_path / "home")
    rt.tenants.create_tenant("acme", "Acme")
    rt.subscriber.inventory.add_sim("acme", SimSpec(
        Iccid(ICCID), Imsi(IMSI, 2), SimSecrets(K1, OPC1, OpKind.OPC),
        state=SimState.ACTIVE), actor="test")
    try:
        yield rt
    finally:
        rt.close()


def _operator(rt: Runtime) -> dict[str, str]:
    key = rt.tenants.create_key("operator-admin", "operator")
    return {"Authorization": f"Bearer {key.secret}"}


def _calls(n: int) -> list[dict[str, object]]:
    return [{"iccid": ICCID, "kind": "voice", "direction": "mo", "duration": 90,
             "start": T0 + 3 * DAY + 9 * 3600 + k * 600, "counterpart": "+4915100000000"}
            for k in range(n)]


def test_records_reach_the_detectors_and_alert(rt: Runtime) -> None:
    # three days of data use without calls: the SIM is data-only by its own history
    for day in range(3):
        at = T0 + day * DAY + 3600
        for kind, octets in (("session-start", 0), ("session-stop", 1_000_000)):
            rt.detect.observe_sim(SimEvent(at, imsi_digits(IMSI), kind, session=f"s{day}",
                                           tenant="acme", octets=octets))
            at += 60
    headers = _operator(rt)
    with TestClient(create_app(rt)) as api:
        unknown = {"imsi": "001019999999999", "kind": "sms", "direction": "mo",
                   "start": "2026-12-04T10:00:00Z"}
        got = api.post("/v1/fraud/usage-records", headers=headers,
                       json={"records": [*_calls(5), unknown]})
        assert 202 == got.status_code, got.text
        assert {"records": 6, "queued": 5, "unknown_sims": 1, "alerts": 0} == got.json()
        got = api.post("/v1/fraud/usage-records", headers=headers, json={"records": _calls(1)})
        assert 1 == got.json()["alerts"]
        alerts = api.get("/v1/fraud/alerts", headers=headers,
                         params={"kind": "usage-fraud"}).json()["alerts"]
        assert [(IMSI, "phone_like_use", 6, "own-history")] == [
            (a["imsi"], a["evidence"]["feature"], a["evidence"]["calls"],
             a["evidence"]["data_only_by"]) for a in alerts]
        assert "+4915100000000" not in str(alerts)


def test_bad_records_are_problems_naming_the_record(rt: Runtime) -> None:
    headers = _operator(rt)
    with TestClient(create_app(rt)) as api:
        bad = [*_calls(1), {"iccid": ICCID, "kind": "voice", "direction": "sideways",
                            "start": T0}]
        got = api.post("/v1/fraud/usage-records", headers=headers, json={"records": bad})
        assert 400 == got.status_code
        assert "application/problem+json" == got.headers["content-type"]
        assert got.json()["detail"].startswith("records[1]: 'direction'")
        empty = api.post("/v1/fraud/usage-records", headers=headers, json={"records": []})
        assert 422 == empty.status_code
        assert "application/problem+json" == empty.headers["content-type"]
        key = rt.tenants.create_key("tenant-admin", "acme", tenant_id="acme")
        refused = api.post("/v1/fraud/usage-records", json={"records": _calls(1)},
                           headers={"Authorization": f"Bearer {key.secret}"})
        assert 403 == refused.status_code


EXPORT = "TAC,Marketing Name,Manufacturer (or) Applicant\n35328611,Module X,Example Ltd\n"


def test_a_tac_database_is_imported_and_checked(rt: Runtime) -> None:
    headers = _operator(rt)
    with TestClient(create_app(rt)) as api:
        assert {"imported": None} == api.get("/v1/fraud/tac-database", headers=headers).json()
        before = api.get("/v1/fraud/tac-database/35328612", headers=headers).json()
        assert (True, None) == (before["allocated"], before["reason"])
        got = api.put("/v1/fraud/tac-database", headers={**headers, "content-type": "text/csv"},
                      params={"source": "GSMA export 2026-11"}, content=EXPORT)
        assert 200 == got.status_code, got.text
        assert (1, "GSMA export 2026-11") == (got.json()["count"], got.json()["source"])
        after = api.get("/v1/fraud/tac-database/35328612", headers=headers).json()
        assert (False, "unallocated-tac") == (after["allocated"], after["reason"])
        known = api.get("/v1/fraud/tac-database/35328611", headers=headers).json()
        assert "Module X" == known["model"]["name"]
        assert "unallocated-rbi" == api.get("/v1/fraud/tac-database/12345678",
                                            headers=headers).json()["reason"]
        for path in ("/v1/fraud/tac-database/1234", "/v1/fraud/tac-database/abcdefgh"):
            assert 400 == api.get(path, headers=headers).status_code
        bad = api.put("/v1/fraud/tac-database", headers=headers, content="TAC\n12\n")
        assert 400 == bad.status_code
        assert "line 2" in bad.json()["detail"]
        assert 400 == api.put("/v1/fraud/tac-database", headers=headers,
                              content=b"TAC\n\xff\xfe\n").status_code
        # the detector of this process checks with the imported database at once
        imei = str(Imei.from_tac_snr("35328612", "000001"))
        found = rt.detect.observe_sim(SimEvent(T0, imsi_digits(IMSI), "auth", imei=imei))
        assert [("tac_allocated", "unallocated-tac")] == [
            (a.evidence["feature"], a.evidence["reason"]) for a in found]


def test_the_openapi_document_describes_the_routes(rt: Runtime) -> None:
    with TestClient(create_app(rt)) as api:
        doc = api.get("/openapi.json").json()
    post = doc["paths"]["/v1/fraud/usage-records"]["post"]
    assert "400" in post["responses"]
    put = doc["paths"]["/v1/fraud/tac-database"]["put"]
    assert "text/csv" in put["requestBody"]["content"]
    assert "/v1/fraud/tac-database/{tac}" in doc["paths"]
