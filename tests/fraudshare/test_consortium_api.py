"""The consortium key membership protocol over HTTP and the CLI, three operators' runtimes.

Each operator is a runtime with its own store and ledger node; messages are
relayed as the consortium mesh would. A coordinates: its rotation reaches B
and C, whose platform DIDs carry an X25519 keyAgreement key added on the
ledger; removing C leaves C without the new epoch while B applies it and A's
reports under it reach B only. Errors are problem details; no key is in a
response, the ledger or the CLI's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.fraudshare import key_agreement_of
from simtrust.runtime import Runtime
from tests.api.test_fraud_api import _runtime
from tests.detect.test_fraud_cli_sharing import _cli

STOLEN = "490154203237518"


def _relay(src: Runtime, *dsts: Runtime) -> None:
    for row in src.ledger.finalized_since(0, 1000):
        mid = bytes.fromhex(row["message_id"])
        for dst in dsts:
            if not dst.ledger.holds(mid):
                dst.ledger.submit(src.ledger.get_raw(mid))


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[list[Runtime]]:
    a = _runtime(tmp_path / "a", 1)
    b = _runtime(tmp_path / "b", 2, genesis=a.ledger.genesis)
    c = _runtime(tmp_path / "c", 3, genesis=a.ledger.genesis)
    ops = [a, b, c]
    dids = [rt.identity.issuer().controller for rt in ops]
    path = tmp_path / "consortium.json"
    path.write_text(json.dumps({"members": dids, "coordinator": dids[0], "grace_days": 7}),
                    "utf-8")
    for rt in ops:
        rt.settings = replace(rt.settings, fraud_consortium=str(path))
        assert rt.fraud_intel.keys.epochs() == []  # no key before the first rotation
    for rt in ops:  # DIDs and their keyAgreement keys reach every node
        _relay(rt, *[o for o in ops if o is not rt])
    try:
        yield ops
    finally:
        for rt in ops:
            rt.close()


def _client(rt: Runtime) -> tuple[TestClient, dict[str, str]]:
    key = rt.tenants.create_key("operator-admin", "operator")
    return TestClient(create_app(rt)), {"Authorization": f"Bearer {key.secret}"}


def test_rotate_remove_and_refuse_over_http(trio: list[Runtime]) -> None:
    a, b, c = trio
    (api_a, ha), (api_b, hb), (api_c, hc) = (_client(rt) for rt in trio)
    with api_a, api_b, api_c:
        # the platform DID lists its X25519 key under keyAgreement, resolvable by A
        vm, _ = key_agreement_of(a.identity.resolver, b.identity.issuer().controller)
        assert vm.endswith("#key-agreement-1")
        made = api_a.post("/v1/fraud/consortium/rotations", headers=ha, json={})
        assert made.status_code == 201, made.text
        first = made.json()
        assert first["outcome"] == "applied"
        _relay(a, b, c)
        for api, h in ((api_b, hb), (api_c, hc)):
            got = api.get(f"/v1/fraud/consortium/rotations/{first['message_id']}", headers=h)
            assert got.json() == {"message_id": first["message_id"], "outcome": "applied",
                                  "kind": "rotation", "reason": None}
            assert api.get("/v1/fraud/consortium", headers=h).json()["current"] == first["epoch"]
        # B reports a stolen device under the new epoch; C holds it
        sent = api_b.post("/v1/fraud/reports", headers=hb, json={
            "indicator": "stolen-equipment", "severity": "critical", "imeis": [STOLEN]})
        assert sent.status_code == 201, sent.text
        _relay(b, a, c)
        assert [sent.json()["id"]] == [
            r["id"] for r in api_c.get("/v1/fraud/reports", headers=hc).json()["reports"]]

        # C is removed: the new epoch is not sealed to it
        c_did = c.identity.issuer().controller
        second = api_a.post("/v1/fraud/consortium/rotations", headers=ha,
                            json={"remove": [c_did], "epoch": "after-c"}).json()
        assert c_did not in second["consortium"]["members"]
        _relay(a, b, c)
        assert api_b.get("/v1/fraud/consortium", headers=hb).json()["current"] == "after-c"
        refused = api_c.get(f"/v1/fraud/consortium/rotations/{second['message_id']}",
                            headers=hc).json()
        assert (refused["outcome"], refused["reason"]) == ("refused", "not-a-recipient")
        state_c = api_c.get("/v1/fraud/consortium", headers=hc).json()
        assert state_c["current"] == first["epoch"]
        # A's report under the new epoch reaches B, not C
        later = api_a.post("/v1/fraud/reports", headers=ha, json={
            "indicator": "stolen-equipment", "severity": "critical", "imeis": [STOLEN]}).json()
        _relay(a, b, c)
        assert later["id"] in {r["id"] for r in
                               api_b.get("/v1/fraud/reports", headers=hb).json()["reports"]}
        assert later["id"] not in {r["id"] for r in
                                   api_c.get("/v1/fraud/reports", headers=hc).json()["reports"]}
        # B states the grace period of the superseded epoch
        epochs = {e["epoch"]: e["expires"] for e in
                  api_b.get("/v1/fraud/consortium", headers=hb).json()["epochs"]}
        assert epochs["after-c"] is None
        assert epochs[first["epoch"]] is not None

        # only the coordinator rotates; bad input and reused epochs are problems
        for api, h, body, code in ((api_b, hb, {}, 403),
                                   (api_a, ha, {"epoch": "after-c"}, 409),
                                   (api_a, ha, {"epoch": "no spaces"}, 422),
                                   (api_a, ha, {"add": ["did:key:zNothing"]}, 400)):
            got = api.post("/v1/fraud/consortium/rotations", headers=h, json=body)
            assert got.status_code == code, got.text
            assert got.headers["content-type"] == "application/problem+json"
        assert api_a.get("/v1/fraud/consortium/rotations/zz", headers=ha).status_code == 400
        assert api_a.get("/v1/fraud/consortium/rotations/00", headers=ha).status_code == 404

        # no key in any answer or on the ledger
        secrets = [b.fraud_intel.keys.get(e)._secret.hex()
                   for e in b.fraud_intel.keys.epochs()]
        texts = [api.get("/v1/fraud/consortium", headers=h).text
                 for api, h in ((api_a, ha), (api_b, hb), (api_c, hc))]
        texts += [json.dumps(first), json.dumps(second)]
        raws = [a.ledger.get_raw(bytes.fromhex(r["message_id"]))
                for r in a.ledger.finalized_since(0, 1000)]
        for secret in secrets:
            assert all(secret not in t for t in texts)
            assert all(bytes.fromhex(secret) not in raw for raw in raws)


def test_cli_rotate_accept_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    assert _cli(capsys, "init", "--json")[0] == 0
    rt = Runtime.open()
    try:
        me = rt.identity.issuer().controller
    finally:
        rt.close()
    path = tmp_path / "consortium.json"
    path.write_text(json.dumps({"members": [], "coordinator": me}), "utf-8")
    monkeypatch.setenv("SIMTRUST_FRAUD_CONSORTIUM", str(path))
    partner = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    code, out, err = _cli(capsys, "fraud", "consortium", "rotate", "--add", partner,
                          "--epoch", "e-1", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert (made["epoch"], made["outcome"]) == ("e-1", "applied")
    assert made["consortium"]["members"] == sorted([me, partner])
    code, out, err = _cli(capsys, "fraud", "consortium", "accept", made["message_id"], "--json")
    assert code == 0, err
    assert json.loads(out)["outcome"] == "applied"
    code, out, _ = _cli(capsys, "fraud", "consortium", "show")
    assert "current epoch e-1" in out
    assert partner in out
    # bad input: one line, exit 2; a refused or unknown message: exit 1
    for args, want in ((("rotate", "--add", "not-a-did"), 2), (("accept", "zz"), 2),
                       (("rotate", "--epoch", "e-1"), 1), (("accept", "00"), 1)):
        code, _, err = _cli(capsys, "fraud", "consortium", *args)
        assert (code, len(err.strip().splitlines())) == (want, 1), (args, err)
    rt = Runtime.open()
    try:
        secret = rt.fraud_intel.keys.get("e-1")._secret.hex()
    finally:
        rt.close()
    assert secret not in out
