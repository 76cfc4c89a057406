"""Frames exchanged inside a link (``docs/network.md``, "Frames").

One type byte, then a body of big-endian integers and length-prefixed
items. The decoder takes untrusted bytes and raises ``DecodeError`` for
anything malformed: unknown types, counts over the per-frame limits,
truncation, trailing bytes. Written by hand: five fixed layouts.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from simtrust.errors import DecodeError

__all__ = [
    "MAX_ITEMS",
    "MAX_ITEM_BYTES",
    "Frame",
    "FrameType",
    "Status",
    "decode_frame",
    "encode_floor",
    "encode_get_blocks",
    "encode_get_msgs",
    "encode_get_tail",
    "encode_items",
    "encode_ping",
    "encode_status",
]

MAX_ITEMS = 4096
MAX_ITEM_BYTES = 320 * 1024
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_STATUS = struct.Struct(">QQQQQQ")


class FrameType(IntEnum):
    MSGS = 1
    BLOCKS = 2
    GET_BLOCKS = 3
    GET_MSGS = 4
    STATUS = 5
    PING = 6
    PONG = 7
    GET_TAIL = 8
    CHECKPOINTS = 9
    GET_CHECKPOINTS = 10
    GET_COMMITS = 11
    COMMITS = 12


@dataclass(frozen=True, slots=True)
class Status:
    """What a peer says about its progress (sent on connect and periodically)."""

    highest_round: int
    last_decided: int
    commits: int
    finalized: int
    epoch: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded frame: ``items`` (raw messages, blocks, or 32-byte ids), ``floor``, ``status``."""

    type: FrameType
    items: tuple[bytes, ...] = ()
    floor: int = 0
    status: Status | None = None
    nonce: int = 0


_ITEM_FRAMES = (FrameType.MSGS, FrameType.BLOCKS, FrameType.CHECKPOINTS, FrameType.COMMITS)
_FLOOR_FRAMES = (FrameType.GET_TAIL, FrameType.GET_CHECKPOINTS, FrameType.GET_COMMITS)


def encode_items(kind: FrameType, items: Sequence[bytes]) -> bytes:
    """A frame of length-prefixed items: MSGS, BLOCKS, CHECKPOINTS or COMMITS."""
    if len(items) > MAX_ITEMS:
        raise DecodeError(f"at most {MAX_ITEMS} items per frame")
    parts = [bytes([kind]), _U32.pack(len(items))]
    for item in items:
        parts.append(_U32.pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def _ids(ids: Sequence[bytes]) -> bytes:
    if len(ids) > MAX_ITEMS or any(len(i) != 32 for i in ids):
        raise DecodeError(f"at most {MAX_ITEMS} ids of 32 bytes")
    return _U32.pack(len(ids)) + b"".join(ids)


def encode_get_blocks(digests: Sequence[bytes], floor: int) -> bytes:
    return bytes([FrameType.GET_BLOCKS]) + _U64.pack(floor) + _ids(digests)


def encode_get_tail(epoch: int) -> bytes:
    """Ask for the last blocks of ``epoch`` (a node that missed its peers' epoch switch)."""
    return encode_floor(FrameType.GET_TAIL, epoch)


def encode_floor(kind: FrameType, value: int) -> bytes:
    """GET_TAIL (an epoch), GET_CHECKPOINTS or GET_COMMITS (a commit height)."""
    if kind not in _FLOOR_FRAMES:
        raise DecodeError(f"{kind.name} does not carry one number")
    return bytes([kind]) + _U64.pack(value)


def encode_get_msgs(ids: Sequence[bytes]) -> bytes:
    return bytes([FrameType.GET_MSGS]) + _ids(ids)


def encode_status(status: Status) -> bytes:
    return bytes([FrameType.STATUS]) + _STATUS.pack(
        status.highest_round, status.last_decided, status.commits, status.finalized,
        status.epoch, status.height,
    )


def encode_ping(nonce: int, pong: bool = False) -> bytes:
    return bytes([FrameType.PONG if pong else FrameType.PING]) + _U64.pack(nonce)


def _decode_ids(data: bytes, pos: int) -> tuple[bytes, ...]:
    if len(data) < pos + 4:
        raise DecodeError("frame truncated before its count")
    (count,) = _U32.unpack_from(data, pos)
    if count > MAX_ITEMS:
        raise DecodeError("too many ids in one frame")
    pos += 4
    if len(data) != pos + 32 * count:
        raise DecodeError("id list length does not match its count")
    return tuple(data[pos + 32 * i : pos + 32 * (i + 1)] for i in range(count))


def decode_frame(data: bytes) -> Frame:
    """Decode one frame of untrusted bytes strictly."""
    if not data:
        raise DecodeError("empty frame")
    try:
        kind = FrameType(data[0])
    except ValueError:
        raise DecodeError(f"unknown frame type {data[0]}") from None
    if kind in _ITEM_FRAMES:
        if len(data) < 5:
            raise DecodeError("frame truncated before its count")
        (count,) = _U32.unpack_from(data, 1)
        if count > MAX_ITEMS:
            raise DecodeError("too many items in one frame")
        pos = 5
        items = []
        n = len(data)
        for _ in range(count):
            if pos + 4 > n:
                raise DecodeError("frame truncated in an item length")
            (size,) = _U32.unpack_from(data, pos)
            pos += 4
            if size > MAX_ITEM_BYTES or pos + size > n:
                raise DecodeError("item length out of range")
            items.append(data[pos : pos + size])
            pos += size
        if pos != n:
            raise DecodeError("trailing bytes after the last item")
        return Frame(kind, tuple(items))
    if kind == FrameType.GET_BLOCKS:
        if len(data) < 9:
            raise DecodeError("frame truncated before its floor")
        (floor,) = _U64.unpack_from(data, 1)
        return Frame(kind, _decode_ids(data, 9), floor=floor)
    if kind == FrameType.GET_MSGS:
        return Frame(kind, _decode_ids(data, 1))
    if kind == FrameType.STATUS:
        if len(data) != 1 + _STATUS.size:
            raise DecodeError("status frame has the wrong length")
        return Frame(kind, status=Status(*_STATUS.unpack_from(data, 1)))
    if len(data) != 9:
        raise DecodeError(f"{kind.name.lower()} frame has the wrong length")
    if kind in _FLOOR_FRAMES:
        return Frame(kind, floor=_U64.unpack_from(data, 1)[0])
    return Frame(kind, nonce=_U64.unpack_from(data, 1)[0])
