"""Identity: a SIM DID, a device certificate, reusable KYC across two operators, revocation."""

from __future__ import annotations

import secrets
from typing import Any

from simtrust.identity import (
    KycIssuer,
    KycVerifier,
    VerificationFailed,
    did_key,
    present_sd_jwt,
    provision_sim_identity,
    verification_report,
)

ORDER = 40

ICCID = "8944100000000000123"
KYC = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1815-12-10",
    "nationality": "GB",
    "age_over_18": True,
}


def run(ctx: Any) -> dict[str, Any]:
    service = ctx.rt.identity
    now = service.now()
    # 1. The SIM's DID: key generated inside its secure element, created on the ledger.
    sim = provision_sim_identity(service.element(ICCID), network=service.network, now=now)
    created = service.submit_operation(sim.operation)
    ctx.say(f"SIM {ICCID} -> {sim.did} (ledger: {created.outcome}, version {created.version})")
    # 2. Operator A (the platform issuer) certifies the device behind the SIM.
    issuer = service.issuer()
    certificate = service.issue(
        {
            "@context": [
                "https://www.w3.org/ns/credentials/v2",
                "https://www.w3.org/ns/credentials/examples/v2",
            ],
            "id": f"urn:uuid:{secrets.token_hex(16)}",
            "type": ["VerifiableCredential", "DeviceCertificate"],
            "validFrom": "2026-01-01T00:00:00Z",
            "credentialSubject": {"id": sim.did, "imeiTac": "35209900", "model": "meter-x1"},
        },
        {"credentialStatus": {"type": "BitstringStatusListEntry"}},
    )
    report = verification_report(lambda: service.verify_credential(certificate))
    ctx.say(f"device certificate by {issuer.controller}: verified={report['verified']}")
    # 3. Operator A runs KYC once and issues an SD-JWT bound to the SIM's key.
    revocation_list = service.status_list("revocation")
    token, entry = KycIssuer(issuer, service.status, revocation_list).issue(
        subject=sim.did,
        holder_key=sim.signer.public_key,
        attributes=KYC,
        level="substantial",
        now=now,
    )
    ctx.say(f"KYC credential issued ({len(token)} bytes; attributes hidden behind digests)")
    # 4. Operator B verifies a presentation that discloses only what it needs.
    operator_b = did_key(service.element("operator-b").generate_key("verifier"))
    verifier = KycVerifier(
        operator_b,
        resolver=service.resolver,
        status=service.status_checker,
        receipts=service.receipts,
    )
    nonce = secrets.token_urlsafe(16)
    shown = present_sd_jwt(
        token,
        disclose=["age_over_18", "nationality"],
        holder=sim.signer,
        nonce=nonce,
        audience=operator_b,
        now=service.now(),
    )
    result, receipt = verifier.verify(
        shown, nonce=nonce, now=service.now(), required=["age_over_18"]
    )
    anchor = service.receipts.anchored_in(receipt.digest)
    disclosed = ", ".join(sorted(result.disclosed))
    ctx.say(f"operator B verified KYC without redoing it; disclosed: {disclosed}")
    ctx.say(
        f"receipt {receipt.digest[:16]}... anchored at ledger order {anchor[1] if anchor else None}"
    )
    # 5. Operator A revokes; operator B's next verification is rejected, naming the list.
    service.set_status(entry, True)
    service.set_status(certificate["credentialStatus"], True)
    nonce = secrets.token_urlsafe(16)
    again = present_sd_jwt(
        token,
        disclose=["age_over_18"],
        holder=sim.signer,
        nonce=nonce,
        audience=operator_b,
        now=service.now(),
    )
    try:
        verifier.verify(again, nonce=nonce, now=service.now())
    except VerificationFailed as exc:
        rejected = exc.reason
        ctx.say(
            f"after revocation: rejected ({exc.reason}, list {exc.context['statusListCredential']})"
        )
    else:
        raise RuntimeError("a revoked KYC credential was accepted")
    cert_after = verification_report(lambda: service.verify_credential(certificate))
    ctx.say(f"device certificate after revocation: verified={cert_after['verified']}")
    if not report["verified"] or cert_after["verified"] or anchor is None:
        raise RuntimeError("identity demo misbehaved")
    return {
        "sim_did": sim.did,
        "issuer": issuer.controller,
        "device_certificate_verified": report["verified"],
        "kyc_disclosed": sorted(result.disclosed),
        "receipt": receipt.digest,
        "receipt_anchored_order": anchor[1],
        "kyc_after_revocation": rejected,
        "certificate_after_revocation": cert_after["errors"][0]["reason"],
    }
