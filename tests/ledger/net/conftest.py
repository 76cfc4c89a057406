"""Fixtures of the network tests: a local genesis with keys, message builders."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from simtrust.ledger import Ed25519Signer, encode_tagged_data, network_id_from_name, signing_bytes
from simtrust.ledger.net import (
    ConsensusParams,
    ConsortiumNode,
    NetworkGenesis,
    NodeKeys,
    NodeOptions,
    generate_local_network,
)
from simtrust.store import SqliteDatabase


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


#: Fast gossip retries for in-process networks.
OPTIONS = NodeOptions(rebroadcast_s=0.2, retry_s=0.1)


def finalized_order(node: ConsortiumNode) -> list[bytes]:
    """Every finalized message id of ``node``, in finalized order."""
    out: list[bytes] = []
    after = 0
    while rows := node.ledger.finalized_since(after, 1000):
        out.extend(bytes.fromhex(r["message_id"]) for r in rows)
        after = rows[-1]["order"]
    return out


#: The bound on any wait for a condition. Tests wait on conditions, never on
#: time: a condition that does not hold within this long means a bug (or a
#: hang), not a slow or shared machine, so it is far above any healthy run.
WAIT_S = 300.0
#: The hang guard around a whole in-loop test (several waits in sequence).
HANG_S = 900.0


async def wait_until(cond: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll ``cond`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def wait_sync(cond: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``cond`` (tolerating OSError from a node still starting) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class LocalNetwork:
    """Validators of one genesis in this event loop, each on its own SQLite file.

    ``async with LocalNetwork(...) as net:`` starts them all and stops and
    closes everything on the way out; ``stop(i)`` / ``start(i)`` restart one
    on its store (with other options, if given).
    """

    def __init__(self, genesis: NetworkGenesis, keys: Sequence[NodeKeys], directory: Path,
                 options: NodeOptions = OPTIONS) -> None:
        self.genesis, self.keys, self.options = genesis, list(keys), options
        self.paths = [directory / f"validator-{i}.db" for i in range(len(keys))]
        self.dbs: list[SqliteDatabase | None] = [None] * len(keys)
        self.nodes: list[ConsortiumNode] = []

    def open(self, i: int, options: NodeOptions | None = None) -> ConsortiumNode:
        """Validator ``i`` on its store, not started (to inspect or patch it first)."""
        db = self.dbs[i] = SqliteDatabase(self.paths[i])
        node = ConsortiumNode(self.genesis, self.keys[i], db, options=options or self.options)
        if i < len(self.nodes):
            self.nodes[i] = node
        else:
            self.nodes.append(node)
        return node

    async def start(self, i: int, options: NodeOptions | None = None) -> ConsortiumNode:
        node = self.open(i, options) if self.dbs[i] is None else self.nodes[i]
        await node.start()
        return node

    async def open_all(self) -> list[ConsortiumNode]:
        """Every validator opened, none started (``async with`` then starts them)."""
        for i in range(len(self.keys)):
            self.open(i)
        return self.nodes

    async def stop(self, i: int) -> None:
        await self.nodes[i].stop()
        db, self.dbs[i] = self.dbs[i], None
        if db is not None:
            db.close()

    async def __aenter__(self) -> LocalNetwork:
        for i in range(len(self.keys)):
            await self.start(i)  # opened ones (open_all) are started as they are
        return self

    async def __aexit__(self, *exc: object) -> None:
        for i, db in enumerate(self.dbs):
            if db is not None:
                await self.stop(i)
