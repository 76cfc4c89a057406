"""Block-wise transfers (RFC 7959) on top of the CoAP message layer.

- The Block1/Block2 option value (§2.2): NUM (up to 20 bits), M, SZX; SZX 7 is reserved
  and refused, values longer than 3 bytes are malformed.
- :func:`exchange` is the requesting side (the management server): a request body larger
  than one block goes out as Block1 blocks (§2.5; the peer's 2.31 Continue may ask for
  smaller blocks, late negotiation §2.5), Size1 on the first (§4); a response carrying
  Block2 with M=1 is fetched to its end with further GETs (§2.4, §3.4: the rest of an
  Observe answer or notification without Observe, :func:`fetch_rest`), up to
  ``max_body`` bytes.
- :class:`Block1Assembler` is the serving side of Block1 (the device writing its Package
  /5/0/0): blocks in order, the size of each non-final block equal to its SZX, at most
  ``max_body`` bytes (else 4.13 with Size1, §2.9.3), a gap or a restart in the middle
  4.08 Request Entity Incomplete (§2.9.2); a bounded number of transfers at a time.
- :func:`block2_slice` is the serving side of Block2: the requested block of a
  representation, with Size2 (§4) and an ETag of the representation (RFC 7252 §5.10.6,
  8 bytes of its BLAKE2b digest) unless the response names one, so the requester can
  tell the blocks of one representation from those of the next (RFC 7959 §2.4).
- ETags on the requesting side: once the first block carried an ETag, a later block
  with another one means the resource changed during the transfer (a notification
  followed by GETs is the usual case, RFC 7959 §3.4); the transfer starts again from
  block 0, at most :data:`MAX_RESTARTS` times, so the joined body is always one
  representation, never a mix.
- A Block1 body may be a :class:`BlockSource` (``size`` and ``read(offset, n)``) instead of
  bytes: each block is read by its offset when it is sent, so a firmware package streamed
  from its file costs one block of memory, whatever its size.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from simtrust.devices._coap import (
    MAX_MESSAGE,
    Code,
    Message,
    MsgType,
    Opt,
    encode_message,
    uint_option,
)
from simtrust.devices._transport import CoapEndpoint, NotifyCallback, Peer
from simtrust.errors import DecodeError

__all__ = [
    "DEFAULT_BLOCK",
    "Block",
    "Block1Assembler",
    "BlockSource",
    "BodyTooLarge",
    "BytesSource",
    "block2_slice",
    "decode_block",
    "encode_block",
    "exchange",
    "fetch_rest",
    "representation_etag",
]

DEFAULT_BLOCK = 512
#: Reassembled responses are limited (a full /3 read is a few KiB).
MAX_RESPONSE = 1 << 20
CONTINUE = 0x5F  # 2.31 (RFC 7959 §2.9.1)
REQUEST_ENTITY_INCOMPLETE = 0x88  # 4.08 (§2.9.2)
_MAX_NUM = (1 << 20) - 1
#: Restarts of a Block2 transfer whose representation changed (ETag) before giving up.
MAX_RESTARTS = 3


class BodyTooLarge(ValueError):
    """A block-wise response grew past the caller's limit."""


@dataclass(frozen=True, slots=True)
class Block:
    num: int
    more: bool
    szx: int

    @property
    def size(self) -> int:
        return 1 << (self.szx + 4)

    @property
    def offset(self) -> int:
        return self.num * self.size


def encode_block(block: Block) -> bytes:
    if not 0 <= block.szx <= 6 or not 0 <= block.num <= _MAX_NUM:
        raise ValueError("block number or size out of range")
    value = block.num << 4 | (8 if block.more else 0) | block.szx
    return uint_option(value)


def decode_block(raw: bytes) -> Block:
    """A Block1/Block2 option value (§2.2); DecodeError when malformed or SZX is 7."""
    if len(raw) > 3:
        raise DecodeError("block option longer than 3 bytes", reason="block")
    value = int.from_bytes(raw, "big")
    szx = value & 7
    if szx == 7:
        raise DecodeError("block size exponent 7 is reserved", reason="block")
    return Block(value >> 4, bool(value & 8), szx)


def szx_for(size: int) -> int:
    """The largest SZX whose block size is at most ``size`` (16..1024)."""
    szx = 0
    while szx < 6 and 1 << (szx + 5) <= size:
        szx += 1
    return szx


class BlockSource(Protocol):
    """A request body read block by block (by offset), not held whole."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, n: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class BytesSource:
    """A :class:`BlockSource` over bytes already in memory."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, n: int) -> bytes:
        return self.data[offset:offset + n]


def _without(options: tuple[tuple[int, bytes], ...], *numbers: int) -> list[tuple[int, bytes]]:
    return [o for o in options if o[0] not in numbers]


def _ok(code: int) -> bool:
    return 0x40 <= code < 0x80


async def exchange(endpoint: CoapEndpoint, peer: Peer, msg: Message, *,
                   timeout: float = 60.0, observe: NotifyCallback | None = None,
                   block_size: int = DEFAULT_BLOCK, max_body: int = MAX_RESPONSE,
                   source: BlockSource | None = None) -> Message:
    """Send ``msg`` (Block1 when its body does not fit one block) and return the whole
    response (Block2 blocks joined). BodyTooLarge past ``max_body``. With ``source`` the
    body is read from it block by block (``msg.payload`` is ignored)."""
    base = _without(msg.options, Opt.BLOCK1, Opt.BLOCK2, Opt.SIZE1)
    body: BlockSource = source if source is not None else BytesSource(msg.payload)
    if source is not None and source.size <= block_size:
        msg = Message(msg.mtype, msg.code, msg.mid, msg.token, msg.options,
                      source.read(0, source.size))
        body = BytesSource(msg.payload)
    if body.size <= block_size and len(encode_message(msg)) <= MAX_MESSAGE:
        resp = await endpoint.request(peer, msg, timeout=timeout, observe=observe)
    else:
        szx = szx_for(block_size)
        num = 0
        while True:
            block = Block(num, (num + 1) * (1 << (szx + 4)) < body.size, szx)
            chunk = body.read(block.offset, block.size)
            opts = [*base, (Opt.BLOCK1, encode_block(block))]
            if num == 0:
                opts.append((Opt.SIZE1, uint_option(body.size)))
            opts.sort(key=lambda o: o[0])
            resp = await endpoint.request(peer, Message(msg.mtype, msg.code, 0, b"",
                                                        tuple(opts), chunk), timeout=timeout)
            if not block.more or resp.code != CONTINUE:
                break
            raw = resp.first(Opt.BLOCK1)
            answer = decode_block(raw) if raw is not None else block
            if answer.szx < szx:  # the peer wants smaller blocks (§2.5)
                num = (block.offset + block.size) // answer.size
                szx = answer.szx
            else:
                num += 1
    fetch = msg.code == Code.FETCH  # the rest of a FETCH answer is FETCHed (RFC 8132 §2.3.2)
    return await fetch_rest(endpoint, peer, msg.options, resp, timeout=timeout,
                            max_body=max_body, method=msg.code if fetch else Code.GET,
                            payload=msg.payload if fetch else b"")


async def fetch_rest(endpoint: CoapEndpoint, peer: Peer,
                     request_options: tuple[tuple[int, bytes], ...], resp: Message, *,
                     timeout: float = 60.0, max_body: int = MAX_RESPONSE,
                     method: int = Code.GET, payload: bytes = b"") -> Message:
    """``resp`` with the rest of its Block2 blocks fetched by GETs (or, for a FETCH, the
    same FETCH body) carrying the request's options without Observe (§2.4, §3.4);
    ``resp`` itself when it has no more blocks."""
    raw2 = resp.first(Opt.BLOCK2)
    if raw2 is None or not _ok(resp.code):
        return resp
    first = decode_block(raw2)
    if first.num != 0:
        raise DecodeError("first Block2 answer is not block 0", reason="block")
    joined = bytearray(resp.payload)
    more, szx = first.more, first.szx
    etag = resp.first(Opt.ETAG)
    restarts, restarted = 0, False
    dropped = [Opt.BLOCK1, Opt.BLOCK2, Opt.SIZE1, Opt.OBSERVE, Opt.ETAG]
    if method == Code.GET:
        dropped.append(Opt.CONTENT_FORMAT)
    get = _without(request_options, *dropped)
    while more:
        if len(joined) > max_body:
            raise BodyTooLarge(f"response over {max_body} bytes")
        want = Block(len(joined) // (1 << (szx + 4)), False, szx)
        opts = sorted([*get, (Opt.BLOCK2, encode_block(want))], key=lambda o: o[0])
        part = await endpoint.request(peer, Message(MsgType.CON, method, 0, b"",
                                                    tuple(opts), payload), timeout=timeout)
        if not _ok(part.code):
            return part
        raw = part.first(Opt.BLOCK2)
        got = decode_block(raw) if raw is not None else Block(want.num, False, szx)
        if restarted:  # block 0 of the representation now current
            etag, restarted = part.first(Opt.ETAG), False
        elif etag is not None and part.first(Opt.ETAG) != etag:
            # another representation (RFC 7959 §2.4): start again from its block 0
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise DecodeError("the representation kept changing during a block-wise "
                                  "transfer", reason="block-etag")
            joined, restarted = bytearray(), True
            continue
        if got.offset != len(joined):
            raise DecodeError("Block2 answer out of sequence", reason="block")
        joined += part.payload
        more, szx = got.more, got.szx
    if len(joined) > max_body:
        raise BodyTooLarge(f"response over {max_body} bytes")
    options = _without(resp.options, Opt.BLOCK2, Opt.SIZE2, Opt.ETAG)
    if etag is not None:
        options.append((Opt.ETAG, etag))
    return Message(resp.mtype, resp.code, resp.mid, resp.token,
                   tuple(sorted(options, key=lambda o: o[0])), bytes(joined))


def representation_etag(body: bytes) -> bytes:
    """An ETag of a representation (RFC 7252 §5.10.6: 1-8 opaque bytes)."""
    return hashlib.blake2b(body, digest_size=8).digest()


def block2_slice(request: Message, response: Message, *,
                 block_size: int = DEFAULT_BLOCK) -> Message:
    """The block of ``response`` the request asked for (or block 0 when the body does not
    fit ``block_size``); unchanged when it fits and no block was asked for."""
    raw = request.first(Opt.BLOCK2)
    body = response.payload
    if raw is None and len(body) <= block_size:
        return response
    want = decode_block(raw) if raw is not None else Block(0, False, szx_for(block_size))
    if want.szx > szx_for(block_size):
        want = Block(want.offset // block_size, False, szx_for(block_size))
    if want.offset >= len(body) and want.num:
        return request.reply(Code.BAD_OPTION, b"block beyond the representation")
    chunk = body[want.offset:want.offset + want.size]
    block = Block(want.num, want.offset + want.size < len(body), want.szx)
    options = [*_without(response.options, Opt.BLOCK2, Opt.SIZE2),
               (Opt.BLOCK2, encode_block(block)), (Opt.SIZE2, uint_option(len(body)))]
    if response.first(Opt.ETAG) is None:
        options.append((Opt.ETAG, representation_etag(body)))
    options.sort(key=lambda o: o[0])
    return Message(response.mtype, response.code, response.mid, response.token,
                   tuple(options), chunk)


@dataclass(slots=True)
class _Transfer:
    body: bytearray
    szx: int


class Block1Assembler:
    """The serving side of Block1: feed each request, get either the whole body (the last
    block arrived) or the response to send now (2.31, 4.08, 4.13, 4.00)."""

    def __init__(self, max_body: int, *, max_transfers: int = 1024,
                 on_refuse: Callable[[str], None] = lambda _reason: None) -> None:
        self._max = max_body
        self._max_transfers = max_transfers
        self._open: OrderedDict[Hashable, _Transfer] = OrderedDict()
        self._on_refuse = on_refuse

    def __len__(self) -> int:
        return len(self._open)

    def _refuse(self, key: Hashable, reason: str, reply: Message) -> Message:
        self._open.pop(key, None)
        self._on_refuse(reason)
        return reply

    def feed(self, key: Hashable, msg: Message) -> bytes | Message:
        raw = msg.first(Opt.BLOCK1)
        if raw is None:
            return msg.payload
        try:
            block = decode_block(raw)
        except DecodeError:
            return self._refuse(key, "bad-block", msg.reply(Code.BAD_REQUEST))
        size1 = msg.uint(Opt.SIZE1)
        if block.offset + len(msg.payload) > self._max or (size1 or 0) > self._max:
            return self._refuse(key, "too-large", msg.reply(
                Code.REQUEST_ENTITY_TOO_LARGE, options=[(Opt.SIZE1, uint_option(self._max))]))
        if block.more and len(msg.payload) != block.size:
            return self._refuse(key, "bad-block", msg.reply(Code.BAD_REQUEST))
        transfer = self._open.get(key)
        if block.num == 0:
            transfer = _Transfer(bytearray(), block.szx)
            self._open[key] = transfer
            self._open.move_to_end(key)
            while len(self._open) > self._max_transfers:
                self._open.popitem(last=False)
        elif transfer is None or block.offset != len(transfer.body):
            return self._refuse(key, "incomplete", msg.reply(REQUEST_ENTITY_INCOMPLETE))
        transfer.body += msg.payload
        if block.more:
            return msg.reply(CONTINUE, options=[(Opt.BLOCK1, encode_block(block))])
        self._open.pop(key, None)
        return bytes(transfer.body)


def final_block1(request: Message, response: Message) -> Message:
    """Echo the last Block1 in the final response (§2.3)."""
    raw = request.first(Opt.BLOCK1)
    if raw is None:
        return response
    options = sorted([*_without(response.options, Opt.BLOCK1), (Opt.BLOCK1, raw)],
                     key=lambda o: o[0])
    return Message(response.mtype, response.code, response.mid, response.token,
                   tuple(options), response.payload)
