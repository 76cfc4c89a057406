"""Contracts on four validator processes (issue 15 item 1): each validator is its own
``simtrust node run``; contract payloads submitted to different validators finalize in
one order, and every validator's API answers the identical contract state and history,
the stale transition rejected on all four."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.ledger.net import ConsensusParams, NodeClient, Testnet
from simtrust.settlement import create_payload, state_hash, transition_payload
from tests.ledger.net.conftest import wait_sync
from tests.settlement.test_contracts import CODE, HOME, INITIAL, VISITED

pytestmark = pytest.mark.slow


def _post(client: NodeClient, payload: bytes) -> dict[str, Any]:
    answer = client.http.post("/v1/settlement/contracts", json={"payload": json.loads(payload)})
    assert 200 == answer.status_code, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _history(client: NodeClient, contract: str) -> list[dict[str, Any]] | None:
    answer = client.http.get(f"/v1/settlement/contracts/{contract}/history")
    if answer.status_code == 404:
        return None
    assert 200 == answer.status_code, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def test_four_validator_processes_hold_the_same_contract_state(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "testnet", 4,
                         consensus=ConsensusParams(leader_timeout_ms=400, min_round_interval_ms=50))
    clients: list[NodeClient] = []
    try:
        net.up(timeout=300)
        clients = [net.client(i) for i in range(4)]
        created = _post(clients[0], create_payload("ra-net", CODE, INITIAL))
        assert created["status"] in ("applied", "pending")
        wait_sync(lambda: all(_history(c, "ra-net") for c in clients), "contract created")
        first = state_hash("ra-net", CODE, 0, INITIAL)
        # Two validators receive transitions consuming the same state: one wins.
        _post(clients[1], transition_payload("ra-net", first, {"action": "sign"}, [HOME]))
        _post(clients[2], transition_payload("ra-net", first, {"action": "sign"}, [VISITED]))
        wait_sync(lambda: all(len(_history(c, "ra-net") or []) == 3 for c in clients),
                  "both transitions finalized everywhere")
        histories = [_history(c, "ra-net") for c in clients]
        assert all(h == histories[0] for h in histories)
        assert histories[0] is not None
        assert ["applied", "applied", "rejected"] == [h["status"] for h in histories[0]]
        assert "stale-state" == histories[0][2]["reason"]
        states = [c.http.get("/v1/settlement/contracts/ra-net").json() for c in clients]
        assert all(s == states[0] for s in states)
        assert 1 == states[0]["seq"]
        # The party that lost signs again on the new state, through the fourth validator.
        _post(clients[3], transition_payload("ra-net", states[0]["state_hash"],
                                             {"action": "sign"},
                                             [VISITED if states[0]["state"]["signed"] != [
                                                 INITIAL["parties"]["visited"]] else HOME]))
        wait_sync(lambda: all(
            c.http.get("/v1/settlement/contracts/ra-net").json()["state"]["status"] == "active"
            for c in clients), "agreement active on every validator")
        finals = [c.http.get("/v1/settlement/contracts/ra-net").json() for c in clients]
        assert all(f == finals[0] for f in finals)
    finally:
        for client in clients:
            client.close()
        net.down()
