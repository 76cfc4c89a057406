"""Snapshot sync: install finalized history from one peer, checked against a certificate.

``docs/network.md`` ("Snapshot sync"). A node too far behind to catch up by
blocks (more than one epoch, or past the peers' garbage-collection horizon)
asks a peer for checkpoint certificates, picks the next one its committee
can verify (the end of its epoch, else the latest), streams the commits
between its own height and that checkpoint (``COMMITS`` frames: a header
item per commit, then one item per finalized message), recomputes the
commit chain over them and applies them only if the head equals the
certified one. Nothing a single peer says is trusted beyond what a quorum
of the committee signed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from simtrust.errors import DecodeError, InvalidSignature, Rejected
from simtrust.ledger import CommitRecord, message_id
from simtrust.ledger.consensus import Committee
from simtrust.ledger.net._checkpoints import CheckpointCert

__all__ = ["END", "SyncSession", "commit_items", "decode_commit_items"]

_HEADER = struct.Struct(">QQ32sI")
_ENTRY = struct.Struct(">BB")
_MAX_ENTRIES = 1 << 20
#: The last item of every answer to a commits request.
END = b"Z"


def commit_items(records: Iterable[CommitRecord]) -> list[bytes]:
    """Records as a flat item stream: ``C ‖ height ‖ round ‖ leader ‖ count``, then
    per message ``E ‖ status ‖ reason length ‖ reason ‖ raw``."""
    items: list[bytes] = []
    for r in records:
        items.append(b"C" + _HEADER.pack(r.height, r.round, r.leader, len(r.entries)))
        for raw, status, reason in r.entries:
            text = (reason or "").encode()[:255]
            items.append(b"E" + _ENTRY.pack(status, len(text)) + text + raw)
    return items


class _Partial:
    __slots__ = ("count", "entries", "height", "leader", "round")

    def __init__(self, height: int, round_: int, leader: bytes, count: int) -> None:
        self.height, self.round, self.leader, self.count = height, round_, leader, count
        self.entries: list[tuple[bytes, int, str | None]] = []


def decode_commit_items(
    items: Sequence[bytes], partial: _Partial | None = None
) -> tuple[list[CommitRecord], _Partial | None]:
    """Complete records in ``items`` and the one still open at the end (strict)."""
    done: list[CommitRecord] = []
    for item in items:
        if item[:1] == b"C":
            if partial is not None:
                raise DecodeError("a commit header before the previous commit's last message")
            if len(item) != 1 + _HEADER.size:
                raise DecodeError("commit header has the wrong length")
            height, rnd, leader, count = _HEADER.unpack_from(item, 1)
            if count > _MAX_ENTRIES:
                raise DecodeError("too many messages in one commit")
            partial = _Partial(height, rnd, leader, count)
        elif item[:1] == b"E":
            if partial is None:
                raise DecodeError("a message outside a commit")
            if len(item) < 1 + _ENTRY.size:
                raise DecodeError("commit entry truncated")
            status, size = _ENTRY.unpack_from(item, 1)
            start = 1 + _ENTRY.size
            if status > 1 or len(item) < start + size + 1:
                raise DecodeError("commit entry malformed")
            try:
                reason = item[start : start + size].decode() if size else None
            except UnicodeDecodeError:
                raise DecodeError("commit entry reason is not UTF-8") from None
            partial.entries.append((item[start + size :], status, reason))
        elif item == END:
            if partial is not None:
                raise DecodeError("a response ends inside a commit")
        else:
            raise DecodeError("unknown commit item")
        if partial is not None and len(partial.entries) == partial.count:
            done.append(CommitRecord(partial.height, partial.round, partial.leader,
                                     tuple(partial.entries)))
            partial = None
    return done, partial


class SyncSession:
    """One attempt to sync from ``peer``: choose a certified target, gather, verify.

    ``height``/``head`` are this node's commit-chain position; ``committee``
    is the committee of its current epoch (the only one it can verify).
    """

    __slots__ = ("_partial", "_records", "_tip", "bytes", "committee", "height", "max_bytes",
                 "network_id", "peer", "started", "target")

    def __init__(self, peer: int, height: int, head: bytes, committee: Committee,
                 network_id: bytes, started: float, max_bytes: int = 256 << 20) -> None:
        self.peer = peer
        self.height = height
        self.committee = committee
        self.network_id = network_id
        self.started = started
        self.max_bytes = max_bytes
        self.target: CheckpointCert | None = None
        self._records: list[CommitRecord] = []
        self._partial: _Partial | None = None
        self._tip = head
        self.bytes = 0

    @property
    def after(self) -> int:
        """The height the next commits request starts after."""
        return self.height + len(self._records)

    def choose(self, certs: Iterable[CheckpointCert]) -> CheckpointCert | None:
        """The target among a peer's certificates that verify, or None if none helps.

        The first certificate of this node's epoch that ends it, else the
        highest of this epoch; certificates of later epochs can be verified
        only after the commits that switch to them are applied.
        """
        mine: list[CheckpointCert] = []
        for cert in certs:
            cp = cert.checkpoint
            if cp.epoch != self.committee.epoch or cp.height <= self.height:
                continue
            try:
                cert.verify(self.committee, self.network_id)
            except (Rejected, InvalidSignature):
                continue  # a single vote, or junk: not a certificate
            mine.append(cert)
        if not mine:
            return None
        mine.sort(key=lambda c: c.checkpoint.height)
        ending = [c for c in mine if c.checkpoint.ends_epoch]
        self.target = ending[0] if ending else mine[-1]
        return self.target

    def on_items(self, items: Sequence[bytes]) -> list[CommitRecord] | None:
        """Take a COMMITS frame. Returns the verified records once the target is reached,
        else None (ask for more after ``after``). ``Rejected``/``DecodeError`` on a
        peer that sends anything else than the certified history."""
        target = self.target
        if target is None:
            raise Rejected("sync", "commits arrived before a target was chosen")
        records, self._partial = decode_commit_items(items, self._partial)
        goal = target.checkpoint.height
        for record in records:
            if self.after >= goal:
                break
            if record.height != self.after + 1:
                raise Rejected("sync", f"commit {record.height} where {self.after + 1} was due")
            self.bytes += sum(len(raw) for raw, _, _ in record.entries)
            if self.bytes > self.max_bytes:
                raise Rejected("sync", "the history to the checkpoint exceeds the sync buffer")
            self._tip = record.chain_after(self._tip)
            self._records.append(record)
        if self.after < goal:
            return None
        self._partial = None
        cp = target.checkpoint
        last = self._records[-1] if self._records else None
        if self._tip != cp.chain or last is None or last.round != cp.round:
            raise Rejected("sync", "the served commits do not hash to the certified head")
        done, self._records = self._records, []
        return done

    @staticmethod
    def ids(record: CommitRecord) -> tuple[bytes, ...]:
        return tuple(message_id(raw) for raw, _, _ in record.entries)
