"""Fraud reports shared over the real consortium network: four ``simtrust node run`` processes.

Validators 0, 1 and 2 are operators A, B and C (each its own process, store
and issuer DID, with the consortium file in its settings); validator 3 only
validates. The members' DIDs are learnt from the running nodes and written to
the consortium file, which each node picks up without a restart. B publishes
a cloned-SIM report naming A's subscriber through its HTTP API; the ledger
network carries it (nothing is relayed by the test); A matches it by keyed
hash and raises a ``shared-report`` alert; C holds the report but learns
nothing and raises nothing; a revocation by C of B's report is refused.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from simtrust.config import load_settings
from simtrust.ledger.net import ConsensusParams, Testnet
from tests.ledger.net.conftest import wait_sync
from tests.subscriber.conftest import imsi, seed_home

pytestmark = pytest.mark.slow

KEYS = {"e1": "cd" * 32}


def _write(consortium: Path, members: list[str]) -> None:
    tmp = consortium.with_suffix(".tmp")
    tmp.write_text(json.dumps({"members": members, "current": "e1", "keys": KEYS}), "utf-8")
    tmp.replace(consortium)


def test_a_report_travels_the_consortium_network(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "net", 4,
                         consensus=ConsensusParams(leader_timeout_ms=400, min_round_interval_ms=50))
    consortium = tmp_path / "consortium.json"
    _write(consortium, [])
    for node in net.nodes[:3]:
        node.home.mkdir(parents=True, exist_ok=True)
        (node.home / "simtrust.toml").write_text(f'fraud_consortium = "{consortium}"\n', "utf-8")
    # operator A's subscriber, in A's inventory before its node starts
    home = net.nodes[0].home
    seed_home(home, [1], dataclasses.replace(load_settings(env={}, home=home),
                                             network_id=net.network))
    sim = imsi(1).value
    try:
        net.up(timeout=300)
        http = [httpx.Client(base_url=f"http://{n.api}", timeout=300, headers={
            "Authorization": f"Bearer {n.api_key_file.read_text().strip()}"}) for n in net.nodes]

        def status(i: int) -> dict[str, Any]:
            answer = http[i].get("/v1/fraud/status")
            assert 200 == answer.status_code, answer.text
            sharing: dict[str, Any] = answer.json()["sharing"]
            return sharing

        # each operator's issuer DID is created on the consortium ledger at first use: the
        # first request submits it, a later one finds it finalized
        def issuer_ready(i: int) -> bool:
            return 200 == http[i].get("/v1/fraud/status").status_code

        for i in range(3):
            wait_sync(lambda i=i: issuer_ready(i), f"operator {i}'s issuer DID")
        members = [status(i)["me"] for i in range(3)]
        assert len(set(members)) == 3
        _write(consortium, members)
        wait_sync(lambda: all(status(i)["members"] == 3 for i in range(3)), "the new members")

        published = http[1].post("/v1/fraud/reports", json={
            "indicator": "cloned-sim", "severity": "high", "imsis": [sim],
            "evidence": {"feature": "serving_network_alternation"}})
        assert 201 == published.status_code, published.text
        report = published.json()["id"]

        def alerts(i: int) -> list[dict[str, Any]]:
            status(i)  # catches up with the ledger
            answer = http[i].get("/v1/fraud/alerts", params={"kind": "shared-report"})
            assert 200 == answer.status_code, answer.text
            found: list[dict[str, Any]] = answer.json()["alerts"]
            return found

        wait_sync(lambda: bool(alerts(0)), "A's shared-report alert")
        wait_sync(lambda: status(2)["reports"] == 1, "C holding the report")
        [alert] = alerts(0)
        assert sim in json.dumps(alert)
        assert report in json.dumps(alert)
        assert [] == alerts(2)  # C does not know the SIM
        seen = http[2].get(f"/v1/fraud/reports/{report}").json()
        assert sim not in json.dumps(seen)  # keyed hashes only
        refused = http[2].post("/v1/fraud/revocations", json={"report": report})
        assert refused.status_code in (403, 422), refused.text
        for client in http:
            client.close()
    finally:
        net.down()
