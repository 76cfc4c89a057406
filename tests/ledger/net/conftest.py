"""Fixtures of the network tests: a local genesis with keys, message builders."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from simtrust.ledger import Ed25519Signer, encode_tagged_data, network_id_from_name, signing_bytes
from simtrust.ledger.net import ConsensusParams, NetworkGenesis, NodeKeys, generate_local_network


def make_messages(
    network: str, signer: Ed25519Signer, parents: Sequence[bytes], count: int
) -> list[bytes]:
    """``count`` signed tagged-data messages approving ``parents``."""
    nid = network_id_from_name(network)
    now = int(time.time() * 1000)
    out = []
    for _ in range(count):
        body = signing_bytes(nid, signer.public_key, now, parents, 0,
                             encode_tagged_data(b"test", os.urandom(16)))
        out.append(body + signer.sign(body))
    return out


@pytest.fixture
def local_network(tmp_path: Path) -> tuple[NetworkGenesis, list[NodeKeys]]:
    genesis, paths = generate_local_network(
        4, tmp_path / "net", consensus=ConsensusParams(leader_timeout_ms=300,
                                                       min_round_interval_ms=30)
    )
    return genesis, [NodeKeys.load(p) for p in paths]
