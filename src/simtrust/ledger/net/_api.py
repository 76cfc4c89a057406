"""HTTP routes of a consortium validator process (``docs/network.md``, "Node API").

Mounted by the node process next to the regular simtrust API, under
``/v1/ledger/network``. Handlers are ``async`` so they run on the loop that
owns the node (one caller at a time for the ledger and the core). Batch
submission takes ``application/octet-stream``: each message prefixed by its
length as a big-endian u32.
"""

from __future__ import annotations

import struct
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from simtrust.api.deps import CurrentPrincipal
from simtrust.errors import DecodeError, PayloadTooLarge
from simtrust.ledger.net._node import ConsortiumNode

__all__ = ["MAX_BATCH", "decode_batch", "encode_batch", "router"]

MAX_BATCH = 4096
_U32 = struct.Struct(">I")

router = APIRouter(prefix="/v1/ledger/network", tags=["ledger-network"])


def encode_batch(raws: list[bytes]) -> bytes:
    return b"".join(_U32.pack(len(r)) + r for r in raws)


def decode_batch(body: bytes) -> list[bytes]:
    """Split a length-prefixed batch of untrusted bytes (at most ``MAX_BATCH`` messages)."""
    out: list[bytes] = []
    pos, n = 0, len(body)
    while pos < n:
        if pos + 4 > n:
            raise DecodeError("batch truncated in a length prefix")
        (size,) = _U32.unpack_from(body, pos)
        pos += 4
        if pos + size > n:
            raise DecodeError("batch truncated in a message")
        out.append(body[pos : pos + size])
        pos += size
        if len(out) > MAX_BATCH:
            raise PayloadTooLarge(f"at most {MAX_BATCH} messages per batch")
    return out


def _node(request: Request) -> ConsortiumNode:
    node: ConsortiumNode = request.app.state.consortium
    return node


@router.get("/status", summary="Rounds, commits, finalized count, links and per-peer limits")
async def status(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    return _node(request).status()


@router.post("/submit", summary="Submit a batch of signed messages (length-prefixed binary)")
async def submit(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    raws = decode_batch(await request.body())
    results = await _node(request).submit_async(raws)
    return {"results": [r.to_json() for r in results]}


@router.get("/parents", summary="Parents chosen by tip selection, for clients that sign locally")
async def parents(
    request: Request, who: CurrentPrincipal, count: int = Query(4, ge=1, le=8)
) -> dict[str, Any]:
    return {"parents": [p.hex() for p in _node(request).ledger.select_parents(count)]}


@router.get("/finalized", summary="Finalized messages after an order position")
async def finalized(
    request: Request,
    who: CurrentPrincipal,
    after: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=1000),
) -> dict[str, Any]:
    rows = _node(request).ledger.finalized_since(after, limit)
    return {"finalized": [[r["order"], r["message_id"], r["state"]] for r in rows]}


@router.get("/snapshot", summary="Hashes of the UTXO set, tips and finalized order")
async def snapshot(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    return dict(_node(request).ledger.snapshot()._asdict())


class LinksBody(BaseModel):
    paused: bool


@router.post("/links", summary="Pause (partition this node) or resume its peer links")
async def links(request: Request, body: LinksBody, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    node = _node(request)
    if body.paused:
        node.net.pause()
    else:
        node.net.resume()
    return {"paused": node.net.paused, "links": node.net.connected()}
