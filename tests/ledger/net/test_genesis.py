"""Genesis and node key files: format, validation, pinning, secrets kept out of reprs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from simtrust.errors import InvalidInput
from simtrust.ledger.net import NetworkGenesis, NodeKeys, generate_local_network


def test_generated_genesis_round_trips_and_its_id_is_stable(tmp_path: Path) -> None:
    genesis, _keys = generate_local_network(4, tmp_path)
    loaded = NetworkGenesis.load(tmp_path / "genesis.json")
    assert genesis == loaded
    assert genesis.id == loaded.id
    assert 4 == len(loaded.committee())
    assert [f"127.0.0.1:{v.p2p.split(':')[1]}" for v in loaded.validators] == [
        v.p2p for v in loaded.validators
    ]
    # The ledger genesis allocates the whole supply to the validators' own keys.
    outputs = loaded.ledger_genesis().outputs
    assert [v.public_key for v in loaded.validators] == [o.owner for o in outputs]


def test_token_issuers_are_part_of_genesis_only_when_named(tmp_path: Path) -> None:
    issuer = bytes(range(32))
    generate_local_network(2, tmp_path / "a", token_issuers=[issuer])
    loaded = NetworkGenesis.load(tmp_path / "a" / "genesis.json")
    assert (issuer,) == loaded.token_issuers == loaded.ledger_genesis().token_issuers
    assert [issuer.hex()] == json.loads((tmp_path / "a" / "genesis.json").read_text())[
        "token_issuers"]
    plain, _ = generate_local_network(2, tmp_path / "b")
    assert "token_issuers" not in json.loads((tmp_path / "b" / "genesis.json").read_text())
    assert () == plain.ledger_genesis().token_issuers
    data = json.loads((tmp_path / "a" / "genesis.json").read_text())
    data["token_issuers"] = [issuer.hex(), issuer.hex()]
    with pytest.raises(InvalidInput, match="distinct"):
        NetworkGenesis.from_json(data)
    data["token_issuers"] = ["zz"]
    with pytest.raises(InvalidInput, match="token issuer"):
        NetworkGenesis.from_json(data)


def test_key_files_are_private_and_match_genesis(tmp_path: Path) -> None:
    genesis, paths = generate_local_network(3, tmp_path)
    for i, path in enumerate(paths):
        assert 0o600 == stat.S_IMODE(path.stat().st_mode)
        keys = NodeKeys.load(path)
        assert i == keys.check_against(genesis).id
        seed_hex = json.loads(path.read_text())["validator_seed"]
        assert seed_hex not in repr(keys)
        assert json.loads(path.read_text())["node_seed"] not in repr(keys)


def test_keys_of_another_network_do_not_match(tmp_path: Path) -> None:
    genesis, _ = generate_local_network(2, tmp_path / "a")
    _, other = generate_local_network(2, tmp_path / "b")
    with pytest.raises(InvalidInput, match="does not match"):
        NodeKeys.load(other[0]).check_against(genesis)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "not a genesis"),
        (lambda d: d["validators"][1].update(id=5), "0..n-1"),
        (lambda d: d["validators"][1].update(node_key=d["validators"][0]["node_key"]),
         "duplicate validator node_key"),
        (lambda d: d["validators"][0].update(p2p="localhost"), "host:port"),
        (lambda d: d["validators"][0].update(weight=0), "weight"),
        (lambda d: d["validators"][0].update(public_key="zz"), "hex"),
        (lambda d: d.update(allocations=[]), "allocations"),
        (lambda d: d["consensus"].update(leader_timeout_ms=1), "leader_timeout_ms"),
        (lambda d: d.update(epoch=3), "epoch 0"),
    ],
)
def test_malformed_genesis_is_refused_with_a_reason(
    tmp_path: Path, mutate: object, message: str
) -> None:
    genesis, _ = generate_local_network(3, tmp_path)
    data = genesis.to_json()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=message):
        NetworkGenesis.from_json(data)


def test_genesis_id_changes_with_any_field(tmp_path: Path) -> None:
    genesis, _ = generate_local_network(2, tmp_path)
    data = genesis.to_json()
    data["allocations"][0]["amount"] += 1
    assert genesis.id != NetworkGenesis.from_json(data).id
