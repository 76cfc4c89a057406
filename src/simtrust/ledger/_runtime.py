"""The operator's own ledger node: one per process, its key sealed at rest.

The node key (an Ed25519 seed) is generated on first use and stored in
``ledger_meta`` sealed under the master keyring (envelope encryption, AAD
bound to the row); the genesis of a fresh store allocates the whole supply to
that key. The composition root (``simtrust.runtime``) opens the node with
:func:`open_ledger_node`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from simtrust.crypto import Keyring
from simtrust.ledger._keys import Ed25519Signer
from simtrust.ledger._node import LedgerConfig, LedgerNode
from simtrust.store import Database

__all__ = ["node_signer", "open_ledger_node"]

_AAD = b"simtrust/ledger/node-key"


def node_signer(db: Database, keyring: Keyring) -> Ed25519Signer:
    """The node's Ed25519 key, created and sealed on first use."""
    with db.transaction():
        row = db.query_one("SELECT value FROM ledger_meta WHERE key = 'node_key'")
        if row is not None:
            return Ed25519Signer(keyring.open(bytes(row[0]), _AAD))
        seed = os.urandom(32)
        db.execute(
            "INSERT INTO ledger_meta (key, value) VALUES ('node_key', ?)",
            (keyring.seal(seed, _AAD),),
        )
        return Ed25519Signer(seed)


def open_ledger_node(db: Database, keyring: Keyring, *, network: str,
                     clock: Callable[[], datetime]) -> LedgerNode:
    """The sole-validator ledger node over ``db``, signing with the sealed node key."""
    config = LedgerConfig(network=network)
    return LedgerNode(db, node_signer(db, keyring), config=config, clock=clock)
