"""The ledger node of a :class:`~simtrust.runtime.Runtime`: one per runtime, key sealed at rest.

The node key (an Ed25519 seed) is generated on first use and stored in
``ledger_meta`` sealed under the runtime's master keyring (envelope
encryption, AAD bound to the row); the genesis of a fresh store allocates the
whole supply to that key.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from simtrust.ledger._keys import Ed25519Signer
from simtrust.ledger._node import LedgerConfig, LedgerNode

if TYPE_CHECKING:
    from simtrust.runtime import Runtime

__all__ = ["ledger_node", "node_signer"]

_AAD = b"simtrust/ledger/node-key"


def node_signer(rt: Runtime) -> Ed25519Signer:
    """The node's Ed25519 key, created and sealed on first use."""
    with rt.db.transaction():
        row = rt.db.query_one("SELECT value FROM ledger_meta WHERE key = 'node_key'")
        if row is not None:
            return Ed25519Signer(rt.keyring.open(bytes(row[0]), _AAD))
        seed = os.urandom(32)
        rt.db.execute(
            "INSERT INTO ledger_meta (key, value) VALUES ('node_key', ?)",
            (rt.keyring.seal(seed, _AAD),),
        )
        return Ed25519Signer(seed)


def ledger_node(rt: Runtime) -> LedgerNode:
    """The runtime's ledger node (built once, closed with the runtime)."""

    def build() -> LedgerNode:
        config = LedgerConfig(network=rt.settings.network_id)
        return LedgerNode(rt.db, node_signer(rt), config=config, clock=rt.clock)

    return rt.extension("ledger", build)
