"""The consensus core: one validator's DAG, the commit rule, and its proposals.

A pure state machine (``docs/consensus.md`` §5–§7, garbage collection and
resuming §7.5): blocks go in through ``Core.on_block``, proposals come out of
``Core.propose``; time is an argument, never read. The commit rule is
Mysticeti's three-round wave on an uncertified DAG with a leader in every round
(Babel et al., "Mysticeti", 2023, §3–§4): votes in round r+1, certificates in
round r+2, direct commit or skip, indirect decision through the first committed
anchor at round ≥ r+3.

One piece, although it is over 600 lines: the DAG's indexes (blocks by
digest and by slot, the blocks waiting for ancestors, the decided rounds),
the commit rule that reads them and the garbage collection that prunes them
must change together under one invariant — a block is in the DAG only with
all its ancestors above the horizon, and every decision is taken on that
DAG — and the core is a pure state machine whose every transition the
simulator and the safety tests replay. The values it emits live in
``_outputs.py``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import InvalidInput, InvalidTransition, Rejected

from ._block import Block, BlockRef
from ._committee import Committee
from ._leader_wait import LeaderWait
from ._outputs import (
    BlockAccepted,
    CommittedSubDag,
    EquivocationDetected,
    EquivocationProof,
    MissingBlocks,
    Output,
)

__all__ = ["Core", "Verifier"]

Verifier = Callable[[Block, Ed25519PublicKey], None]


_UNDECIDED = 0
_COMMIT = 1
_SKIP = 2


def _verify_signature(block: Block, key: Ed25519PublicKey) -> None:
    block.verify_signature(key)


class Core:
    """The consensus state of one validator (or of an observer, without a key).

    Driver contract (``docs/consensus.md`` §7): feed every received block to
    ``on_block`` and act on the outputs in order; call ``ready_round(now)``
    when something changes or at ``wake_at()``; when it returns a round,
    ``propose(now, ids)``, persist the block, pass it to ``on_block`` and
    broadcast it. After a crash, replay persisted blocks through ``on_block``.

    ``gc_depth`` (None: keep every round) bounds memory: after each commit the
    core forgets rounds below ``gc_round`` = last committed leader round −
    ``gc_depth``. Every validator of a network must use the same value, since
    it decides which old blocks a commit still finalizes (§7.5).
    """

    __slots__ = (
        "_blame_weight",
        "_blamers",
        "_blocks",
        "_cert_authors",
        "_cert_weight",
        "_certifiers",
        "_commit_index",
        "_committed",
        "_delivered",
        "_delivered_log",
        "_equivocations",
        "_gc_depth",
        "_gc_round",
        "_handed_back",
        "_highest_round",
        "_key",
        "_last_commit_round",
        "_last_decided",
        "_last_proposed",
        "_max_pending",
        "_max_versions",
        "_max_weak",
        "_missing",
        "_pending",
        "_quorum_round",
        "_round_authors",
        "_round_weight",
        "_slots",
        "_stale",
        "_unreferenced",
        "_verify",
        "_votes",
        "_wait",
        "_waiting",
        "_weights",
        "author",
        "committee",
    )

    def __init__(
        self,
        committee: Committee,
        *,
        author: int | None = None,
        key: Ed25519PrivateKey | None = None,
        verifier: Verifier | None = None,
        leader_timeout_ms: int = 1000,
        max_pending: int = 10_000,
        max_versions: int = 4,
        max_weak_parents: int = 64,
        gc_depth: int | None = None,
    ) -> None:
        if gc_depth is not None and gc_depth < 0:
            raise InvalidInput("gc_depth is a number of rounds, 0 or more")
        if (author is None) != (key is None):
            raise InvalidInput("a validator core needs both its author index and its key")
        if author is not None and key is not None:
            if not committee.contains(author):
                raise InvalidInput(f"author {author} is not in the committee")
            raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            if raw != committee.validators[author].public_key:
                raise InvalidInput("the key does not match the author's key in the committee")
        self.committee = committee
        self._weights: tuple[int, ...] = tuple(v.weight for v in committee.validators)
        self.author = author
        self._key = key
        self._verify: Verifier = verifier or _verify_signature
        self._wait = LeaderWait(leader_timeout_ms)
        self._max_pending = max_pending
        self._max_versions = max_versions
        self._max_weak = max_weak_parents
        self._blocks: dict[bytes, Block] = {}
        self._slots: dict[tuple[int, int], list[bytes]] = {}
        self._round_authors: dict[int, set[int]] = {}
        self._round_weight: dict[int, int] = {}
        self._quorum_round = 0
        self._highest_round = 0
        self._last_proposed = 0
        self._pending: dict[bytes, Block] = {}
        self._waiting: dict[bytes, set[bytes]] = {}
        self._missing: dict[bytes, BlockRef] = {}
        self._unreferenced: dict[bytes, BlockRef] = {}
        self._equivocations: dict[tuple[int, int], EquivocationProof] = {}
        self._votes: dict[bytes, bytes | None] = {}
        self._blamers: dict[int, set[int]] = {}
        self._blame_weight: dict[int, int] = {}
        self._cert_authors: dict[bytes, set[int]] = {}
        self._cert_weight: dict[bytes, int] = {}
        self._certifiers: dict[bytes, bytes] = {}
        self._last_decided = 0
        self._last_commit_round = 0
        self._committed: set[bytes] = set()
        self._handed_back: set[bytes] = set()  # own blocks take_left_behind returned
        self._commit_index = 0
        # Finalized ids; with GC the log lists them by commit (leader round)
        # so that they are forgotten in order.
        self._delivered: set[bytes] = set()
        self._delivered_log: deque[tuple[int, tuple[bytes, ...]]] = deque()
        self._gc_depth = gc_depth
        self._gc_round = 0
        self._stale = 0

    def __repr__(self) -> str:
        return (
            f"Core(author={self.author}, epoch={self.committee.epoch}, "
            f"blocks={len(self._blocks)}, decided={self._last_decided}, "
            f"commits={self._commit_index})"
        )

    # -- queries -----------------------------------------------------------

    @property
    def last_decided_round(self) -> int:
        """Every leader round up to this one is committed or skipped."""
        return self._last_decided

    @property
    def commit_count(self) -> int:
        return self._commit_index

    @property
    def highest_round(self) -> int:
        return self._highest_round

    @property
    def last_proposed_round(self) -> int:
        return self._last_proposed

    @property
    def leader_timeout_ms(self) -> int:
        return self._wait.timeout_ms

    def leader_wait_stats(self) -> dict[str, int]:
        """How this validator's waits for leader blocks ended, and their total time
        (``LeaderWait.stats``, ``docs/consensus.md`` §15.10)."""
        return self._wait.stats()

    @property
    def gc_depth(self) -> int | None:
        return self._gc_depth

    @property
    def gc_round(self) -> int:
        """Rounds below this one are forgotten: their blocks are ignored when they
        arrive and count as present when referenced (0 without garbage collection)."""
        return self._gc_round

    def take_left_behind(self) -> list[Block]:
        """This validator's own blocks that no block references and whose round is
        below the last committed leader's, with the uncommitted own blocks only
        they reach through own parents, each returned once.

        With garbage collection no proposer weak-links such a block any more
        (§7.5, ``propose``), so it is committed only if a slower peer still
        references it; its ids are better proposed again at once than after
        it falls below ``gc_round`` (a re-proposed id that also comes out of
        the old block is dropped, §10). A validator that stalled may leave two
        or more blocks behind in a row, each referencing its previous one, so
        only the last is unreferenced: the earlier ones are handed back with it
        (§15.10). Empty without garbage collection, where every tip is
        eventually weak-linked.
        """
        if self._gc_depth is None or self.author is None:
            return []
        floor, me = self._last_commit_round, self.author
        behind = [d for d, r in self._unreferenced.items()
                  if r.author == me and r.round < floor and d not in self._committed]
        for digest in behind:
            del self._unreferenced[digest]  # below every later weak-link floor anyway
        found: list[Block] = []
        handed = self._handed_back
        stack = behind
        while stack:
            digest = stack.pop()
            if digest in handed or digest in self._committed or digest not in self._blocks:
                continue
            handed.add(digest)
            block = self._blocks[digest]
            found.append(block)
            stack.extend(p.digest for p in block.parents if p.author == me)
        found.sort(key=lambda b: b.ref)
        return found

    @property
    def stale_blocks(self) -> int:
        """Blocks ignored because their round was below ``gc_round`` when they arrived."""
        return self._stale

    def get(self, digest: bytes) -> Block | None:
        """A block of the DAG (accepted, not merely pending)."""
        return self._blocks.get(digest)

    def __contains__(self, digest: object) -> bool:
        return digest in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def missing_refs(self) -> tuple[BlockRef, ...]:
        """Every block some waiting block references and this core lacks (for retries)."""
        return tuple(sorted(self._missing.values()))

    def pending_count(self) -> int:
        return len(self._pending)

    def memory_stats(self) -> dict[str, int]:
        """How much state the core holds (to watch garbage collection at work):
        blocks, pending blocks, finalized block digests and finalized ids kept
        for de-duplication, rounds with tallies, and equivocation proofs."""
        return {
            "blocks": len(self._blocks),
            "pending": len(self._pending),
            "committed": len(self._committed),
            "delivered": len(self._delivered),
            "rounds": len(self._round_authors),
            "equivocations": len(self._equivocations),
        }

    def equivocations(self) -> tuple[EquivocationProof, ...]:
        return tuple(self._equivocations[k] for k in sorted(self._equivocations))

    def blocks_at(self, round_: int) -> tuple[Block, ...]:
        found: list[Block] = []
        for author in sorted(self._round_authors.get(round_, ())):
            found.extend(self._blocks[d] for d in self._slots[(round_, author)])
        return tuple(found)

    def history(self, digests: Iterable[bytes], floor_round: int, limit: int) -> list[Block]:
        """Held blocks among ``digests`` and their ancestors at rounds ≥ ``floor_round``,
        parents first, at most ``limit`` (to answer a peer's request)."""
        seen: set[bytes] = set()
        stack = [d for d in digests if d in self._blocks]
        found: list[Block] = []
        floor_round = max(floor_round, self._gc_round)  # nothing is held below it
        while stack and len(found) < limit:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            block = self._blocks[digest]
            found.append(block)
            stack.extend(
                p.digest for p in block.parents if p.round >= floor_round and p.digest not in seen
            )
        found.sort(key=lambda b: b.ref)
        return found

    # -- proposals ---------------------------------------------------------

    def proposal_round(self) -> int | None:
        """The round this validator may propose next (quorum of the previous round held)."""
        if self.author is None:
            return None
        candidate = self._quorum_round + 1
        # A block of round gc_round would need parents this core no longer holds
        # (or, resumed, never held): wait for a quorum at gc_round or above.
        if candidate <= self._last_proposed or candidate <= self._gc_round:
            return None
        return candidate

    def ready_round(self, now_ms: int) -> int | None:
        """The round to propose now, or None to wait.

        Waits for the previous round's leader block, at most
        ``leader_timeout_ms`` after this method first saw the round possible,
        and not at all once that leader is seen to have moved past the round
        (a block of it at a later round): an honest validator proposes its
        rounds in increasing order, so a leader that skipped its round (it
        lagged and joined at a later quorum) will never send that block
        (``docs/consensus.md`` §9 and §15). Nor when that leader is this
        validator itself: its own block for the round is here or will never be
        (it skipped the round, joining at a later quorum), and the others,
        waiting for that block, stop once they see its next one. Waiting only
        ever helped liveness; the commit rule and its safety do not depend on it.
        """
        round_ = self.proposal_round()
        if round_ is None:
            return None
        return round_ if self._wait_outcome(round_, now_ms) is not None else None

    def _wait_outcome(self, round_: int, now_ms: int) -> str | None:
        """How the wait before proposing ``round_`` ends now (``LeaderWait`` outcomes),
        or None while it goes on."""
        if round_ == 1:
            return "held"
        previous = round_ - 1
        leader = self.committee.leader(previous)
        if self._slots.get((previous, leader)):
            return "held"
        if leader == self.author:
            return "own"
        if self._moved_past(leader, previous):
            return "moved_past"
        return "timeout" if self._wait.expired(round_, now_ms) else None

    def _moved_past(self, author: int, round_: int) -> bool:
        """Whether this core holds a block of ``author`` at a round above ``round_``."""
        authors = self._round_authors
        return any(author in authors.get(r, ()) for r in range(round_ + 1,
                                                                self._highest_round + 1))

    def wake_at(self) -> int | None:
        """When a pending leader timeout expires (if ``ready_round`` is waiting on one)."""
        round_ = self.proposal_round()
        return None if round_ is None else self._wait.wake_at(round_)

    def proposal_parents(self) -> list[BlockRef]:
        """The parents ``propose`` would give this validator's next block now (none
        without a round to propose): the causal history it would carry (§7.3)."""
        round_ = self.proposal_round()
        return [] if round_ is None else self._parents_for(round_)

    def is_committed(self, digest: bytes) -> bool:
        """Whether a commit already finalized this block (not known below ``gc_round``)."""
        return digest in self._committed

    def _parents_for(self, round_: int) -> list[BlockRef]:
        parents: dict[tuple[int, int], BlockRef] = {}
        if round_ > 1:
            previous = round_ - 1
            for author in self._round_authors.get(previous, ()):
                first = self._blocks[self._slots[(previous, author)][0]]
                parents[(previous, author)] = first.ref
            # With GC, a weak link to a block older than the last committed
            # leader would make a validator one commit behind need a block its
            # peers forget at their next commit; such a block is left to fall
            # below gc_round, and its author proposes its ids again (§7.5).
            oldest = 0 if self._gc_depth is None else self._last_commit_round
            weak = sorted(
                (r for r in self._unreferenced.values() if oldest <= r.round < previous),
                key=lambda r: (-r.round, r.author, r.digest),
            )
            for ref in weak:
                if len(parents) >= len(self.committee) + self._max_weak:
                    break
                parents.setdefault((ref.round, ref.author), ref)
        return sorted(parents.values())

    def propose(self, now_ms: int, payload_ids: Sequence[bytes]) -> Block:
        """Sign this validator's block for ``proposal_round()``.

        Parents: one block (the first seen) of every author of the previous
        round, plus up to ``max_weak_parents`` older blocks nothing references
        yet (with garbage collection, none older than the last committed
        leader). The caller persists the block, then feeds it to ``on_block``.
        """
        round_ = self.proposal_round()
        if round_ is None or self._key is None or self.author is None:
            raise InvalidTransition("no round to propose (no quorum yet, or an observer core)")
        if round_ > 1:  # round 1 has no leader to wait for
            # Proposing before the wait ended counts as a timeout (the driver did not wait).
            self._wait.proposed(round_, now_ms, self._wait_outcome(round_, now_ms) or "timeout")
        block = Block.create(
            epoch=self.committee.epoch,
            round=round_,
            author=self.author,
            timestamp_ms=now_ms,
            parents=self._parents_for(round_),
            payload=payload_ids,
            key=self._key,
        )
        self._last_proposed = round_
        return block

    # -- ingestion ---------------------------------------------------------

    def on_block(self, block: Block) -> list[Output]:
        """Take a block from the network (or from this validator's own ``propose``).

        Raises ``Rejected`` (epoch, author, round, parents, parent-round,
        parent-author, parent-quorum, parent-mismatch, equivocation-limit) or
        ``InvalidSignature``. A duplicate returns no outputs, nor does a block
        below ``gc_round`` (counted in ``stale_blocks``).
        """
        digest = block.digest
        if digest in self._blocks or digest in self._pending:
            return []
        self._check_static(block)
        if block.round < self._gc_round:
            self._stale += 1
            return []
        versions = self._slots.get((block.round, block.author), ())
        if len(versions) >= self._max_versions and digest not in self._missing:
            raise Rejected(
                "equivocation-limit",
                "too many versions of this author's block for the round",
                round=block.round,
                author=block.author,
            )
        self._verify(block, self.committee.public_key(block.author))
        outputs: list[Output] = []
        self._missing.pop(digest, None)
        unknown: list[BlockRef] = []
        gc_round = self._gc_round
        for parent in block.parents:
            held = self._blocks.get(parent.digest) or self._pending.get(parent.digest)
            if held is not None:
                if held.round != parent.round or held.author != parent.author:
                    raise Rejected("parent-mismatch", "a parent reference names the wrong slot")
                if parent.digest in self._pending:
                    unknown.append(parent)
            elif parent.round >= gc_round:  # below it a parent counts as present
                unknown.append(parent)
        if unknown:
            self._park(block, unknown, outputs)
            return outputs
        accepted_any = self._accept_cascade(block, outputs)
        if accepted_any:
            outputs.extend(self._try_commit())
        return outputs

    def _check_static(self, block: Block) -> None:
        committee = self.committee
        if block.epoch != committee.epoch:
            raise Rejected("epoch", f"block of epoch {block.epoch} in epoch {committee.epoch}")
        if not committee.contains(block.author):
            raise Rejected("author", f"author {block.author} is not in the committee")
        if block.round < 1:
            raise Rejected("round", "rounds start at 1")
        if block.round == 1:
            if block.parents:
                raise Rejected("parents", "a round-1 block has no parents")
            return
        previous = block.round - 1
        weights = self._weights
        size = len(weights)
        weight = 0
        for parent in block.parents:
            p_round = parent.round
            if p_round >= block.round or p_round < 1:
                raise Rejected("parent-round", "a parent must be of an earlier round ≥ 1")
            if parent.author >= size:
                raise Rejected("parent-author", "a parent's author is not in the committee")
            if p_round == previous:
                weight += weights[parent.author]
        if not committee.is_quorum(weight):
            raise Rejected(
                "parent-quorum", "parents of the previous round hold 2/3 of the weight or less"
            )

    def _park(self, block: Block, unknown: list[BlockRef], outputs: list[Output]) -> None:
        if len(self._pending) >= self._max_pending:
            self._evict(next(iter(self._pending)))
        self._pending[block.digest] = block
        newly: list[BlockRef] = []
        for parent in unknown:
            self._waiting.setdefault(parent.digest, set()).add(block.digest)
            if parent.digest not in self._pending and parent.digest not in self._missing:
                self._missing[parent.digest] = parent
                newly.append(parent)
        if newly:
            outputs.append(MissingBlocks(tuple(newly)))

    def _evict(self, digest: bytes) -> None:
        block = self._pending.pop(digest)
        for parent in block.parents:
            children = self._waiting.get(parent.digest)
            if children is None:
                continue
            children.discard(digest)
            if not children:
                del self._waiting[parent.digest]
                self._missing.pop(parent.digest, None)
        if digest in self._waiting:  # blocks still wait for it: fetch it again
            self._missing[digest] = block.ref

    def _ready(self, block: Block) -> bool:
        gc_round = self._gc_round
        return all(p.digest in self._blocks or p.round < gc_round for p in block.parents)

    def _accept_cascade(self, block: Block, outputs: list[Output]) -> bool:
        queue = [block]
        accepted = False
        while queue:
            current = queue.pop()
            self._pending.pop(current.digest, None)
            self._accept(current, outputs)
            accepted = True
            for child_digest in sorted(self._waiting.pop(current.digest, ())):
                child = self._pending.get(child_digest)
                if child is None:
                    continue
                mismatch = any(
                    p.digest == current.digest and p != current.ref for p in child.parents
                )
                if mismatch:
                    self._evict(child_digest)
                elif self._ready(child):
                    queue.append(child)
        return accepted

    def _accept(self, block: Block, outputs: list[Output]) -> None:
        committee = self.committee
        digest = block.digest
        round_, author = block.round, block.author
        self._blocks[digest] = block
        versions = self._slots.setdefault((round_, author), [])
        if versions and (round_, author) not in self._equivocations:
            proof = EquivocationProof(self._blocks[versions[0]], block)
            self._equivocations[(round_, author)] = proof
            outputs.append(EquivocationDetected(proof))
        versions.append(digest)
        authors = self._round_authors.setdefault(round_, set())
        if author not in authors:
            authors.add(author)
            weight = self._round_weight.get(round_, 0) + self._weights[author]
            self._round_weight[round_] = weight
            if round_ > self._quorum_round and committee.is_quorum(weight):
                self._quorum_round = round_
        self._highest_round = max(self._highest_round, round_)
        if author == self.author:
            self._last_proposed = max(self._last_proposed, round_)
        # One pass over the parents: unreferenced tips, the vote (a block of
        # round r+1 votes for the leader block of r it references) and the
        # support for the leader of r-1 (a certificate, below).
        weights = self._weights
        unreferenced = self._unreferenced
        votes = self._votes
        previous = round_ - 1
        leader = committee.leader(previous) if round_ >= 2 else -1
        vote: bytes | None = None
        support: dict[bytes, int] = {}
        for parent in block.parents:
            unreferenced.pop(parent.digest, None)
            if parent.round == previous:
                if parent.author == leader:
                    vote = parent.digest
                voted = votes.get(parent.digest)
                if voted is not None:
                    support[voted] = support.get(voted, 0) + weights[parent.author]
        unreferenced[digest] = block.ref
        if round_ >= 2:
            votes[digest] = vote
            # A blame or certificate for a slot below gc_round is never read
            # again (those slots are decided) and would outlive the pruning.
            if vote is None and previous >= self._gc_round:
                blamers = self._blamers.setdefault(previous, set())
                if author not in blamers:
                    blamers.add(author)
                    self._blame_weight[previous] = (
                        self._blame_weight.get(previous, 0) + weights[author]
                    )
        # Certificate: a block of round r+2 whose r+1 parents voting for one
        # leader block hold a quorum. Parents have distinct authors per round,
        # so at most one leader block can reach a quorum within one block.
        for leader_digest, weight in support.items():
            if round_ - 2 >= self._gc_round and committee.is_quorum(weight):
                self._certifiers[digest] = leader_digest
                cert_authors = self._cert_authors.setdefault(leader_digest, set())
                if author not in cert_authors:
                    cert_authors.add(author)
                    self._cert_weight[leader_digest] = (
                        self._cert_weight.get(leader_digest, 0) + weights[author]
                    )
        outputs.append(BlockAccepted(block))

    # -- commit rule -------------------------------------------------------

    def _direct(self, round_: int) -> tuple[int, bytes | None]:
        leader = self.committee.leader(round_)
        for digest in self._slots.get((round_, leader), ()):
            if self.committee.is_quorum(self._cert_weight.get(digest, 0)):
                return _COMMIT, digest
        if self.committee.is_quorum(self._blame_weight.get(round_, 0)):
            return _SKIP, None
        return _UNDECIDED, None

    def _certified_in_history(self, anchor: Block, round_: int) -> bytes | None:
        """The leader block of ``round_`` certified by a block in ``anchor``'s past, if any."""
        leader = self.committee.leader(round_)
        versions = self._slots.get((round_, leader), ())
        if not any(d in self._cert_authors for d in versions):
            return None
        target = round_ + 2
        seen: set[bytes] = set()
        stack = [anchor.digest]
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            block = self._blocks[digest]
            if block.round == target:
                certified = self._certifiers.get(digest)
                if certified is not None:
                    return certified
                continue
            stack.extend(
                p.digest for p in block.parents if p.round >= target and p.digest not in seen
            )
        return None

    def _try_commit(self) -> list[Output]:
        outputs: list[Output] = []
        while True:
            before = self._gc_round
            outputs.extend(self._decide())
            if self._gc_round == before:
                return outputs
            # Blocks that waited only for parents now below gc_round are
            # acceptable, and may decide more slots: go round again.
            if not self._collect(before, outputs):
                return outputs

    def _decide(self) -> list[Output]:
        top = self._highest_round
        first = self._last_decided + 1
        if top - 1 < first:
            return []
        decisions: dict[int, tuple[int, bytes | None]] = {}
        for round_ in range(top - 1, first - 1, -1):
            kind, digest = self._direct(round_)
            if kind == _UNDECIDED:
                kind, digest = self._indirect(round_, decisions, top)
            decisions[round_] = (kind, digest)
        outputs: list[Output] = []
        for round_ in range(first, top):
            kind, digest = decisions[round_]
            if kind == _UNDECIDED:
                break
            if kind == _COMMIT and digest is not None:
                outputs.append(self._commit(digest))
            self._last_decided = round_
        return outputs

    def _indirect(
        self, round_: int, decisions: dict[int, tuple[int, bytes | None]], top: int
    ) -> tuple[int, bytes | None]:
        for anchor_round in range(round_ + 3, top):
            kind, digest = decisions[anchor_round]
            if kind == _SKIP:
                continue
            if kind == _UNDECIDED or digest is None:
                return _UNDECIDED, None
            certified = self._certified_in_history(self._blocks[digest], round_)
            if certified is not None:
                return _COMMIT, certified
            return _SKIP, None
        return _UNDECIDED, None

    def _commit(self, leader_digest: bytes) -> CommittedSubDag:
        leader = self._blocks[leader_digest]
        # The walk stops below the gc_round in force before this commit: a
        # function of the earlier committed leaders only, the same everywhere.
        gc_round = self._gc_round
        cone: list[Block] = []
        stack = [leader_digest]
        committed = self._committed
        while stack:
            digest = stack.pop()
            if digest in committed:
                continue
            committed.add(digest)
            block = self._blocks[digest]
            cone.append(block)
            stack.extend(
                p.digest for p in block.parents if p.round >= gc_round and p.digest not in committed
            )
        cone.sort(key=lambda b: b.ref)
        ids: list[bytes] = []
        delivered = self._delivered
        round_ = leader.round
        for block in cone:
            for mid in block.payload:
                if mid not in delivered:
                    delivered.add(mid)
                    ids.append(mid)
        self._last_commit_round = round_
        if self._gc_depth is not None:
            self._delivered_log.append((round_, tuple(ids)))
            self._gc_round = max(self._gc_round, round_ - self._gc_depth)
            # Forget finalized ids now, not after the batch: the next commit's
            # de-duplication must not depend on how many commits one call makes.
            log = self._delivered_log
            while log[0][0] < self._gc_round:
                delivered.difference_update(log.popleft()[1])
        sub = CommittedSubDag(
            index=self._commit_index,
            leader=leader.ref,
            round=leader.round,
            timestamp_ms=leader.timestamp_ms,
            blocks=tuple(b.ref for b in cone),
            message_ids=tuple(ids),
        )
        self._commit_index += 1
        return sub

    # -- garbage collection ------------------------------------------------

    def _collect(self, old_gc: int, outputs: list[Output]) -> bool:
        """Forget rounds ``old_gc .. gc_round - 1``; accept the waiting blocks that
        needed nothing else. True if any block was accepted."""
        gc_round = self._gc_round
        blocks, slots, committed = self._blocks, self._slots, self._committed
        for round_ in range(old_gc, gc_round):
            for author in self._round_authors.pop(round_, ()):
                for digest in slots.pop((round_, author)):
                    del blocks[digest]
                    committed.discard(digest)
                    self._handed_back.discard(digest)
                    self._votes.pop(digest, None)
                    self._certifiers.pop(digest, None)
                    self._cert_authors.pop(digest, None)
                    self._cert_weight.pop(digest, None)
                    self._unreferenced.pop(digest, None)
                self._equivocations.pop((round_, author), None)
            self._round_weight.pop(round_, None)
            self._blamers.pop(round_, None)
            self._blame_weight.pop(round_, None)
        self._wait.forget_below(gc_round)
        return self._release_pending(outputs)

    def _release_pending(self, outputs: list[Output]) -> bool:
        gc_round = self._gc_round
        for digest in [d for d, b in self._pending.items() if b.round < gc_round]:
            self._evict(digest)
        for digest in [d for d, ref in self._missing.items() if ref.round < gc_round]:
            del self._missing[digest]
        ready: list[Block] = []
        for block in self._pending.values():
            for parent in block.parents:
                if parent.round < gc_round:
                    children = self._waiting.get(parent.digest)
                    if children is not None:
                        children.discard(block.digest)
                        if not children:
                            del self._waiting[parent.digest]
            if self._ready(block):
                ready.append(block)
        accepted = False
        for block in sorted(ready, key=lambda b: b.ref):
            if block.digest in self._pending:  # not taken by an earlier cascade
                accepted |= self._accept_cascade(block, outputs)
        return accepted

    # -- construction ------------------------------------------------------

    @classmethod
    def restore(
        cls,
        committee: Committee,
        blocks: Iterable[Block],
        *,
        author: int | None = None,
        key: Ed25519PrivateKey | None = None,
        verifier: Verifier | None = None,
        leader_timeout_ms: int = 1000,
        gc_depth: int | None = None,
    ) -> tuple[Core, list[Output]]:
        """A core rebuilt from persisted blocks (in acceptance order) and the outputs
        replay produced: commits come out again with the same indices, and the
        validator's own blocks set its last proposed round so it never signs a
        second block for a round it already signed before the crash. With the
        ``gc_depth`` the core ran with, garbage collection happens at the same
        commits (blocks replayed below ``gc_round`` are skipped as stale)."""
        core = cls(
            committee,
            author=author,
            key=key,
            verifier=verifier,
            leader_timeout_ms=leader_timeout_ms,
            gc_depth=gc_depth,
        )
        outputs: list[Output] = []
        for block in blocks:
            outputs.extend(core.on_block(block))
        return core, outputs

    @classmethod
    def resume(
        cls,
        committee: Committee,
        *,
        last_decided_round: int,
        last_commit_round: int,
        commit_index: int,
        gc_depth: int,
        author: int | None = None,
        key: Ed25519PrivateKey | None = None,
        verifier: Verifier | None = None,
        leader_timeout_ms: int = 1000,
        last_proposed_round: int = 0,
    ) -> Core:
        """A core without blocks that continues after a committed point (a node that
        installed a finalized-state snapshot instead of replaying history).

        ``last_decided_round`` and ``commit_index`` (the number of commits so far)
        continue the decisions and indices; ``gc_round`` starts at
        ``last_commit_round - gc_depth``. Fed the blocks of rounds ≥ ``gc_round``
        it emits the same later commits (leader, round, index) as a core that saw
        everything; their ``message_ids`` may also hold ids finalized before the
        resume point, which the ledger ignores (§7.5). It never proposes a round
        ≤ ``last_proposed_round``.
        """
        if gc_depth is None:
            raise InvalidInput("resuming needs a gc_depth")
        if not 0 <= last_commit_round <= last_decided_round:
            raise InvalidInput("need 0 ≤ last_commit_round ≤ last_decided_round")
        if commit_index < 0 or last_proposed_round < 0:
            raise InvalidInput("commit_index and last_proposed_round are 0 or more")
        if (commit_index == 0) != (last_commit_round == 0):
            raise InvalidInput("a last commit round needs at least one commit, and back")
        core = cls(
            committee,
            author=author,
            key=key,
            verifier=verifier,
            leader_timeout_ms=leader_timeout_ms,
            gc_depth=gc_depth,
        )
        core._last_decided = last_decided_round
        core._commit_index = commit_index
        core._gc_round = max(0, last_commit_round - gc_depth)
        core._last_commit_round = last_commit_round
        core._last_proposed = last_proposed_round
        return core
