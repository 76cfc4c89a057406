"""The ledger node (``docs/ledger.md``): one store, one ingest pipeline, a wallet, read views.

:class:`LedgerNode` builds the pieces on one :class:`~simtrust.store.Database`
and is the surface the rest of simtrust uses. Each responsibility lives in
its own class: :class:`~simtrust.ledger._ingest.IngestPipeline` (decode,
verify, validate, store, finalize; the live in-memory state),
:class:`~simtrust.ledger._wallet.Wallet` (authoring and signing messages and
transfers) and :class:`~simtrust.ledger._reads.LedgerReader` (stored
history: explorer, feed, anchors, commit records, recomputation). The
node's methods delegate to them, so callers keep one object.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from simtrust.errors import ConfigError
from simtrust.ledger._chain import chain_genesis
from simtrust.ledger._codec import Message, Output, Unlock
from simtrust.ledger._ingest import Clock, IngestPipeline
from simtrust.ledger._keys import Ed25519Signer
from simtrust.ledger._orderer import FinalizedHandler, Orderer, SoloOrderer
from simtrust.ledger._reads import LedgerReader
from simtrust.ledger._schema import MIGRATIONS
from simtrust.ledger._types import CommitRecord, LedgerConfig, StateSnapshot, SubmitResult
from simtrust.ledger._utxo import Balance, Genesis, UtxoLedger
from simtrust.ledger._wallet import Wallet
from simtrust.store import Database, apply_migrations

__all__ = ["DEFAULT_SUPPLY", "CommitRecord", "LedgerConfig", "LedgerNode", "StateSnapshot",
           "SubmitResult"]

DEFAULT_SUPPLY = 10**15


def _now() -> datetime:
    return datetime.now(UTC)


class LedgerNode:
    """One ledger node over a :class:`~simtrust.store.Database`.

    ``signer`` is the node's own key (it issues anchors and, as the sole
    validator, leads every round). ``orderer`` defaults to the one-validator
    :class:`SoloOrderer`. ``ingest``, ``wallet`` and ``reads`` are the parts.
    """

    def __init__(
        self,
        db: Database,
        signer: Ed25519Signer,
        *,
        config: LedgerConfig | None = None,
        genesis: Genesis | None = None,
        clock: Clock = _now,
        orderer: Orderer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.signer = signer
        self.config = config or LedgerConfig()
        self.network_id = self.config.network_id
        self.clock = clock
        self.orderer = orderer or SoloOrderer(signer.public_key)
        apply_migrations(db, MIGRATIONS)
        if db.dialect == "sqlite":
            # The tangle's indexes are keyed by random hashes: a page cache that
            # holds them avoids re-reading B-tree pages on every insert.
            db.execute("PRAGMA cache_size = -131072")
            db.execute("PRAGMA wal_autocheckpoint = 16384")
        self.genesis = self._init_genesis(genesis)
        self.genesis_id = self.genesis.id
        self.ingest = IngestPipeline(db, self.genesis, signer.public_key, config=self.config,
                                     clock=clock, orderer=self.orderer,
                                     rng=rng or random.Random())
        self.wallet = Wallet(self.ingest, signer)
        self.reads = LedgerReader(self.ingest, signer.public_key)
        self.stats = self.ingest.stats

    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    @property
    def utxo(self) -> UtxoLedger:
        return self.ingest.utxo

    def _init_genesis(self, genesis: Genesis | None) -> Genesis:
        row = self.db.query_one("SELECT value FROM ledger_meta WHERE key = 'genesis'")
        if row is not None:
            stored = Genesis.decode(bytes(row[0]))
            if genesis is not None and genesis.id != stored.id:
                raise ConfigError("the store holds a different genesis than the one given")
            if stored.network_id != self.network_id:
                raise ConfigError("the store belongs to another network")
            return stored
        if genesis is None:
            # A node alone: the operator is the whole consortium, so its key holds the
            # supply and is the one key that may create tokens.
            genesis = Genesis(
                self.network_id,
                self._now_ms(),
                (Output(self.signer.public_key, DEFAULT_SUPPLY),),
                (self.signer.public_key,),
            )
        if genesis.network_id != self.network_id:
            raise ConfigError("genesis names another network")
        utxo = UtxoLedger(genesis.token_issuers)
        utxo.load_genesis(genesis)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('genesis', ?)", (genesis.encode(),)
            )
            self.db.execute(
                "INSERT INTO ledger_finalized (ord, seq, round, status, reason)"
                " VALUES (0, 0, 0, 0, NULL)"
            )
            self.db.execute(
                "INSERT INTO ledger_rounds (round, leader, first_ord, count, height, chain)"
                " VALUES (0, ?, 0, 1, 0, ?)",
                (genesis.id, chain_genesis(genesis.id)),
            )
            self.db.executemany(
                "INSERT INTO ledger_outputs (okey, output_id, body, created_ord)"
                " VALUES (?, ?, ?, ?)",
                [(i, *row) for i, row in enumerate(utxo.new_rows)],
            )
        return genesis

    # ------------------------------------------------------------ ingest

    def register_handler(
        self, payload_type: str, handler: FinalizedHandler, *, replay_from: int | None = None
    ) -> None:
        """See :meth:`IngestPipeline.register_handler`."""
        self.ingest.register_handler(payload_type, handler, replay_from=replay_from)

    def close(self) -> None:
        self.ingest.close()

    def submit(self, raw: bytes) -> SubmitResult:
        """Ingest one message; raise :class:`Rejected` if it breaks a rule."""
        return self.ingest.submit(raw)

    def submit_many(
        self, raws: Sequence[bytes], ids: Sequence[bytes] | None = None
    ) -> list[SubmitResult]:
        """Ingest many messages; each result is returned after its chunk committed.

        ``ids``: the messages' ids when the caller hashed them already (see
        :meth:`IngestPipeline.submit_many`)."""
        return self.ingest.submit_many(raws, ids)

    def finalize(self) -> int:
        """Apply commits the orderer decided outside ingest (committee timers); return count."""
        return self.ingest.finalize()

    def end_commits_here(self) -> None:
        """See :meth:`IngestPipeline.end_commits_here`."""
        self.ingest.end_commits_here()

    def discard_pending_commits(self) -> int:
        """See :meth:`IngestPipeline.discard_pending_commits`."""
        return self.ingest.discard_pending_commits()

    # ------------------------------------------------------------ live state

    def unfinalized(self) -> list[Message]:
        return self.ingest.unfinalized()

    def holds(self, msg_id: bytes) -> bool:
        return self.ingest.holds(msg_id)

    def select_parents(self, count: int | None = None) -> list[bytes]:
        return self.ingest.select_parents(count)

    def missing(self) -> list[bytes]:
        return self.ingest.missing()

    def tips(self) -> list[bytes]:
        return self.ingest.tips()

    def children(self, msg_id: bytes) -> list[bytes]:
        return self.ingest.children(msg_id)

    def status(self, msg_id: bytes) -> dict[str, Any]:
        return self.ingest.status(msg_id)

    def balance(self, owner: bytes) -> Balance:
        return self.ingest.balance(owner)

    def outputs(self, owner: bytes) -> list[tuple[bytes, Output]]:
        return self.ingest.outputs(owner)

    def info(self) -> dict[str, Any]:
        return self.ingest.info()

    def snapshot(self) -> StateSnapshot:
        return self.ingest.snapshot()

    @property
    def height(self) -> int:
        """Commits applied since genesis (the commit chain's height)."""
        return self.ingest.height

    def chain_head(self) -> tuple[int, int, bytes]:
        return self.ingest.chain_head()

    # ------------------------------------------------------------ wallet

    def build(self, payload_type: int | str, payload: bytes, *,
              signer: Ed25519Signer | None = None, parents: Sequence[bytes] | None = None,
              issued_at_ms: int | None = None) -> bytes:
        return self.wallet.build(payload_type, payload, signer=signer, parents=parents,
                                 issued_at_ms=issued_at_ms)

    def issue(self, payload_type: int | str, payload: bytes, *,
              signer: Ed25519Signer | None = None,
              parents: Sequence[bytes] | None = None) -> SubmitResult:
        return self.wallet.issue(payload_type, payload, signer=signer, parents=parents)

    def issue_data(self, tag: bytes, data: bytes, signer: Ed25519Signer | None = None) -> bytes:
        return self.wallet.issue_data(tag, data, signer)

    def anchor(self, domain: str, first: int, last: int, size: int, root: bytes) -> bytes:
        return self.wallet.anchor(domain, first, last, size, root)

    def transfer(self, signer: Ed25519Signer, to: bytes, amount: int, *,
                 token: bytes | None = None) -> bytes:
        return self.wallet.transfer(signer, to, amount, token=token)

    def build_transfer(self, signer: Ed25519Signer, to: bytes, amount: int, *,
                       token: bytes | None = None) -> bytes:
        return self.wallet.build_transfer(signer, to, amount, token=token)

    def sign_unlock(self, signer: Ed25519Signer, inputs: Sequence[bytes],
                    outputs: Sequence[Output]) -> Unlock:
        return self.wallet.sign_unlock(signer, inputs, outputs)

    # ------------------------------------------------------------ stored history

    def get_raw(self, msg_id: bytes) -> bytes:
        return self.reads.get_raw(msg_id)

    def get_message(self, msg_id: bytes) -> Message:
        return self.reads.get_message(msg_id)

    def recent(self, limit: int = 20, issuer: bytes | None = None) -> list[dict[str, Any]]:
        return self.reads.recent(limit, issuer)

    def finalized_since(self, after: int, limit: int = 100) -> list[dict[str, Any]]:
        return self.reads.finalized_since(after, limit)

    def anchor_covering(self, domain: str, seq: int,
                        issuer: bytes | None = None) -> dict[str, Any] | None:
        return self.reads.anchor_covering(domain, seq, issuer)

    def last_anchored(self, domain: str, issuer: bytes | None = None) -> int:
        return self.reads.last_anchored(domain, issuer)

    def chain_at(self, height: int) -> tuple[int, bytes] | None:
        return self.reads.chain_at(height)

    def commit_records(self, after: int, limit: int, max_bytes: int) -> list[CommitRecord]:
        return self.reads.commit_records(after, limit, max_bytes)

    def recompute(self) -> StateSnapshot:
        return self.reads.recompute()
