"""Reading a channel: verify each frame, follow the hash chain, say what went wrong.

A :class:`Reader` knows its channel from the author's announce. Every frame it
is handed gets exactly one verdict, never an exception:

- ``ok``: signed by the channel's author, next on its branch, linked to the
  head (its ``prev`` is the id of the message before it);
- ``gap``: signed and ahead of the branch's next seq; ``missing`` says which
  seqs were skipped (the reader moves on; a missing one arriving later is
  ``reordered`` if it links into the chain as its successor says);
- ``reordered``: an earlier seq that arrived late and fits where it belongs;
- ``replay``: a message already seen (same id);
- ``fork``: a second, different message at a seq already taken, or one whose
  ``prev`` does not link to the head: the author (or its key) wrote two
  histories;
- ``forged``: the signature does not verify, or the frame names another
  channel or author;
- ``malformed``: the bytes are no frame (``_frame``'s reason in ``detail``);
- ``unreadable``: authentic, but encrypted under a key epoch this reader has
  no key for (a removed subscriber after its removal).

A *relay* reader (the platform storing a channel it cannot decrypt) checks
signatures and the chain only: encrypted frames get their place's verdict and
no plaintext.

Counters per verdict are kept in :attr:`Reader.counts`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from simtrust.errors import DecodeError, InvalidSignature
from simtrust.identity import verify_ed25519
from simtrust.streams._channel import SubscriberKey, open_payload
from simtrust.streams._frame import Frame, FrameKind, decode_frame, frame_id

__all__ = ["VERDICTS", "Delivery", "Reader"]

VERDICTS = (
    "ok", "gap", "reordered", "replay", "fork", "forged", "malformed", "unreadable",
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The verdict on one frame, with its plaintext when it could be read."""

    verdict: str
    message_id: bytes | None = None
    frame: Frame | None = None
    payload: bytes | None = None
    missing: tuple[int, ...] = ()
    detail: str = ""

    @property
    def accepted(self) -> bool:
        """Authentic and part of the one history (in order or filling a gap)."""
        return self.verdict in ("ok", "gap", "reordered")


class Reader:
    """One subscriber's view of one channel."""

    def __init__(self, announce: bytes, key: SubscriberKey | None = None, *,
                 relay: bool = False) -> None:
        frame = decode_frame(announce)
        if frame.kind is not FrameKind.ANNOUNCE:
            raise DecodeError("a reader starts from the channel's announce")
        verify_ed25519(frame.author, frame.signature, frame.signed_bytes())
        self.author = frame.author
        self.channel = frame_id(frame.signed_bytes())
        self.announce_id = frame_id(announce)
        self._key = key
        self.relay = relay
        self._epoch_keys: dict[int, bytes] = {}
        # per branch: highest seq accepted and its id; every (branch, seq) -> id seen
        self._heads: dict[int, tuple[int, bytes]] = {0: (0, self.announce_id)}
        self._ids: dict[tuple[int, int], bytes] = {}
        self._prevs: dict[tuple[int, int], bytes] = {}
        self._seen: set[bytes] = {self.announce_id}
        self.counts: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Reader(channel={self.channel.hex()[:16]}…)"

    def _verdict(self, delivery: Delivery) -> Delivery:
        self.counts[delivery.verdict] += 1
        return delivery

    def accept(self, data: bytes) -> Delivery:
        try:
            frame = decode_frame(data)
        except DecodeError as exc:
            return self._verdict(Delivery("malformed", detail=str(exc)))
        message_id = frame_id(data)
        if frame.kind is FrameKind.ANNOUNCE:
            verdict = "replay" if message_id == self.announce_id else "forged"
            return self._verdict(Delivery(verdict, message_id, frame))
        if frame.channel != self.channel or frame.author != self.author:
            return self._verdict(Delivery("forged", message_id, frame, detail="foreign frame"))
        try:
            # decode_frame checked the layout: the signed bytes are all but the signature.
            verify_ed25519(frame.author, frame.signature, data[:-64])
        except InvalidSignature:
            return self._verdict(Delivery("forged", message_id, frame, detail="bad signature"))
        if message_id in self._seen:
            return self._verdict(Delivery("replay", message_id, frame))
        verdict, missing = self._place(frame, message_id)
        if verdict == "fork":
            return self._verdict(Delivery("fork", message_id, frame, missing=missing))
        self._seen.add(message_id)
        return self._verdict(self._read(frame, message_id, verdict, missing))

    def _place(self, frame: Frame, message_id: bytes) -> tuple[str, tuple[int, ...]]:
        branch, seq = frame.branch, frame.seq
        taken = self._ids.get((branch, seq))
        if taken is not None and taken != message_id:
            return "fork", ()
        head_seq, head_id = self._heads.get(branch, (0, self.announce_id))
        missing: tuple[int, ...] = ()
        if seq == head_seq + 1:
            if frame.prev != head_id:
                return "fork", ()
            verdict = "ok"
        elif seq > head_seq + 1:
            missing = tuple(
                s for s in range(head_seq + 1, seq) if (branch, s) not in self._ids
            )
            verdict = "gap"
        else:
            # Late: it must be what its successor names as prev (if we hold that one),
            # and name what we hold before it.
            after = self._prevs.get((branch, seq + 1))
            before = self._ids.get((branch, seq - 1), self.announce_id if seq == 1 else None)
            if (after is not None and after != message_id) or (
                before is not None and frame.prev != before
            ):
                return "fork", ()
            verdict = "reordered"
        self._ids[(branch, seq)] = message_id
        self._prevs[(branch, seq)] = frame.prev
        if seq > head_seq:
            self._heads[branch] = (seq, message_id)
        return verdict, missing

    def _read(self, frame: Frame, message_id: bytes, verdict: str,
              missing: tuple[int, ...]) -> Delivery:
        if frame.kind is FrameKind.KEYLOAD:
            key = None
            if self._key is not None:
                try:
                    key = self._key.open_keyload(self.channel, frame.key_epoch, frame.payload)
                except DecodeError as exc:
                    return Delivery("malformed", message_id, frame, detail=str(exc))
            if key is not None:
                self._epoch_keys[frame.key_epoch] = key
            return Delivery(verdict, message_id, frame, None, missing)
        if not frame.encrypted:
            return Delivery(verdict, message_id, frame, frame.payload, missing)
        if self.relay:
            return Delivery(verdict, message_id, frame, None, missing)
        key = self._epoch_keys.get(frame.key_epoch)
        if key is None:
            return Delivery("unreadable", message_id, frame, missing=missing,
                            detail=f"no key for epoch {frame.key_epoch}")
        try:
            return Delivery(verdict, message_id, frame, open_payload(frame, key), missing)
        except DecodeError as exc:
            return Delivery("malformed", message_id, frame, detail=str(exc))
