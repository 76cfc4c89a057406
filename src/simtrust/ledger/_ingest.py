"""The ingest pipeline: decode → verify → validate → store → tips → finalize, and its live state.

Validation rules and their reason codes are listed in ``docs/ledger.md``
("Validation"); every rejection raises or returns ``Rejected(reason, ...)``.
A batch is acknowledged only after the store transaction that holds its
messages, their finalization and the ledger state they changed has
committed, so a crash at any moment loses nothing acknowledged and a
restart rebuilds the in-memory indexes from the store (``docs/ledger.md``,
"Durability").

One piece, although it is over 600 lines: the in-memory indexes
(known ids, tips, the solidification buffer, finalized order, the commit
chain) are written by ingest and finalization under one lock, rolled back
together when a batch fails, and read by the live queries at the end of the
class; splitting them would put that invariant in several places. Messages
are authored by :class:`~simtrust.ledger._wallet.Wallet`, and stored
history is read by :class:`~simtrust.ledger._reads.LedgerReader`.
"""

from __future__ import annotations

import logging
import multiprocessing
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from simtrust.errors import InvalidInput, NotFound, Rejected, SimtrustError
from simtrust.ledger._chain import chain_genesis, chain_step
from simtrust.ledger._codec import (
    PAYLOAD_NAMES,
    Anchor,
    Message,
    Output,
    TaggedData,
    Transaction,
    decode_message,
    essence_digest,
    message_id,
    parents_of,
    payload_code,
)
from simtrust.ledger._orderer import (
    CommittedSubDagLike,
    FinalizedHandler,
    FinalizedMessage,
    Orderer,
)
from simtrust.ledger._pool import SignatureMemo, UnlockJob, VerifierPool, verify_chunk
from simtrust.ledger._rows import (
    ANCHOR_TARGET,
    ROUNDS_TARGET,
    AnchorIndex,
    Rows,
    hash_ids,
    insert_rows,
    okey,
)
from simtrust.ledger._tangle import IssuerQuota, SolidBuffer, TipPool
from simtrust.ledger._types import LedgerConfig, StateSnapshot, SubmitResult
from simtrust.ledger._utxo import Balance, Genesis, UtxoLedger
from simtrust.store import Database

__all__ = ["Clock", "IngestPipeline"]

_POOL_TIMEOUT_S = 120.0
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]



class _Checked:
    """A decoded message whose signatures this node verified before (``SignatureMemo``)."""

    __slots__ = ("message", "valid")

    def __init__(self, message: Message, valid: bool) -> None:
        self.message = message
        self.valid = valid


#: A decoded message (to verify, or verified before), a decoding rejection, or
#: the result of a duplicate (known before verification: an id is the hash of
#: the complete signed bytes).
Decoded = list[Message | _Checked | Rejected | SubmitResult]


class IngestPipeline:
    """Ingest, finalization and the in-memory state of one ledger node's store.

    ``node_key`` is the node's own public key (the default anchor issuer);
    ``orderer`` decides the finalized order.
    """

    def __init__(
        self,
        db: Database,
        genesis: Genesis,
        node_key: bytes,
        *,
        config: LedgerConfig,
        clock: Clock,
        orderer: Orderer,
        rng: random.Random,
    ) -> None:
        self.db = db
        self.genesis = genesis
        self.genesis_id = genesis.id
        self.node_key = node_key
        self.config = config
        self.network_id = config.network_id
        self.clock = clock
        self.orderer = orderer
        self._rng = rng
        self.lock = threading.RLock()
        self._lock = self.lock
        self._pool = VerifierPool(config.workers)
        # Outcomes of messages verified but not stored; survives ``_load`` (one id,
        # one set of bytes, one outcome).
        self._memo = SignatureMemo()
        self._handlers: dict[str, list[FinalizedHandler]] = {}
        self.utxo = UtxoLedger(self.genesis.token_issuers)
        self._anchors = AnchorIndex()
        self._handlers["transaction"] = [self._utxo_handler()]
        self._handlers["anchor"] = [self._anchors]
        self.stats: dict[str, int] = {"evicted": 0, "dropped": 0, "committed_admitted": 0,
                                      "stale_commits": 0}
        self._busy = False
        # Commits taken from the orderer and not yet applied. They outlive a
        # rebuild of the indexes (``_load``): the orderer hands each commit once.
        self._pending_commits: deque[CommittedSubDagLike] = deque()
        self._taken: list[CommittedSubDagLike] = []
        self._dropped: list[CommittedSubDagLike] = []
        self._cut = False
        # Ids the pending commits name that this node has not stored: kept up to
        # date as commits arrive and messages are stored (a rebuild after a stale
        # or cut commit), not recomputed from every pending commit per chunk.
        self._named: set[bytes] = set()
        self._vouched: set[bytes] = set()
        self._load()

    def _utxo_handler(self) -> FinalizedHandler:
        utxo = self.utxo

        class _Utxo:
            def apply(self, fm: FinalizedMessage) -> None:
                try:
                    utxo.apply(fm)
                except Rejected:
                    utxo.mark_void(fm.message_id)
                    raise

        return _Utxo()

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def _load(self) -> None:
        """(Re)build every in-memory index from the store."""
        g = self.genesis
        self._known: dict[bytes, int] = {self.genesis_id: g.time_ms}
        self._seq_of: dict[bytes, int] = {self.genesis_id: 0}
        by_seq: dict[int, bytes] = {0: self.genesis_id}
        self._children: dict[bytes, list[bytes]] = {}
        self._tips = TipPool()
        self._buffer = SolidBuffer(self.config.buffer_max, self.config.buffer_max_age_ms)
        self._vouched = set()
        self._quota = IssuerQuota(self.config.quota_rate, self.config.quota_burst)
        self._unfinal: dict[bytes, Message] = {}
        self._final: dict[bytes, int] = {}
        self._void: dict[bytes, str] = {}
        self._seq = 0
        for seq, at, blob in self.db.query(
            "SELECT seq, issued_at, raw FROM ledger_messages ORDER BY seq"
        ):
            raw = bytes(blob)
            mid = message_id(raw)
            plist = parents_of(raw)
            self._seq = int(seq)
            self._index(mid, int(at), plist)
            self._seq_of[mid] = self._seq
            by_seq[self._seq] = mid
        self._order = 0
        for ord_, seq, status, reason in self.db.query(
            "SELECT ord, seq, status, reason FROM ledger_finalized ORDER BY ord"
        ):
            fid = by_seq[int(seq)]
            self._final[fid] = int(ord_)
            if status:
                self._void[fid] = str(reason)
            self._order = int(ord_)
        spent = {int(k) for (k,) in self.db.query("SELECT okey FROM ledger_spends")}
        self.utxo = UtxoLedger(self.genesis.token_issuers)
        self.utxo.restore(
            (
                (bytes(o), bytes(b))
                for k, o, b in self.db.query("SELECT okey, output_id, body FROM ledger_outputs")
                if int(k) not in spent
            ),
            self._void,
        )
        self._handlers["transaction"][0] = self._utxo_handler()
        self._anchors.rows.clear()
        row = self.db.query_one("SELECT MAX(round) FROM ledger_rounds")
        last_round = int(row[0]) if row and row[0] is not None else 0
        self._height, self._chain = self._load_chain(by_seq)
        self._last_round = last_round
        unfinal: list[Message] = []
        if len(self._known) > len(self._final):
            unfinal = [
                decode_message(bytes(raw))
                for mid, raw in (
                    (message_id(bytes(r)), r)
                    for (r,) in self.db.query("SELECT raw FROM ledger_messages ORDER BY seq")
                )
                if mid not in self._final
            ]
        for m in unfinal:
            self._unfinal[m.id] = m
        self.orderer.restore(last_round, unfinal)
        self._name_committed()

    def _load_chain(self, by_seq: dict[int, bytes]) -> tuple[int, bytes]:
        """Height and head of the commit chain; fills rows stored before it existed."""
        row = self.db.query_one(
            "SELECT height, chain FROM ledger_rounds ORDER BY round DESC LIMIT 1")
        if row is not None and row[1] is not None:
            return int(row[0]), bytes(row[1])
        # A store from before the commit chain: compute every head once, in order.
        outcome = {
            int(o): (by_seq[int(q)], int(st), None if r is None else str(r))
            for o, q, st, r in self.db.query(
                "SELECT ord, seq, status, reason FROM ledger_finalized")
        }
        head = chain_genesis(self.genesis_id)
        height = 0
        updates: list[tuple[int, bytes, int]] = [(0, head, 0)]
        for rnd, leader, first, count in self.db.query(
            "SELECT round, leader, first_ord, count FROM ledger_rounds WHERE round > 0"
            " ORDER BY round"
        ):
            height += 1
            entries = [outcome[o] for o in range(int(first), int(first) + int(count))]
            head = chain_step(head, int(rnd), bytes(leader), entries)
            updates.append((height, head, int(rnd)))
        with self.db.transaction():
            self.db.executemany(
                "UPDATE ledger_rounds SET height = ?, chain = ? WHERE round = ?", updates)
        return height, head

    def _index(self, mid: bytes, at: int, parents: Sequence[bytes]) -> None:
        self._known[mid] = at
        children = self._children
        for p in parents:
            c = children.get(p)
            if c is None:
                children[p] = [mid]
            else:
                c.append(mid)
        self._tips.add(mid, at, parents)

    def register_handler(
        self, payload_type: str, handler: FinalizedHandler, *, replay_from: int | None = None
    ) -> None:
        """Have ``handler.apply(fm)`` called for each finalized message of ``payload_type``.

        Handlers run in finalized order inside the store transaction. With
        ``replay_from``, messages of that type already finalized at order
        ``>= replay_from`` (while no such handler was registered in this
        process: a CLI, a restart, a peer's messages) are applied first, in
        order; a handler keeps a cursor to make replays idempotent.
        """
        if payload_type not in PAYLOAD_NAMES.values():
            raise InvalidInput(f"unknown payload type {payload_type!r}")
        with self._lock:
            self._handlers.setdefault(payload_type, []).append(handler)
            if replay_from is not None:
                self._replay(payload_type, handler, replay_from)

    def _replay(self, name: str, handler: FinalizedHandler, start: int) -> None:
        rows = self.db.query(
            "SELECT f.ord, f.round, f.status, m.raw FROM ledger_finalized f"
            " JOIN ledger_messages m ON m.seq = f.seq"
            " WHERE f.ord >= ? AND m.payload_type = ? ORDER BY f.ord",
            (max(1, start), payload_code(name)),
        )
        with self.db.transaction():
            for ord_, rnd, status, raw in rows:
                if status:
                    continue  # already void by another handler
                m = decode_message(bytes(raw))
                try:
                    handler.apply(FinalizedMessage(m, name, int(ord_), int(rnd)))
                except SimtrustError as exc:
                    reason = exc.reason if isinstance(exc, Rejected) else exc.code
                    self.db.execute(
                        "UPDATE ledger_finalized SET status = 1, reason = ? WHERE ord = ?",
                        (reason, int(ord_)),
                    )
                    self._void[m.id] = reason

    def close(self) -> None:
        self._pool.close()

    def submit(self, raw: bytes) -> SubmitResult:
        """Ingest one message; raise :class:`Rejected` if it breaks a rule."""
        return self.submit_many([raw])[0].raise_if_rejected()

    def submit_many(
        self, raws: Sequence[bytes], ids: Sequence[bytes] | None = None
    ) -> list[SubmitResult]:
        """Ingest many messages; each result is returned after its chunk committed.

        ``ids``, when given, are the message ids of ``raws`` (``message_id``)
        that the caller computed already in this process; they spare hashing
        the same bytes again.
        """
        cfg = self.config
        step = cfg.chunk
        chunks = [(raws[i : i + step], None if ids is None else ids[i : i + step])
                  for i in range(0, len(raws), step)]
        results: list[SubmitResult] = []
        with self._lock:
            if len(raws) < cfg.pool_threshold:
                for chunk, chunk_ids in chunks:
                    decoded, vraws, unlocks = self._decode(chunk, chunk_ids)
                    ok, uok = verify_chunk(vraws, unlocks)
                    results.extend(self._process(decoded, ok, uok))
                return results
            inflight: deque[tuple[Decoded, list[bytes], list[UnlockJob], Any]] = deque()
            for chunk, chunk_ids in chunks:
                decoded, vraws, unlocks = self._decode(chunk, chunk_ids)
                inflight.append((decoded, vraws, unlocks, self._pool.submit(vraws, unlocks)))
                if len(inflight) >= cfg.inflight:
                    results.extend(self._process(*self._verified(inflight.popleft())))
            while inflight:
                results.extend(self._process(*self._verified(inflight.popleft())))
        return results

    def _verified(
        self, job: tuple[Decoded, list[bytes], list[UnlockJob], Any]
    ) -> tuple[Decoded, bytes, bytes]:
        decoded, vraws, unlocks, fut = job
        try:
            ok, uok = fut.get(timeout=_POOL_TIMEOUT_S)
        except multiprocessing.TimeoutError:
            # A worker died or hangs: verify here rather than wait forever.
            log.warning("verifier pool timed out; verifying %d messages inline", len(vraws))
            self._pool.close()
            ok, uok = verify_chunk(vraws, unlocks)
        return decoded, ok, uok

    def finalize(self) -> int:
        """Apply commits the orderer decided outside ingest (committee timers); return count."""
        with self._lock:
            before = self._order
            self._process([], b"", b"")
            return self._order - before

    def end_commits_here(self) -> None:
        """For a handler: the commit being applied is the last one of the current orderer.

        Commits taken after it are discarded once it is applied (an epoch
        boundary, ``docs/consensus.md`` §12); the messages they named stay
        stored and unfinalized, for the next epoch's committee to order.
        """
        self._cut = True

    def discard_pending_commits(self) -> int:
        """Drop commits taken but not applied (they wait for messages); a snapshot sync
        brings the certified commits for those rounds instead. Returns how many."""
        with self._lock:
            count = len(self._pending_commits)
            self._pending_commits.clear()
            self._name_committed()
            return count

    def unfinalized(self) -> list[Message]:
        """Stored messages not yet finalized, in the order they became solid."""
        with self._lock:
            return list(self._unfinal.values())

    def holds(self, msg_id: bytes) -> bool:
        """Whether this node stores ``msg_id`` or holds it waiting for its parents.

        Memory only (no store read, unlike :meth:`status`): cheap enough for
        the network layer to ask for every id a gossip frame or a block names.
        """
        return msg_id in self._known or msg_id in self._buffer.arrived

    def seq_of(self, msg_id: bytes) -> int | None:
        """Store sequence number of a stored message (memory only)."""
        return self._seq_of.get(msg_id)

    def _decode(
        self, chunk: Sequence[bytes], ids: Sequence[bytes] | None = None
    ) -> tuple[Decoded, list[bytes], list[UnlockJob]]:
        decoded: Decoded = []
        vraws: list[bytes] = []
        unlocks: list[UnlockJob] = []
        net = self.network_id
        known, buffer = self._known, self._buffer.arrived
        memo = self._memo.seen
        for k, raw in enumerate(chunk):
            try:
                if not isinstance(raw, bytes):
                    raise Rejected("encoding", "a message is bytes")
                mid = message_id(raw) if ids is None else ids[k]
                if mid in known:
                    decoded.append(SubmitResult("duplicate", mid))
                    continue
                if mid in buffer:
                    # The same bytes wait for parents: verified when they arrived.
                    decoded.append(SubmitResult("pending", mid, missing=tuple(
                        p for p in parents_of(raw) if p not in known)))
                    continue
                m = decode_message(raw, mid)
            except Rejected as exc:
                decoded.append(exc)
                continue
            if memo:
                valid = memo.get(mid)
                if valid is not None:
                    # Verified when these exact bytes came before: not again.
                    decoded.append(_Checked(m, valid))
                    continue
            decoded.append(m)
            vraws.append(raw)
            body = m.body
            if type(body) is Transaction and body.unlocks:
                digest = essence_digest(net, body.essence)
                for u in body.unlocks:
                    unlocks.append((u.public_key, u.signature, digest))
        return decoded, vraws, unlocks

    def _sync(self) -> None:
        """Reload the indexes when another process (a CLI next to the server) wrote messages."""
        if self._busy:
            return  # inside ingest: our own rows are not flushed yet
        row = self.db.query_one("SELECT MAX(seq) FROM ledger_messages")
        stored = int(row[0]) if row and row[0] is not None else 0
        if stored != self._seq:
            self._load()

    def _process(self, decoded: Decoded, ok: bytes, uok: bytes) -> list[SubmitResult]:
        now = self.now_ms()
        results: list[SubmitResult] = []
        rows = Rows()
        vi = ui = 0
        self._taken = []
        self._dropped = []
        self._cut = False
        try:
            with self.db.transaction():
                self._sync()
                self._busy = True
                memo = self._memo
                for item in decoded:
                    m: Message
                    good: bool | int
                    if isinstance(item, _Checked):
                        good, m = item.valid, item.message
                    elif isinstance(item, SubmitResult):
                        results.append(item)
                        continue
                    elif isinstance(item, Rejected):
                        results.append(
                            SubmitResult("rejected", None, item.reason, item.detail)
                        )
                        continue
                    else:
                        m = item
                        good = ok[vi]
                        vi += 1
                        body = m.body
                        if type(body) is Transaction and body.unlocks:
                            n = len(body.unlocks)
                            good = good and all(uok[ui : ui + n])
                            ui += n
                    if not good:
                        memo.put(m.id, False)
                        results.append(
                            SubmitResult("rejected", m.id, "signature",
                                         "a signature does not verify")
                        )
                        continue
                    result = self._admit(m, now, rows)
                    if result.status == "rejected":
                        memo.put(m.id, True)  # refused by a later rule; verified
                    results.append(result)
                if self._vouched and not len(self._buffer):
                    self._vouched.clear()  # no committed message waits for parents
                self._finalize(rows)
                self._flush(rows)
        except BaseException:
            self._busy = False
            taken = self._taken + self._dropped
            self._taken, self._dropped, self._cut = [], [], False
            self._load()
            # The commits this failed batch applied (or cut) were rolled back with it.
            self._pending_commits.extendleft(reversed(taken))
            self._name_committed()
            raise
        finally:
            self._busy = False
        return results

    def _admit(self, m: Message, now: int, rows: Rows) -> SubmitResult:
        mid = m.id
        if mid in self._known:
            return SubmitResult("duplicate", mid)
        if mid in self._buffer.arrived:
            return SubmitResult("pending", mid, missing=tuple(
                p for p in m.parents if p not in self._known))
        cfg = self.config
        # Named by a commit this node holds, or a parent of such a message: the
        # committee admitted it, so a node catching up after a long absence
        # must too (docs/ledger.md, "Committed messages").
        committed = mid in self._named or mid in self._vouched
        try:
            if m.network_id != self.network_id:
                raise Rejected("network", "message belongs to another network")
            if m.issued_at > now + cfg.max_future_skew_ms:
                raise Rejected("timestamp-skew", "message issued too far in the future")
            if m.issued_at < now - cfg.max_past_skew_ms and not committed:
                raise Rejected("timestamp-skew", "message issued too far in the past")
            if type(m.body) is not TaggedData:
                self._payload_rules(m)
            if not committed and not self._quota.take(m.issuer, now):
                raise Rejected("rate-limit", "issuer quota exhausted; retry later")
        except Rejected as exc:
            return SubmitResult("rejected", mid, exc.reason, exc.detail)
        if committed:
            self.stats["committed_admitted"] += 1
            self._vouched.discard(mid)
        known = self._known
        missing = [p for p in m.parents if p not in known]
        if missing:
            if committed:
                self._vouched.update(missing)
            evicted = self._buffer.add(m, missing, now)
            self.stats["evicted"] += len(evicted)
            for e in evicted:
                self._memo.put(e.id, True)  # verified when it arrived
            return SubmitResult("pending", mid, missing=tuple(missing))
        try:
            self._solidify(m, rows)
        except Rejected as exc:
            return SubmitResult("rejected", mid, exc.reason, exc.detail)
        if self._buffer.arrived:
            self._release_waiting(mid, rows)
        return SubmitResult("accepted", mid)

    def _payload_rules(self, m: Message) -> None:
        body = m.body
        if type(body) is Transaction:
            if any(u.public_key == m.issuer for u in body.unlocks):
                raise Rejected("payload", "the issuer's signature already unlocks its inputs")
        elif type(body) is Anchor and len(body.root) != 32:
            raise Rejected("payload", "anchor root must be 32 bytes")

    def _solidify(self, m: Message, rows: Rows) -> None:
        known = self._known
        gid = self.genesis_id
        floor = m.issued_at - self.config.max_parent_age_ms
        for p in m.parents:
            if p == gid:
                continue
            at = known[p]
            if at < floor:
                raise Rejected("parents-age", "a parent is older than the maximum parent age")
            if at > m.issued_at:
                raise Rejected("parents-age", "a parent was issued after the message")
        self._seq += 1
        self._seq_of[m.id] = self._seq
        self._index(m.id, m.issued_at, m.parents)
        rows.messages.append(
            (self._seq, m.issuer, m.issued_at, m.payload_type, m.raw)
        )
        self._unfinal[m.id] = m
        self._named.discard(m.id)
        self.orderer.on_solid(m)

    def _release_waiting(self, mid: bytes, rows: Rows) -> None:
        stack = [mid]
        while stack:
            parent = stack.pop()
            for child in self._buffer.waiting_on(parent):
                if all(p in self._known for p in child.parents):
                    self._buffer.release(child.id)
                    try:
                        self._solidify(child, rows)
                    except Rejected:
                        self.stats["dropped"] += 1
                        continue
                    stack.append(child.id)

    def _finalize(self, rows: Rows) -> None:
        handlers = self._handlers
        final, unfinal, seq_of, void = self._final, self._unfinal, self._seq_of, self._void
        new = self.orderer.take_commits()
        if new:
            self._pending_commits.extend(new)
            self._named.update(i for c in new for i in c.ordered_message_ids
                               if i not in final and i not in unfinal)
        # Applied commits name only stored ids, so they leave ``_named`` as it is;
        # a commit dropped unapplied (stale, or cut at an epoch's end) may leave
        # ids no pending commit names any more, and ``_named`` is rebuilt.
        renamed = False
        append = rows.finalized.append
        names = PAYLOAD_NAMES
        while self._pending_commits:
            commit = self._pending_commits[0]
            if commit.round <= self._last_round:
                # A round applied already (a commit replayed, or installed by a sync).
                self._pending_commits.popleft()
                self.stats["stale_commits"] += 1
                renamed = True
                continue
            ids = [i for i in commit.ordered_message_ids if i not in final]
            if any(i not in unfinal for i in ids):
                break  # the committee committed messages this node has not stored yet
            self._taken.append(self._pending_commits.popleft())
            rnd = commit.round
            first = self._order + 1
            order = self._order
            entries: list[tuple[bytes, int, str | None]] = []
            for mid in ids:
                m = unfinal.pop(mid)
                order += 1
                name = names[m.payload_type]
                hs = handlers.get(name)
                if hs:
                    status, reason = 0, None
                    fm = FinalizedMessage(m, name, order, rnd)
                    try:
                        for h in hs:
                            h.apply(fm)
                    except Rejected as exc:
                        status, reason = 1, exc.reason
                    except SimtrustError as exc:
                        status, reason = 1, exc.code
                    if status:
                        void[mid] = str(reason)
                    append((order, seq_of[mid], rnd, status, reason))
                    entries.append((mid, status, reason))
                else:
                    append((order, seq_of[mid], rnd, 0, None))
                    entries.append((mid, 0, None))
                final[mid] = order
                self._order = order
            self._height += 1
            self._last_round = rnd
            self._chain = chain_step(self._chain, rnd, commit.leader, entries)
            rows.rounds.append((rnd, commit.leader, first, len(ids), self._height, self._chain))
            if self._cut:
                # A handler ended the orderer's epoch with this commit (docs/consensus.md
                # §12): later commits of that orderer are never applied.
                self._cut = False
                self._dropped.extend(self._pending_commits)
                self._pending_commits.clear()
                renamed = True
                break
        if renamed or not self._pending_commits:
            self._name_committed()

    def _name_committed(self) -> None:
        """Ids that commits waiting to be applied name and this node has not stored."""
        if not self._pending_commits:
            self._named = set()
            return
        final, unfinal = self._final, self._unfinal
        self._named = {
            i for c in self._pending_commits for i in c.ordered_message_ids
            if i not in final and i not in unfinal
        }

    def _flush(self, rows: Rows) -> None:
        db = self.db
        if rows.messages:
            insert_rows(db, "ledger_messages (seq, issuer, issued_at, payload_type, raw)",
                         rows.messages)
        if rows.rounds:
            insert_rows(db, ROUNDS_TARGET, rows.rounds)
        if rows.finalized:
            insert_rows(db, "ledger_finalized (ord, seq, round, status, reason)", rows.finalized)
        utxo = self.utxo
        final = self._final
        if utxo.new_rows:
            insert_rows(db, "ledger_outputs (okey, output_id, body, created_ord)",
                         [(okey(final, r[0]), *r) for r in utxo.new_rows])
            utxo.new_rows.clear()
        if utxo.spent_rows:
            insert_rows(db, "ledger_spends (ord, okey)",
                         [(o, okey(final, oid)) for o, oid in utxo.spent_rows])
            utxo.spent_rows.clear()
        if self._anchors.rows:
            insert_rows(db, ANCHOR_TARGET, self._anchors.rows)
            self._anchors.rows.clear()

    def select_parents(self, count: int | None = None) -> list[bytes]:
        """Uniform random recent tips (the genesis id when no tip is recent enough)."""
        with self._lock:
            chosen = self._tips.select(
                self._rng,
                self.now_ms(),
                self.config.tip_max_age_ms,
                count or self.config.parents_to_select,
            )
            return chosen or [self.genesis_id]

    def missing(self) -> list[bytes]:
        """Ids the node waits for: parents of buffered messages and committed-but-unseen ids."""
        with self._lock:
            self._buffer.expire(self.now_ms())
            known, arrived = self._known, self._buffer.arrived
            wanted = set(self._buffer.missing(known))
            wanted.update({i for i in self._named if i not in known and i not in arrived})
            return sorted(wanted)

    def tips(self) -> list[bytes]:
        with self._lock:
            self._sync()
            return self._tips.ids()

    def children(self, msg_id: bytes) -> list[bytes]:
        with self._lock:
            self._sync()
            if msg_id not in self._known:
                raise NotFound("no such message")
            return sorted(self._children.get(msg_id, ()))

    def status(self, msg_id: bytes) -> dict[str, Any]:
        """State of a message: unknown, pending, solid, finalized or conflicting."""
        with self._lock:
            self._sync()
            out: dict[str, Any] = {"message_id": msg_id.hex()}
            if msg_id in self._final:
                out["order"] = self._final[msg_id]
                if msg_id in self._void:
                    out["state"] = "conflicting"
                    out["reason"] = self._void[msg_id]
                else:
                    out["state"] = "finalized"
            elif msg_id in self._unfinal:
                out["state"] = "solid"
            elif msg_id in self._buffer:
                out["state"] = "pending"
            else:
                out["state"] = "unknown"
            return out

    def balance(self, owner: bytes) -> Balance:
        with self._lock:
            self._sync()
            return self.utxo.balance(owner)

    def outputs(self, owner: bytes) -> list[tuple[bytes, Output]]:
        with self._lock:
            self._sync()
            return self.utxo.outputs_of(owner)

    def info(self) -> dict[str, Any]:
        with self._lock:
            self._sync()
            return {
                "network": self.config.network,
                "network_id": self.network_id.hex(),
                "genesis": self.genesis.id.hex(),
                "node_key": self.node_key.hex(),
                "messages": len(self._known) - 1,
                "finalized": self._order,
                "tips": len(self._tips),
                "pending": len(self._buffer),
                "missing": len(self.missing()),
                "unspent_outputs": len(self.utxo),
                "evicted": self.stats["evicted"],
            }

    def snapshot(self) -> StateSnapshot:
        """Hashes of the live state (UTXO set, tips, finalized order)."""
        with self._lock:
            order = sorted(self._final.items(), key=lambda kv: kv[1])
            return StateSnapshot(
                len(self._known) - 1,
                len(order) - 1,
                self.utxo.state_hash().hex(),
                hash_ids(self._tips.ids()),
                hash_ids([k for k, _ in order]),
                self._height,
                self._chain.hex(),
            )

    @property
    def height(self) -> int:
        """Commits applied since genesis (the commit chain's height)."""
        return self._height

    def chain_head(self) -> tuple[int, int, bytes]:
        """(height, ledger round, chain head) of the last applied commit."""
        with self._lock:
            row = self.db.query_one(
                "SELECT round FROM ledger_rounds WHERE height = ?", (self._height,))
            return self._height, int(row[0]) if row else 0, self._chain
