"""Fraud over HTTP between two operators, each a runtime with its own store and ledger node.

Operator B (visited network) publishes a report of a SIM of operator A from
the values it holds; the ledger messages are relayed to A's node as a peer
would; A's API lists the report, its ``shared-report`` alert (with the
evidence) is in A's alerts, A confirms it and B's reputation rises. A cannot
revoke B's report (403); B can. Status carries the serving process's counters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.detect import SimEvent
from simtrust.domain import imsi_digits
from simtrust.identity import decode_status_list, status_bit, verify_credential
from simtrust.ledger import Ed25519Signer, LedgerConfig, LedgerNode
from simtrust.runtime import Runtime
from simtrust.subscriber import Iccid, Imsi, OpKind, SimSecrets, SimSpec, SimState, luhn_check_digit

K1 = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC1 = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
A_IMSI = "001010000000007"
STOLEN = "490154203237518"


def _runtime(home: Path, seed: int, genesis: Any = None) -> Runtime:
    rt = Runtime.ephemeral(home)
    rt.ledger = LedgerNode(rt.db, Ed25519Signer(bytes([seed]) * 32),
                           config=LedgerConfig(network=rt.settings.network_id),
                           genesis=genesis, clock=rt.clock)
    return rt


def _relay(src: Runtime, dst: Runtime) -> None:
    """Hand every message of ``src`` to ``dst`` (what the consortium mesh does)."""
    for row in src.ledger.finalized_since(0, 1000):
        mid = bytes.fromhex(row["message_id"])
        if not dst.ledger.holds(mid):
            dst.ledger.submit(src.ledger.get_raw(mid))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    a = _runtime(tmp_path / "a", 1)
    b = _runtime(tmp_path / "b", 2, genesis=a.ledger.genesis)
    dids = [a.identity.issuer().controller, b.identity.issuer().controller]
    _relay(a, b)
    _relay(b, a)
    path = tmp_path / "consortium.json"
    path.write_text(json.dumps({"members": dids, "current": "e1",
                                "keys": {"e1": "ab" * 32}}), "utf-8")
    for rt in (a, b):
        rt.settings = replace(rt.settings, fraud_consortium=str(path))
    a.tenants.create_tenant("acme", "Acme")
    body = "89882" + "0" * 12 + "7"
    a.subscriber.inventory.add_sim("acme", SimSpec(
        Iccid(body + str(luhn_check_digit(body))), Imsi(A_IMSI, 2),
        SimSecrets(K1, OPC1, OpKind.OPC), state=SimState.ACTIVE), actor="test")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _client(rt: Runtime) -> tuple[TestClient, dict[str, str]]:
    key = rt.tenants.create_key("operator-admin", "operator")
    return TestClient(create_app(rt)), {"Authorization": f"Bearer {key.secret}"}


def test_two_operators_exchange_a_report_and_act_on_it(pair: tuple[Runtime, Runtime]) -> None:
    a, b = pair
    api_a, ha = _client(a)
    api_b, hb = _client(b)
    with api_a, api_b:
        made = api_b.post("/v1/fraud/reports", headers=hb, json={
            "indicator": "cloned-sim", "severity": "high", "imsis": [A_IMSI],
            "evidence": {"feature": "serving_network_alternation"}})
        assert 201 == made.status_code, made.text
        assert "applied" == made.json()["outcome"]
        report_id = made.json()["id"]
        _relay(b, a)
        listed = api_a.get("/v1/fraud/reports", headers=ha).json()["reports"]
        assert [report_id] == [r["id"] for r in listed]
        assert {"imsi": 1, "imei": 0} == listed[0]["identifiers"]
        # A matched its own SIM: the alert is in A's audit-backed alert list, with evidence
        alerts = api_a.get("/v1/fraud/alerts", headers=ha,
                           params={"kind": "shared-report"}).json()["alerts"]
        assert [(A_IMSI, report_id)] == [(x["imsi"], x["evidence"]["report"]) for x in alerts]
        one = api_a.get(f"/v1/fraud/alerts/{alerts[0]['event_id']}", headers=ha).json()
        assert b.identity.issuer().controller == one["evidence"]["reporter"]
        # A confirms; B's reputation as A sees it rises
        confirmed = api_a.post("/v1/fraud/confirmations", headers=ha, json={"report": report_id})
        assert 201 == confirmed.status_code, confirmed.text
        reporter = b.identity.issuer().controller
        score = api_a.get(f"/v1/fraud/reporters/{reporter}", headers=ha).json()
        assert (1, 0.667) == (score["confirmed"], score["score"])
        # only the reporter revokes
        refused = api_a.post("/v1/fraud/revocations", headers=ha,
                             json={"report": report_id, "reason": "not mine"})
        assert 403 == refused.status_code
        assert "application/problem+json" == refused.headers["content-type"]
        _relay(a, b)
        revoked = api_b.post("/v1/fraud/revocations", headers=hb,
                             json={"report": report_id, "reason": "wrong SIM"})
        assert 201 == revoked.status_code, revoked.text
        _relay(b, a)
        seen = api_a.get(f"/v1/fraud/reports/{report_id}", headers=ha).json()
        list_url = seen["status"]["statusListCredential"]
        assert seen["revoked"] == f"status list {list_url}"
        # the list is served at its URL by the reporter (Bitstring Status List §2.2), the
        # bit set; anyone verifies it with the reporter's DID
        path = list_url.split("/credentials/status/", 1)[1]
        served = api_b.get(f"/credentials/status/{path}")
        assert 200 == served.status_code, served.text
        listed = served.json()
        assert (list_url, reporter) == (listed["id"], listed["issuer"])
        index = int(seen["status"]["statusListIndex"])
        assert status_bit(decode_status_list(listed["credentialSubject"]["encodedList"]), index)
        verify_credential(listed, resolver=a.identity.resolver, now=a.clock())
        # A's SIM alert is withdrawn through the alert stack (and so audited), and B's
        # reputation falls back
        alerts = api_a.get("/v1/fraud/alerts", headers=ha,
                           params={"kind": "shared-report"}).json()["alerts"]
        withdrawn = [x for x in alerts if x["evidence"].get("withdrawn")]
        assert [(A_IMSI, report_id)] == [(x["imsi"], x["evidence"]["report"]) for x in withdrawn]
        score = api_a.get(f"/v1/fraud/reporters/{reporter}", headers=ha).json()
        assert (0, 1, 0.333) == (score["confirmed"], score["revoked"], score["score"])


def test_a_report_from_an_alert_and_the_shared_blocklist(pair: tuple[Runtime, Runtime]) -> None:
    a, b = pair
    api_a, ha = _client(a)
    api_b, hb = _client(b)
    with api_a, api_b:
        b.fraud_intel  # noqa: B018 - built before traffic, as `simtrust serve` does
        b.detect.observe_sim(SimEvent(at=1_000.0, imsi=imsi_digits("901700000000001"),
                                      kind="location", plmn="90170", imei="490154203237517"))
        [alert] = api_b.get("/v1/fraud/alerts", headers=hb).json()["alerts"]
        assert "imei_valid" == alert["evidence"]["feature"]
        made = api_b.post("/v1/fraud/reports", headers=hb,
                          json={"alert": alert["event_id"], "severity": "medium"})
        assert 201 == made.status_code, made.text
        _relay(b, a)
        a.fraud_intel.catch_up(a.ledger)
        [report] = api_a.get("/v1/fraud/reports", headers=ha).json()["reports"]
        assert ("invalid-equipment", {"imsi": 1, "imei": 1}) == (
            report["indicator"], report["identifiers"])
        # a stolen device reported by B is flagged by A's detector (by keyed hash) on A's SIM
        stolen = api_b.post("/v1/fraud/reports", headers=hb, json={
            "indicator": "stolen-equipment", "severity": "high", "imeis": [STOLEN]})
        assert 201 == stolen.status_code, stolen.text
        _relay(b, a)
        a.fraud_intel.catch_up(a.ledger)
        found = a.detect.observe_sim(SimEvent(at=2_000.0, imsi=imsi_digits(A_IMSI),
                                              kind="location", plmn="00101",
                                              imei=STOLEN[:14] + "03"))  # its IMEISV
        assert [("imei_shared_blocklist", stolen.json()["id"])] == [
            (x.evidence["feature"], x.evidence.get("report")) for x in found]


def test_bad_requests_and_status(pair: tuple[Runtime, Runtime]) -> None:
    a, _ = pair
    api_a, ha = _client(a)
    with api_a:
        bad = api_a.post("/v1/fraud/reports", headers=ha,
                         json={"indicator": "nonsense", "imsis": [A_IMSI]})
        assert 400 == bad.status_code
        assert "application/problem+json" == bad.headers["content-type"]
        assert 400 == api_a.get("/v1/fraud/alerts", headers=ha,
                                params={"kind": "scan"}).status_code
        assert 404 == api_a.get("/v1/fraud/reports/urn:uuid:none", headers=ha).status_code
        assert 404 == api_a.post("/v1/fraud/confirmations", headers=ha,
                                 json={"report": "urn:uuid:none"}).status_code
        a.publish_fraud_status({"diameter": {"admitted": 3, "refused": {"tac": 2},
                                             "buckets": {"tac": 1}}})
        got = api_a.get("/v1/fraud/status", headers=ha).json()
        assert {"tac": 2} == got["serving"]["storm"]["diameter"]["refused"]
        assert 1 == got["sharing"]["members"] - 1


def test_sharing_not_configured_is_a_conflict(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path / "solo")
    try:
        api, headers = _client(rt)
        with api:
            got = api.get("/v1/fraud/reports", headers=headers)
            assert 409 == got.status_code
            assert {"serving": None, "sharing": None} == api.get(
                "/v1/fraud/status", headers=headers).json()
    finally:
        rt.close()


def test_attach_decisions_feed_the_fraud_detectors(tmp_path: Path) -> None:
    """Attaches through the internal API are location events: London, then Chicago
    a moment later, is impossible travel, listed with its evidence."""
    rt = Runtime.ephemeral(tmp_path / "solo")
    try:
        rt.tenants.create_tenant("acme", "Acme")
        body = "89882" + "0" * 12 + "7"
        rt.subscriber.inventory.add_sim("acme", SimSpec(
            Iccid(body + str(luhn_check_digit(body))), Imsi(A_IMSI, 2),
            SimSecrets(K1, OPC1, OpKind.OPC), state=SimState.ACTIVE), actor="test")
        api, headers = _client(rt)
        with api:
            for plmn in ("23415", "310410"):
                got = api.post("/v1/attach/decisions", headers=headers, json={
                    "imsi": A_IMSI, "imei": STOLEN, "serving_plmn": plmn})
                assert 200 == got.status_code, got.text
            alerts = api.get("/v1/fraud/alerts", headers=headers,
                             params={"imsi": A_IMSI}).json()["alerts"]
        assert [("impossible-travel", "acme")] == [(a["kind"], a["tenant"]) for a in alerts]
        assert ["23415", "310410"] == [alerts[0]["evidence"]["from"]["plmn"],
                                       alerts[0]["evidence"]["to"]["plmn"]]
    finally:
        rt.close()


def test_a_confirmed_verdict_on_a_partners_report_confirms_it(
        pair: tuple[Runtime, Runtime]) -> None:
    """A's analyst confirms the case of a shared-report alert: the verdict is audited
    and the partner's report gets A's confirmation on the ledger."""
    a, b = pair
    api_a, ha = _client(a)
    api_b, hb = _client(b)
    viewer = a.tenants.create_key("tenant-viewer", "viewer", tenant_id="acme")
    with api_a, api_b:
        made = api_b.post("/v1/fraud/reports", headers=hb, json={
            "indicator": "cloned-sim", "severity": "high", "imsis": [A_IMSI]})
        assert 201 == made.status_code, made.text
        _relay(b, a)
        a.fraud_intel.catch_up(a.ledger)
        [alert] = api_a.get("/v1/fraud/alerts", headers=ha).json()["alerts"]
        assert {"state": "open"} == alert["case"]
        path = f"/v1/fraud/alerts/{alert['event_id']}/verdict"
        refused = api_a.post(path, headers={"Authorization": f"Bearer {viewer.secret}"},
                             json={"verdict": "confirmed"})
        assert 403 == refused.status_code
        assert 400 == api_a.post(path, headers=ha, json={"verdict": "maybe"}).status_code
        done = api_a.post(path, headers=ha, json={"verdict": "confirmed", "note": "SIM seized"})
        assert 201 == done.status_code, done.text
        assert "applied" == done.json()["confirmation"]["outcome"]
        one = api_a.get(f"/v1/fraud/alerts/{alert['event_id']}", headers=ha).json()
        assert ("confirmed", "SIM seized") == (one["case"]["state"], one["case"]["note"])
        _relay(a, b)
        reporter = b.identity.issuer().controller
        assert 1 == api_b.get(f"/v1/fraud/reporters/{reporter}", headers=hb).json()["confirmed"]
