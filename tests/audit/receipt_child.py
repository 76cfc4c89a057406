"""Child of the kill -9 receipt test: decide, record, print each receipt once recorded."""

from __future__ import annotations

import sys
from pathlib import Path

from simtrust.audit.receipts import record_decision
from simtrust.identity import Ed25519Signer, capability_token, did_key
from simtrust.runtime import Runtime


def main(home: Path) -> None:
    rt = Runtime.ephemeral(home)
    service = rt.identity
    partner = Ed25519Signer.from_seed(bytes(range(7, 39)))
    root = service.grant_capability(grantee=did_key(partner.public_key),
                                    resource="urn:simtrust:stream:m", actions=["read"])
    token = capability_token([root])
    n = 0
    while True:
        action = "read" if n % 2 == 0 else "write"  # permits and denials alike
        decision = service.capabilities.check(token, action=action,
                                              resource="urn:simtrust:stream:m", now=service.now())
        event, receipt = record_decision(rt.audit, rt.ledger.signer, requester="apikey:child",
                                         resource="urn:simtrust:stream:m", action=action,
                                         decision=decision.to_json())
        # The answer goes out only after the record is on disk.
        sys.stdout.write(f"ACK {event.event_id} {receipt}\n")
        sys.stdout.flush()
        n += 1


if __name__ == "__main__":
    main(Path(sys.argv[1]))
