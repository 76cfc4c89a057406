"""Identity as a service: KYC into a SIM's wallet over OpenID4VCI, verified by a second operator
over OpenID4VP and paid per verification, and a partner reading a meter stream through a
delegated capability until it is revoked.

The wallet here is the SIM itself (its key in the secure element); the HTTP
legs run against a real wallet library in tests/identity/test_oid4vc_interop.py.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from simtrust.identity import (
    KYC_VCT,
    PRE_AUTHORIZED_GRANT,
    capability_token,
    did_key,
    grant_capability,
    key_proof,
    open_request_object,
    present_sd_jwt,
    provision_sim_identity,
    verification_statement,
)
from simtrust.identity import Ed25519Signer as HolderKey
from simtrust.ledger import Ed25519Signer
from simtrust.settlement import SettlementTokens

ORDER = 45

ICCID = "8944100000000000456"
STREAM = "urn:simtrust:stream:meter-42"
PRICE = 50  # minor units per verification


def _anchored(service: Any, start: Any, end: Any) -> Any:
    """The period's receipts once anchored: a receipt refused by the ledger's issuer quota
    (earlier demo steps issue many messages) stays pending and is sent again."""
    for _ in range(100):
        rows = service.receipts.between(start, end)
        if all(anchored for _, anchored in rows):
            break
        service.receipts.anchor_pending()
        time.sleep(0.05)
    return rows


def run(ctx: Any) -> dict[str, Any]:
    service = ctx.rt.identity
    now = service.now()
    sim = provision_sim_identity(service.element(ICCID), network=service.network, now=now)
    service.submit_operation(sim.operation)
    # 1. OpenID4VCI: operator A offers the KYC credential; the SIM's wallet redeems the
    #    pre-authorized code with the PIN it got out of band, proves its key, receives it.
    issuer = service.oid4vci
    offer = issuer.create_offer(
        "SimtrustKyc",
        {"kyc_level": "substantial", "given_name": "Ada", "nationality": "GB",
         "age_over_18": True},
        now=now, tx_code=True,
    )  # fmt: skip
    grant = offer["credentialOffer"]["grants"][PRE_AUTHORIZED_GRANT]
    access = issuer.redeem(
        {"pre-authorized_code": grant["pre-authorized_code"], "tx_code": offer["txCode"]}, now=now
    )
    nonce = issuer.nonce(now=now)["c_nonce"]
    proof = key_proof(sim.signer, issuer_url=issuer.issuer_url, nonce=nonce, now=now)
    response = issuer.credential(
        access["access_token"],
        {"credential_configuration_id": "SimtrustKyc", "proofs": {"jwt": [proof]}},
        now=now,
    )
    kyc = response["credentials"][0]["credential"]
    ctx.say(f"OpenID4VCI: KYC SD-JWT issued into the SIM's wallet ({len(kyc)} bytes)")
    # 2. OpenID4VP: operator B asks (DCQL) for age and nationality only; the wallet checks
    #    the signed request object and answers with a key-bound presentation (direct_post).
    operator_b = Ed25519Signer.generate()
    relying_party = did_key(operator_b.public_key)
    query = {"credentials": [{
        "id": "kyc", "format": "dc+sd-jwt", "meta": {"vct_values": [KYC_VCT]},
        "claims": [{"path": ["age_over_18"], "values": [True]}, {"path": ["nationality"]}],
    }]}  # fmt: skip
    request = service.oid4vp.create_request(relying_party, now=now, dcql_query=query)
    asked = open_request_object(service.oid4vp.request_object(request["id"], now=now),
                                service.resolver)  # fmt: skip
    wanted = [claim["path"][0] for claim in asked["dcql_query"]["credentials"][0]["claims"]]
    shown = present_sd_jwt(kyc, disclose=wanted, holder=sim.signer, nonce=asked["nonce"],
                           audience=asked["client_id"], now=now)  # fmt: skip
    service.oid4vp.respond(
        request["id"], {"vp_token": json.dumps({"kyc": [shown]}), "state": asked["state"]},
        now=now,
    )
    outcome = service.oid4vp.result(request["id"], relying_party)
    disclosed = sorted(set(outcome["credentials"]["kyc"][0]["claims"]) & {"given_name",
                                                                          *wanted})  # fmt: skip
    ctx.say(f"OpenID4VP: operator B verified={outcome['status']}, disclosed {disclosed}")
    # 3. The receipt (relying party, issuing operator; no personal data) is on the ledger;
    #    the period's statement bills it and operator B pays operator A in tokens.
    start, end = now - timedelta(days=1), now + timedelta(days=1)
    statement = verification_statement(
        _anchored(service, start, end), start=start, end=end,
        price_minor_units=PRICE, currency="EUR",
    )  # fmt: skip
    line = next(line for line in statement["lines"] if line["relyingParty"] == relying_party)
    node = ctx.rt.ledger
    tokens = SettlementTokens(node)
    token = tokens.create(node.signer, max_supply=10**9, initial=10**6).token_id
    node.transfer(node.signer, operator_b.public_key, 10_000, token=token)
    payee = service.issuer().public_key
    before = node.balance(payee).tokens.get(token, 0)
    node.transfer(operator_b, payee, line["amountMinorUnits"], token=token)
    paid = node.balance(payee).tokens.get(token, 0) - before
    ctx.say(f"statement: {line['verifications']} verification(s) -> operator A paid {paid} "
            f"(token {token.hex()[:12]}...)")  # fmt: skip
    # 4. Capabilities: the operator grants a partner read access to a meter stream; the partner
    #    delegates to a contractor; revoking the root cuts the whole chain off.
    partner, contractor = HolderKey.generate(), HolderKey.generate()
    root = service.grant_capability(grantee=did_key(partner.public_key), resource=STREAM,
                                    actions=["read"], delegation_depth=1)  # fmt: skip
    child = grant_capability(partner, grantee=did_key(contractor.public_key),
                             resource=STREAM, actions=["read"], now=now,
                             valid_until=now + timedelta(hours=1), parent=root)  # fmt: skip
    chain = capability_token([root, child])
    before_revocation = service.capabilities.check(chain, action="read", resource=STREAM, now=now)
    service.set_status(root["credentialStatus"], True)
    after = service.capabilities.check(chain, action="read", resource=STREAM, now=now)
    ctx.say(f"capability chain: contractor reads {STREAM}: {before_revocation.permit}; "
            f"after revocation: {after.permit} ({after.reason.split(':')[0]})")  # fmt: skip
    if not (outcome["status"] == "verified" and line["verifications"] >= 1 and paid == PRICE
            and before_revocation.permit and not after.permit):  # fmt: skip
        raise RuntimeError("identity service demo misbehaved")
    return {
        "kyc_over_oid4vci": True,
        "oid4vp_status": outcome["status"],
        "disclosed": disclosed,
        "statement_total_minor_units": statement["totalMinorUnits"],
        "paid_minor_units": paid,
        "capability_before_revocation": before_revocation.permit,
        "capability_after_revocation": after.permit,
    }
