"""The ledger: data and value through the HTTP API, a double spend voided, the audit log anchored.

Uses the client the foundation step left in ``ctx.data`` (or builds one):
a tagged-data message and a transfer, both finalized by the node as sole
validator; a second spend of one output marked conflicting (white flag);
a native token minted under a foundry; the audit log so far anchored as a
Merkle root and one event proven against the anchor (docs/ledger.md).
"""

from __future__ import annotations

import warnings
from typing import Any

from simtrust.audit.anchoring import anchor_pending, prove_event, verify_event_proof
from simtrust.ledger import (
    Ed25519Signer,
    Foundry,
    Output,
    PayloadType,
    encode_transaction,
    foundry_token_id,
    output_id,
)

ORDER = 30


def _client(ctx: Any) -> tuple[Any, dict[str, str]]:
    client = ctx.data.get("client")
    key = ctx.data.get("operator_key")
    if client is None or key is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient  # noqa: PLC0415 - heavy: FastAPI's test client, only for the HTTP demo step

        from simtrust.api import create_app  # noqa: PLC0415 - heavy: FastAPI app and every route, only where it is served

        key = ctx.rt.tenants.create_key("operator-admin", "ledger demo").secret
        client = TestClient(create_app(ctx.rt))
    return client, {"Authorization": f"Bearer {key}"}


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    node = rt.ledger
    client, op = _client(ctx)
    sent = client.post("/v1/ledger/data", headers=op,
                       json={"tag": "meter-reading", "data": "meter 7: 12.4 kWh"})
    sent.raise_for_status()
    data_id = sent.json()["message_id"]
    ctx.say(f"tagged data {data_id[:16]}… finalized: "
            f"{client.get(f'/v1/ledger/messages/{data_id}/status', headers=op).json()['state']}")

    roaming = Ed25519Signer.generate()
    tx = node.transfer(node.signer, roaming.public_key, 25_000)
    balance = client.get(f"/v1/ledger/balances/{roaming.public_key.hex()}", headers=op).json()
    ctx.say(f"transfer {tx.hex()[:16]}… gives the partner operator {balance['amount']} units")

    # The partner spends its one output twice: the later spend is void (white flag).
    coin = output_id(tx, 0)
    first = node.issue(PayloadType.TRANSACTION, encode_transaction(
        [coin], [Output(node.signer.public_key, 25_000)]), signer=roaming).message_id or b""
    second = node.issue(PayloadType.TRANSACTION, encode_transaction(
        [coin], [Output(roaming.public_key, 25_000)]), signer=roaming).message_id or b""
    states = (node.status(first)["state"], node.status(second))
    ctx.say(f"double spend: first {states[0]}, second {states[1]['state']} "
            f"({states[1].get('reason')}) — it stays in the tangle")

    # An operator settlement token under a foundry.
    change = next(oid for oid, o in node.outputs(node.signer.public_key) if o.foundry is None)
    held = node.utxo.get(change)
    if held is None:
        raise RuntimeError("the operator holds no spendable output")
    token = foundry_token_id(change, 0)
    me = node.signer.public_key
    minted = node.issue(PayloadType.TRANSACTION, encode_transaction([change], [
        Output(me, 1, (), Foundry(token, 1_000_000, 10_000_000)),
        Output(me, held.amount - 1, ((token, 1_000_000),)),
    ])).message_id or b""
    node.transfer(node.signer, roaming.public_key, 5_000, token=token)
    tokens = node.balance(roaming.public_key).tokens
    ctx.say(f"minted 1,000,000 settlement tokens ({node.status(minted)['state']}); "
            f"partner holds {tokens.get(token, 0)}")

    receipt = anchor_pending(rt.audit, rt.ledger)
    if receipt is None:
        raise RuntimeError("the audit log has nothing to anchor")
    middle = (receipt.first + receipt.last) // 2
    event = rt.audit.query(after_seq=middle - 1, limit=1)[0]
    proof = prove_event(rt.audit, rt.ledger, event.event_id)
    verified = verify_event_proof(proof, trusted_issuer=node.signer.public_key, ledger=node)
    ctx.say(f"anchored audit records {receipt.first}..{receipt.last} under root "
            f"{receipt.root.hex()[:16]}…; event {verified.seq} proven "
            f"({len(proof['proof']['audit_path'])}-hash path)")
    info = node.info()
    ctx.say(f"ledger: {info['messages']} messages, {info['finalized']} finalized, "
            f"{info['tips']} tips")
    return {
        "data_message": data_id,
        "transfer": tx.hex(),
        "double_spend": {"first": node.status(first)["state"],
                         "second": states[1]["state"], "reason": states[1].get("reason")},
        "token": token.hex(),
        "partner_tokens": tokens.get(token, 0),
        "anchor": receipt.to_json(),
        "proven_event": verified.event_id,
        "messages": info["messages"],
    }
