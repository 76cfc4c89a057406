"""The audit trail: verify the chain, anchor it on the ledger, prove an event, catch tampering."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from simtrust.audit.anchoring import anchor_pending, prove_event, verify_event_proof
from simtrust.runtime import Runtime

ORDER = 90


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    records = rt.audit.count()
    breaks = rt.audit.verify()
    ctx.say(f"audit chain: {records} records, intact={not breaks}")
    if breaks:
        raise RuntimeError(f"audit chain broken: {breaks[0].detail}")
    actions: dict[str, int] = {}
    for event in rt.audit.iter_all():
        actions[event.action] = actions.get(event.action, 0) + 1
    receipt = anchor_pending(rt.audit, rt.ledger)
    anchored = receipt.to_json() if receipt else {"anchored": 0}
    if receipt is not None:
        ctx.say(f"anchored records {receipt.first}..{receipt.last} as Merkle root "
                f"{receipt.root.hex()[:16]}… in ledger message {receipt.message_id.hex()[:16]}…")
    sample = next(iter(rt.audit.query(limit=1)))
    proof = prove_event(rt.audit, rt.ledger, sample.event_id)
    verified = verify_event_proof(proof, event=sample)
    ctx.say(f"inclusion proof of event {sample.seq} ({len(proof['proof']['audit_path'])} hashes) "
            f"verified against anchor {verified.anchor_message_id.hex()[:16]}…")
    # Tamper with a copy of the chain to show what verification reports.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Runtime.ephemeral(Path(tmp))
        try:
            for n in range(5):
                copy.audit.append(actor="demo", action="demo.event", subject=f"thing:{n}",
                                  outcome="info")
            copy.db.execute("UPDATE audit_events SET outcome = 'deny' WHERE seq = 3")
            copy.db.execute("DELETE FROM audit_events WHERE seq = 5")
            copy.audit.append(actor="demo", action="demo.event", subject="thing:late",
                              outcome="info")
            tampered = copy.audit.verify()
        finally:
            copy.close()
    for b in tampered:
        ctx.say(f"tampered copy: {b.problem} at record {b.seq}: {b.detail}")
    return {
        "records": records,
        "intact": True,
        "anchor": anchored,
        "proof_verified_for_seq": sample.seq,
        "actions": actions,
        "tamper_demo": [{"seq": b.seq, "problem": b.problem} for b in tampered],
    }
