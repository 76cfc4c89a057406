"""A committee change on real processes: four validators on 127.0.0.1 switch to epoch 1.

Each validator is its own ``simtrust node run`` process. The change (drop
validator 3, validator 0 gets weight 2) is built, signed by validators
0–2 and submitted with ``simtrust node committee-change``; the three that
stay switch at the commit that finalizes it, keep finalizing in one order,
and validator 3 is disconnected.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simtrust.ledger import Ed25519Signer
from simtrust.ledger.net import (
    ConsensusParams,
    NodeClient,
    NodeInfo,
    NodeKeys,
    Testnet,
    free_ports,
)

from .conftest import make_messages, wait_sync

pytestmark = pytest.mark.slow


def test_processes_switch_to_a_new_committee_and_keep_finalizing(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "testnet", 4,
                         consensus=ConsensusParams(leader_timeout_ms=400, min_round_interval_ms=50))
    genesis = json.loads(net.genesis_file.read_text())
    kept = genesis["validators"][:3]
    kept[0]["weight"] = 2
    members = tmp_path / "members.json"
    members.write_text(json.dumps({"epoch": 1, "validators": kept}))
    signer = Ed25519Signer.generate()
    clients: list[NodeClient] = []
    try:
        net.up(timeout=300)
        clients = [net.client(i) for i in range(4)]
        first = clients[0].submit(make_messages(net.network, signer, clients[0].parents(), 50))
        assert {"accepted"} == {r["status"] for r in first}

        cmd = [sys.executable, "-m", "simtrust", "node", "committee-change",
               "--genesis", str(net.genesis_file), "--members", str(members),
               "--out", str(tmp_path / "change.json"),
               "--submit", net.nodes[1].api, "--api-key-file", str(net.nodes[1].api_key_file),
               "--json"]
        for i in range(3):
            cmd += ["--key", str(net.nodes[i].key_file)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert 0 == done.returncode, done.stderr
        result = json.loads(done.stdout)
        assert result["supermajority"]
        assert [0, 1, 2] == result["signers"]
        assert "accepted" == result["submitted"]["status"]
        change_id = bytes.fromhex(result["submitted"]["message_id"])

        wait_sync(lambda: all(c.status()["epoch"] == 1 for c in clients[:3]), "epoch 1")
        wait_sync(lambda: all(sorted(c.status()["links"]) == [i for i in range(3) if i != j]
                          for j, c in enumerate(clients[:3])), "validator 3 cut off")
        base = max(int(c.status()["finalized"]) for c in clients[:3])
        more = clients[2].submit(make_messages(net.network, signer, clients[2].parents(), 60))
        assert {"accepted"} == {r["status"] for r in more}
        wait_sync(lambda: all(int(c.status()["finalized"]) >= base + 60 for c in clients[:3]),
                  "finalization in epoch 1")
        wait_sync(lambda: len({int(c.status()["finalized"]) for c in clients[:3]}) == 1,
                  "the three to agree")
        orders = [c.finalized_order() for c in clients[:3]]
        assert orders[0] == orders[1] == orders[2]
        assert change_id in orders[0]
        assert {bytes.fromhex(r["message_id"]) for r in more} <= set(orders[0])
        assert [] == clients[3].status()["links"]
    finally:
        for c in clients:
            c.close()
        net.down()
        assert not any(net.running(i) for i in range(4))


def test_a_fifth_validator_process_joins_by_committee_change(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "testnet", 4,
                         consensus=ConsensusParams(leader_timeout_ms=400, min_round_interval_ms=50))
    genesis = json.loads(net.genesis_file.read_text())
    fifth_dir = tmp_path / "node-4"
    fifth_dir.mkdir()
    keys = NodeKeys.generate(4)
    keys.save(fifth_dir / "key.json")
    p2p, api = free_ports(2)
    members = tmp_path / "members.json"
    members.write_text(json.dumps({"epoch": 1, "validators": [*genesis["validators"], {
        "id": 4, "name": "validator-4", "public_key": keys.public_key.hex(),
        "node_key": keys.node_key.hex(), "weight": 1, "p2p": f"127.0.0.1:{p2p}"}]}))
    info = NodeInfo(4, f"127.0.0.1:{api}", f"127.0.0.1:{p2p}", fifth_dir / "home",
                    fifth_dir / "key.json", fifth_dir / "api-key", fifth_dir / "node.log")
    signer = Ed25519Signer.generate()
    clients: list[NodeClient] = []
    proc: subprocess.Popen[bytes] | None = None
    try:
        net.up(timeout=300)
        clients = [net.client(i) for i in range(4)]
        cmd = [sys.executable, "-m", "simtrust", "node", "committee-change",
               "--genesis", str(net.genesis_file), "--members", str(members),
               "--out", str(tmp_path / "change.json"),
               "--submit", net.nodes[0].api, "--api-key-file", str(net.nodes[0].api_key_file),
               "--json", "--key", str(net.nodes[0].key_file), "--key", str(net.nodes[2].key_file),
               "--key", str(net.nodes[3].key_file)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert 0 == done.returncode, done.stderr
        assert "accepted" == json.loads(done.stdout)["submitted"]["status"]
        wait_sync(lambda: all(c.status()["epoch"] == 1 for c in clients), "epoch 1")

        with info.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "simtrust", "node", "run", "--genesis",
                 str(net.genesis_file), "--key", str(info.key_file), "--home", str(info.home),
                 "--api", info.api, "--api-key-file", str(info.api_key_file),
                 "--join", str(tmp_path / "change.json")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_sync(lambda: info.api_key_file.exists()
                  and bool(info.api_key_file.read_text().strip()), "the fifth node's API key")
        clients.append(NodeClient(info))
        wait_sync(clients[4].healthy, "the fifth node's API")
        wait_sync(lambda: clients[4].status()["epoch"] == 1, "the fifth node in epoch 1")
        assert 4 == clients[4].status()["validator"]
        more = clients[4].submit(make_messages(net.network, signer, clients[4].parents(), 40))
        assert {"accepted"} == {r["status"] for r in more}
        ids = {bytes.fromhex(r["message_id"]) for r in more}
        wait_sync(lambda: all(ids <= set(c.finalized_order()) for c in clients),
                  "the fifth node's messages final everywhere")
        wait_sync(lambda: len({int(c.status()["finalized"]) for c in clients}) == 1,
                  "all five to agree")
        orders = [c.finalized_order() for c in clients]
        assert all(o == orders[0] for o in orders)
        assert sorted(clients[0].status()["links"]) == [1, 2, 3, 4]
    finally:
        for c in clients:
            c.close()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        net.down()
        assert not any(net.running(i) for i in range(4))
