"""The ledger node over HTTP: submit, messages, tangle, value, explorer and the finalized feed.

Routes follow ``docs/ledger.md`` ("HTTP API"). Submitted messages are signed
by their issuer; a client that does not choose parents asks ``/prepare`` for
the bytes to sign (the node picks tips) or lets the node issue tagged data on
its own key (``/data``, admin keys). The feed is Server-Sent Events
(WHATWG HTML §9.2) of finalized messages, resumable with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from simtrust.api.deps import INT64, INT64_MAX, CurrentPrincipal, CurrentRuntime
from simtrust.errors import InvalidInput
from simtrust.ledger import (
    MAX_MESSAGE_SIZE,
    LedgerNode,
    balance_json,
    encode_tagged_data,
    message_json,
    output_json,
    parse_hex_id,
    parse_public_key,
    payload_code,
    signing_bytes,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

_HEX_MAX = 2 * MAX_MESSAGE_SIZE + 16


class SubmitBody(BaseModel):
    """A complete signed message, or the prepared signing bytes plus the signature."""

    message: str | None = Field(None, max_length=_HEX_MAX, description="hex of the message")
    signing_bytes: str | None = Field(None, max_length=_HEX_MAX)
    signature: str | None = Field(None, max_length=128)


class PrepareBody(BaseModel):
    issuer: str = Field(..., description="hex Ed25519 public key of the issuer")
    payload_type: str = Field(..., description="tagged-data, transaction, anchor, identity, ...")
    payload: str = Field(..., max_length=_HEX_MAX, description="hex payload bytes")
    parents: list[str] | None = Field(None, max_length=8)


class DataBody(BaseModel):
    tag: str = Field("", max_length=64)
    data: str = Field(..., max_length=16_384)


def _node(rt: CurrentRuntime) -> LedgerNode:
    return rt.ledger


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} must be hex") from exc


@router.get("/info", summary="Node, network and tangle summary")
def info(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return _node(rt).info()


@router.post("/messages", summary="Submit a signed message", status_code=201)
def submit(body: SubmitBody, rt: CurrentRuntime, who: CurrentPrincipal,
           response: Response) -> dict[str, Any]:
    who.require_admin()
    if body.message is not None:
        raw = _hex(body.message, "message")
    elif body.signing_bytes is not None and body.signature is not None:
        raw = _hex(body.signing_bytes, "signing_bytes") + _hex(body.signature, "signature")
    else:
        raise InvalidInput("give message, or signing_bytes and signature")
    result = _node(rt).submit(raw)
    if result.status == "pending":
        response.status_code = 202
    elif result.status == "duplicate":
        response.status_code = 200
    return result.to_json()


@router.post("/prepare", summary="Bytes to sign for a payload, parents chosen by the node")
def prepare(body: PrepareBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    node = _node(rt)
    issuer = parse_public_key(body.issuer)
    ptype = payload_code(body.payload_type)
    payload = _hex(body.payload, "payload")
    parents = (
        [parse_hex_id(p, "parent id") for p in body.parents]
        if body.parents else node.select_parents()
    )
    at = int(rt.clock().timestamp() * 1000)
    to_sign = signing_bytes(node.network_id, issuer, at, parents, ptype, payload)
    return {
        "signing_bytes": to_sign.hex(),
        "parents": sorted(p.hex() for p in set(parents)),
        "issued_at_ms": at,
    }


@router.get("/parents", summary="Tip selection: recent tips for a client's own message")
def parents(rt: CurrentRuntime, who: CurrentPrincipal,
            count: int = Query(4, ge=1, le=8)) -> dict[str, Any]:
    return {"parents": [p.hex() for p in _node(rt).select_parents(count)]}


@router.post("/data", summary="The node issues a tagged-data message on its own key",
             status_code=201,
             description=(
                 "Operator-admin keys only: a message signed by the node key is the "
                 "operator's statement to the whole consortium "
                 "(docs/decisions/ledger-node-key-data.md). Tenants sign their own "
                 "messages: POST /v1/ledger/prepare, then POST /v1/ledger/messages."),
             responses={403: {"description": "not an operator-admin key",
                              "content": {"application/problem+json": {}}}})
def issue_data(body: DataBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    node = _node(rt)
    result = node.issue(0, encode_tagged_data(body.tag.encode(), body.data.encode()))
    return result.to_json()


@router.get("/messages", summary="Explorer: newest messages, optionally of one issuer")
def recent(rt: CurrentRuntime, who: CurrentPrincipal,
           issuer: str | None = None,
           limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
    key = parse_public_key(issuer) if issuer else None
    return {"messages": _node(rt).recent(limit, key)}


@router.get("/messages/{message_id}", summary="One message, decoded, with its state")
def get_message(message_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    node = _node(rt)
    mid = parse_hex_id(message_id)
    return message_json(node.get_message(mid), node.status(mid))


@router.get("/messages/{message_id}/raw", summary="The message's exact bytes",
            response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def get_raw(message_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
    raw = _node(rt).get_raw(parse_hex_id(message_id))
    return Response(raw, media_type="application/octet-stream")


@router.get("/messages/{message_id}/children", summary="Messages that approve this one")
def children(message_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return {"children": [c.hex() for c in _node(rt).children(parse_hex_id(message_id))]}


@router.get("/messages/{message_id}/status",
            summary="State: unknown, pending, solid, finalized or conflicting")
def status(message_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return _node(rt).status(parse_hex_id(message_id))


@router.get("/transactions/{message_id}", summary="Transaction status and its outputs")
def transaction(message_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    node = _node(rt)
    mid = parse_hex_id(message_id)
    doc = message_json(node.get_message(mid), node.status(mid))
    if doc["payload_type"] != "transaction":
        raise InvalidInput("that message is not a transaction")
    return doc


@router.get("/tips", summary="Current tips of the tangle")
def tips(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    ids = _node(rt).tips()
    return {"count": len(ids), "tips": [t.hex() for t in ids[:500]]}


@router.get("/missing", summary="Ids this node waits for (solidification)")
def missing(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return {"missing": [m.hex() for m in _node(rt).missing()]}


@router.get("/balances/{owner}", summary="Exact balance of an Ed25519 public key")
def balance(owner: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return balance_json(_node(rt).balance(parse_public_key(owner)))


@router.get("/outputs/{owner}", summary="Unspent outputs of an Ed25519 public key")
def outputs(owner: str, rt: CurrentRuntime, who: CurrentPrincipal,
            limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    found = _node(rt).outputs(parse_public_key(owner))
    return {"count": len(found), "outputs": [output_json(o, out) for o, out in found[:limit]]}


@router.get("/finalized", summary="Finalized messages after an order number (polling feed)")
def finalized(rt: CurrentRuntime, who: CurrentPrincipal,
              after: int = Query(0, ge=0, le=INT64_MAX, json_schema_extra=INT64),
              limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    return {"finalized": _node(rt).finalized_since(after, limit)}


@router.get("/feed", summary="Server-Sent Events: finalized messages in order",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def feed(
    request: Request,
    rt: CurrentRuntime,
    who: CurrentPrincipal,
    after: int = Query(0, ge=0, le=INT64_MAX, json_schema_extra=INT64),
    max_events: int = Query(0, ge=0, le=INT64_MAX, json_schema_extra=INT64,
                            description="stop after this many events (0: follow)"),
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    node = _node(rt)
    numeric = last_event_id is not None and last_event_id.isascii() and last_event_id.isdigit()
    start = int(last_event_id) if numeric and last_event_id else after

    async def events() -> AsyncIterator[str]:
        cursor, sent = start, 0
        yield "retry: 2000\n\n"
        while True:
            batch = await run_in_threadpool(node.finalized_since, cursor, 100)
            for item in batch:
                cursor = item["order"]
                sent += 1
                yield f"id: {cursor}\nevent: finalized\ndata: {json.dumps(item)}\n\n"
                if max_events and sent >= max_events:
                    return
            if not batch:
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.5)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
