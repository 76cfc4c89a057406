"""JSON views of ledger values, shared by the HTTP API and the command line."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from simtrust.errors import InvalidInput
from simtrust.ledger._codec import (
    Anchor,
    Message,
    Opaque,
    Output,
    TaggedData,
    Transaction,
    split_output_id,
)
from simtrust.ledger._utxo import Balance

__all__ = ["balance_json", "message_json", "output_json", "parse_hex_id", "parse_public_key"]


def parse_hex_id(text: str, what: str = "message id", size: int = 32) -> bytes:
    """Parse a hex id of ``size`` bytes or raise :class:`InvalidInput`."""
    try:
        value = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} must be hex") from exc
    if len(value) != size:
        raise InvalidInput(f"{what} must be {size} bytes")
    return value


def parse_public_key(text: str) -> bytes:
    return parse_hex_id(text, "public key")


def output_json(oid: bytes | None, out: Output) -> dict[str, Any]:
    doc: dict[str, Any] = {"owner": out.owner.hex(), "amount": out.amount}
    if oid is not None:
        tx, index = split_output_id(oid)
        doc = {"output_id": oid.hex(), "transaction": tx.hex(), "index": index, **doc}
    if out.tokens:
        doc["tokens"] = {tid.hex(): n for tid, n in out.tokens}
    if out.foundry is not None:
        doc["foundry"] = {
            "token_id": out.foundry.token_id.hex(),
            "minted": out.foundry.minted,
            "max_supply": out.foundry.max_supply,
        }
    return doc


def _body_json(m: Message) -> dict[str, Any]:
    body = m.body
    if isinstance(body, TaggedData):
        doc: dict[str, Any] = {"tag": body.tag.hex(), "data": body.data.hex()}
        with contextlib.suppress(UnicodeDecodeError):
            doc["text"] = body.data.decode()
        return doc
    if isinstance(body, Transaction):
        return {
            "inputs": [i.hex() for i in body.inputs],
            "outputs": [output_json(None, o) for o in body.outputs],
            "unlocks": [u.public_key.hex() for u in body.unlocks],
        }
    if isinstance(body, Anchor):
        return {"domain": body.domain, "first": body.first, "last": body.last,
                "size": body.size, "root": body.root.hex()}
    if isinstance(body, Opaque):
        return {"bytes": len(body.data)}
    return {}


def message_json(m: Message, status: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = {
        "message_id": m.id.hex(),
        "version": m.version,
        "network_id": m.network_id.hex(),
        "issuer": m.issuer.hex(),
        "issued_at_ms": m.issued_at,
        "issued_at": datetime.fromtimestamp(m.issued_at / 1000, tz=UTC).isoformat(),
        "parents": [p.hex() for p in m.parents],
        "payload_type": m.payload_name,
        "payload": m.payload.hex(),
        "body": _body_json(m),
        "signature": m.signature.hex(),
        "size": len(m.raw),
    }
    if status is not None:
        doc["state"] = status["state"]
        for key in ("order", "reason"):
            if key in status:
                doc[key] = status[key]
    return doc


def balance_json(balance: Balance) -> dict[str, Any]:
    return {
        "owner": balance.owner.hex(),
        "amount": balance.amount,
        "tokens": {tid.hex(): n for tid, n in balance.tokens.items()},
        "outputs": balance.outputs,
    }
