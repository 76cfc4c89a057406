"""Read views of a ledger node's stored history: messages, the feed, anchors, commits, audit.

Store queries only (``docs/ledger.md``, "HTTP API" and "Durability"): the
explorer's newest messages, the finalized feed, anchor look-ups for audit
proofs, the commit records a peer serves to a node syncing
(``docs/network.md``, "Snapshot sync"), and :meth:`LedgerReader.recompute`,
which rebuilds the state hashes from the stored messages alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from simtrust.errors import IntegrityError, NotFound, Rejected
from simtrust.ledger._chain import chain_genesis, chain_step
from simtrust.ledger._codec import PAYLOAD_NAMES, Message, PayloadType, decode_message, message_id
from simtrust.ledger._ingest import IngestPipeline
from simtrust.ledger._orderer import FinalizedMessage
from simtrust.ledger._rows import hash_ids
from simtrust.ledger._types import CommitRecord, StateSnapshot
from simtrust.ledger._utxo import UtxoLedger

__all__ = ["LedgerReader"]


class LedgerReader:
    """Queries over the store the ``pipeline`` writes; ``node_key`` is the default anchor issuer."""

    __slots__ = ("_lock", "_pipeline", "db", "genesis", "genesis_id", "node_key")

    def __init__(self, pipeline: IngestPipeline, node_key: bytes) -> None:
        self._pipeline = pipeline
        self._lock = pipeline.lock
        self.db = pipeline.db
        self.genesis = pipeline.genesis
        self.genesis_id = pipeline.genesis_id
        self.node_key = node_key

    def get_raw(self, msg_id: bytes) -> bytes:
        seq = self._pipeline.seq_of(msg_id)
        row = None
        if seq:
            row = self.db.query_one("SELECT raw FROM ledger_messages WHERE seq = ?", (seq,))
        if row is None:
            raise NotFound("no such message")
        return bytes(row[0])

    def get_message(self, msg_id: bytes) -> Message:
        return decode_message(self.get_raw(msg_id))

    def recent(self, limit: int = 20, issuer: bytes | None = None) -> list[dict[str, Any]]:
        """Newest stored messages, optionally of one issuer (explorer queries)."""
        limit = max(1, min(limit, 500))
        if issuer is None:
            rows = self.db.query(
                "SELECT seq, raw, issuer, issued_at, payload_type FROM ledger_messages"
                " ORDER BY seq DESC LIMIT ?",
                (limit,),
            )
        else:
            rows = self.db.query(
                "SELECT seq, raw, issuer, issued_at, payload_type FROM ledger_messages"
                " WHERE issuer = ? ORDER BY seq DESC LIMIT ?",
                (issuer, limit),
            )
        return [
            {
                "seq": int(seq),
                "message_id": message_id(bytes(raw)).hex(),
                "issuer": bytes(iss).hex(),
                "issued_at": int(at),
                "payload_type": PAYLOAD_NAMES.get(int(pt), str(pt)),
            }
            for seq, raw, iss, at, pt in rows
        ]

    def finalized_since(self, after: int, limit: int = 100) -> list[dict[str, Any]]:
        """Finalized messages with order > ``after`` (the feed)."""
        rows = self.db.query(
            "SELECT f.ord, m.raw, f.round, f.status, f.reason, m.issuer,"
            " m.payload_type FROM ledger_finalized f JOIN ledger_messages m"
            " ON m.seq = f.seq WHERE f.ord > ? ORDER BY f.ord LIMIT ?",
            (after, max(1, min(limit, 1000))),
        )
        return [
            {
                "order": int(o),
                "message_id": message_id(bytes(raw)).hex(),
                "round": int(r),
                "state": "conflicting" if s else "finalized",
                "reason": reason,
                "issuer": bytes(iss).hex(),
                "payload_type": PAYLOAD_NAMES.get(int(pt), str(pt)),
            }
            for o, raw, r, s, reason, iss, pt in rows
        ]

    def anchor_covering(
        self, domain: str, seq: int, issuer: bytes | None = None
    ) -> dict[str, Any] | None:
        """The first finalized anchor of ``domain`` whose range holds ``seq``."""
        issuer = issuer or self.node_key
        row = self.db.query_one(
            "SELECT message_id, first_seq, last_seq, size, root, ord FROM ledger_anchors"
            " WHERE domain = ? AND issuer = ? AND first_seq <= ? AND last_seq >= ?"
            " ORDER BY ord LIMIT 1",
            (domain, issuer, seq, seq),
        )
        if row is None:
            return None
        mid, first, last, size, root, ord_ = row
        return {
            "message_id": bytes(mid), "first": int(first), "last": int(last),
            "size": int(size), "root": bytes(root), "order": int(ord_),
        }

    def last_anchored(self, domain: str, issuer: bytes | None = None) -> int:
        """Highest record sequence number anchored in ``domain`` (0 if none)."""
        row = self.db.query_one(
            "SELECT MAX(last_seq) FROM ledger_anchors WHERE domain = ? AND issuer = ?",
            (domain, issuer or self.node_key),
        )
        return int(row[0]) if row and row[0] is not None else 0

    def chain_at(self, height: int) -> tuple[int, bytes] | None:
        """(ledger round, chain head) after commit ``height``, if applied."""
        row = self.db.query_one(
            "SELECT round, chain FROM ledger_rounds WHERE height = ?", (height,))
        if row is None or row[1] is None:
            return None
        return int(row[0]), bytes(row[1])

    def commit_records(self, after: int, limit: int, max_bytes: int) -> list[CommitRecord]:
        """Applied commits at heights > ``after``, in order, at most ``limit`` of them
        and about ``max_bytes`` of raw messages (always at least one commit)."""
        out: list[CommitRecord] = []
        size = 0
        rounds = self.db.query(
            "SELECT height, round, leader, first_ord, count FROM ledger_rounds"
            " WHERE height > ? ORDER BY height LIMIT ?", (after, limit))
        for height, rnd, leader, first_ord, count in rounds:
            start, stop = int(first_ord), int(first_ord) + int(count)
            entries: list[tuple[bytes, int, str | None]] = []
            if stop > start:
                for raw, st, reason in self.db.query(
                    "SELECT m.raw, f.status, f.reason FROM ledger_finalized f"
                    " JOIN ledger_messages m ON m.seq = f.seq"
                    " WHERE f.ord >= ? AND f.ord < ? ORDER BY f.ord", (start, stop)):
                    entries.append((bytes(raw), int(st), None if reason is None else str(reason)))
            cost = sum(len(e[0]) for e in entries)
            if out and size + cost > max_bytes:
                break
            size += cost
            out.append(CommitRecord(int(height), int(rnd), bytes(leader), tuple(entries)))
        return out

    def recompute(self) -> StateSnapshot:
        """The same hashes recomputed from the stored messages alone, replaying the order."""
        with self._lock:
            raws: dict[bytes, bytes] = {}
            by_seq = {0: self.genesis_id}
            for seq, blob in self.db.query("SELECT seq, raw FROM ledger_messages ORDER BY seq"):
                raw = bytes(blob)
                mid = hashlib.blake2b(raw, digest_size=32).digest()
                raws[mid] = raw
                by_seq[int(seq)] = mid
            parents_of: set[bytes] = set()
            for raw in raws.values():
                parents_of.update(decode_message(raw).parents)
            tips = sorted(m for m in raws if m not in parents_of)
            utxo = UtxoLedger(self.genesis.token_issuers)
            utxo.load_genesis(self.genesis)
            order_rows = self.db.query(
                "SELECT ord, seq, round FROM ledger_finalized ORDER BY ord"
            )
            ids = []
            for ord_, seq, rnd in order_rows:
                mid = by_seq[int(seq)]
                ids.append(mid)
                if int(ord_) == 0:
                    continue
                m = decode_message(raws[mid])
                if m.payload_type == PayloadType.TRANSACTION:
                    fm = FinalizedMessage(m, "transaction", int(ord_), int(rnd))
                    try:
                        utxo.apply(fm)
                    except Rejected:
                        utxo.mark_void(mid)
            if len(set(ids)) != len(ids):
                raise IntegrityError("a message appears twice in the finalized order")
            height, head = self._recompute_chain(ids)
            return StateSnapshot(
                len(raws), len(ids) - 1, utxo.state_hash().hex(), hash_ids(tips),
                hash_ids(ids), height, head.hex(),
            )

    def _recompute_chain(self, ids: Sequence[bytes]) -> tuple[int, bytes]:
        """The commit chain from the finalized rows alone (ids indexed by order)."""
        outcome = {
            int(o): (int(st), None if r is None else str(r))
            for o, st, r in self.db.query("SELECT ord, status, reason FROM ledger_finalized")
        }
        head = chain_genesis(self.genesis_id)
        height = 0
        for rnd, leader, first, count in self.db.query(
            "SELECT round, leader, first_ord, count FROM ledger_rounds WHERE round > 0"
            " ORDER BY round"
        ):
            height += 1
            head = chain_step(head, int(rnd), bytes(leader), (
                (ids[o], *outcome[o]) for o in range(int(first), int(first) + int(count))))
        return height, head
