"""Identity as a service: OpenID4VP verifications and capability checks per second.

Figures (issue 18): ``metrics.oid4vp_per_s`` — SD-JWT VC KYC presentations
answered over OpenID4VP and verified in full by the service (``direct_post``
handling: state, DCQL match, issuer signature, disclosures, key binding with
nonce and audience, status list, the relying party's receipt written to the
store and submitted to the ledger, the sealed result), each for its own
request and nonce (``notes.oid4vp_receipts_pending``: receipts the ledger's
issuer quota deferred); ``metrics.capability_checks_per_s`` — decisions of the
enforcement point on a delegated two-link capability chain whose verification
is cached (action, resource, window checked each time), target ≥ 10,000/s;
``metrics.capability_verify_per_s`` — the same decision with the cache off
(both credentials' proofs, data model and status verified every time);
``metrics.capability_receipted_per_s`` — what the API's enforcement point does
per request besides HTTP: the cached decision, its audit record written
durably (one SQLite commit with fsync each) and its receipt signed
(``simtrust.audit.receipts``).
Limits measured in the same run: ``limits.ed25519_verify_per_s`` (the
libsodium verify every proof uses) and ``limits.sha256_1k_per_s`` (SHA-256
of a 1 KiB token, what a cached check hashes). Ratios put each figure over
its limit. SQLite store in a temporary directory, one core.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from simtrust.audit.receipts import record_decision
from simtrust.benchmark import BenchResult, rate
from simtrust.identity import (
    KYC_VCT,
    CapabilityEnforcer,
    Ed25519Signer,
    KycIssuer,
    capability_token,
    did_key,
    grant_capability,
    present_sd_jwt,
)
from simtrust.ledger import verify_ed25519
from simtrust.runtime import Runtime

NAME = "identity-service"
DESCRIPTION = "OpenID4VP verifications/s and capability enforcement checks/s (cached and not)"


def _oid4vp_rate(rt: Runtime, count: int) -> float:
    service = rt.identity
    now = service.now()
    holder = Ed25519Signer.generate()
    kyc = KycIssuer(service.issuer(), service.status, service.status_list("revocation"))
    token, _ = kyc.issue(
        subject=did_key(holder.public_key), holder_key=holder.public_key,
        attributes={"given_name": "Ada", "age_over_18": True}, level="substantial", now=now,
    )  # fmt: skip
    query = {"credentials": [{"id": "kyc", "format": "dc+sd-jwt",
                              "meta": {"vct_values": [KYC_VCT]},
                              "claims": [{"path": ["age_over_18"]}]}]}  # fmt: skip
    answers = []
    for _ in range(count):
        made = service.oid4vp.create_request("did:web:partner.example", now=now, dcql_query=query)
        row = rt.db.query_one(
            "SELECT nonce, state FROM identity_oid4vp_request WHERE request_id = ?", (made["id"],)
        )
        assert row is not None
        vp = present_sd_jwt(token, disclose=["age_over_18"], holder=holder, nonce=str(row[0]),
                            audience=made["clientId"], now=now)  # fmt: skip
        answers.append((made["id"], {"vp_token": '{"kyc": ["' + vp + '"]}', "state": str(row[1])}))
    start = time.perf_counter()
    for request_id, form in answers:
        service.oid4vp.respond(request_id, form, now=now)
    return count / (time.perf_counter() - start)


def run(quick: bool) -> BenchResult:
    seconds = 0.3 if quick else 2.0
    result = BenchResult(NAME)
    with tempfile.TemporaryDirectory() as folder:
        rt = Runtime.ephemeral(Path(folder) / "home")
        try:
            service = rt.identity
            now = service.now()
            partner, contractor = Ed25519Signer.generate(), Ed25519Signer.generate()
            root = service.grant_capability(
                grantee=did_key(partner.public_key), resource="urn:simtrust:stream:meter-42",
                actions=["read"], delegation_depth=1,
            )  # fmt: skip
            child = grant_capability(
                partner, grantee=did_key(contractor.public_key),
                resource="urn:simtrust:stream:meter-42", actions=["read"], now=now,
                valid_until=now + timedelta(days=1), parent=root,
            )  # fmt: skip
            token = capability_token([root, child])
            uncached = CapabilityEnforcer(
                audience=service.public_url, owner_of=lambda _: service.issuer().controller,
                verify_credential=service.verify_credential,
                verify_presentation=lambda vp, d: service.verify_presentation(
                    vp, challenge=None, domain=d),
                status_epoch=lambda: service.status_epoch, max_age=0.0,
            )  # fmt: skip
            enforcer = service.capabilities

            def cached() -> None:
                decision = enforcer.check(
                    token, action="read", resource="urn:simtrust:stream:meter-42", now=now
                )
                assert decision.permit, decision.reason

            def full() -> None:
                decision = uncached.check(
                    token, action="read", resource="urn:simtrust:stream:meter-42", now=now
                )
                assert decision.permit, decision.reason

            def receipted() -> None:
                decision = enforcer.check(
                    token, action="read", resource="urn:simtrust:stream:meter-42", now=now
                )
                record_decision(rt.audit, rt.ledger.signer, requester="bench",
                                resource="urn:simtrust:stream:meter-42", action="read",
                                decision=decision.to_json())  # fmt: skip

            message, signature, public = _signed()
            kib = bytes(1024)
            best: dict[str, float] = {}
            rounds = 2 if quick else 3
            for _ in range(rounds):
                for name, fn, batch in (
                    ("capability_checks_per_s", cached, 1000),
                    ("capability_verify_per_s", full, 20),
                    ("capability_receipted_per_s", receipted, 50),
                    ("ed25519_verify_per_s", lambda: verify_ed25519(public, signature, message),
                     500),
                    ("sha256_1k_per_s", lambda: hashlib.sha256(kib).hexdigest(), 1000),
                ):  # fmt: skip
                    best[name] = max(best.get(name, 0.0), rate(fn, min_seconds=seconds,
                                                               batch=batch))  # fmt: skip
            result.metrics["oid4vp_per_s"] = round(_oid4vp_rate(rt, 40 if quick else 300), 1)
            for name in ("capability_checks_per_s", "capability_verify_per_s",
                         "capability_receipted_per_s"):
                result.metrics[name] = round(best[name], 1)
            for name in ("ed25519_verify_per_s", "sha256_1k_per_s"):
                result.limits[name] = round(best[name], 1)
            result.ratio("oid4vp_to_raw", "oid4vp_per_s", "ed25519_verify_per_s")
            result.ratio("capability_verify_to_raw", "capability_verify_per_s",
                         "ed25519_verify_per_s")  # fmt: skip
            result.ratio("capability_checks_to_sha256", "capability_checks_per_s",
                         "sha256_1k_per_s")  # fmt: skip
            result.notes["capability_target_per_s"] = 10_000
            result.notes["store"] = "sqlite"
            result.notes["token_bytes"] = len(token)
            # Receipts the ledger's issuer quota refused stay pending (sent again later);
            # a run where many were refused did less ledger work per verification.
            result.notes["oid4vp_receipts_pending"] = len(service.receipts.pending())
        finally:
            rt.close()
    return result


def _signed() -> tuple[bytes, bytes, bytes]:
    signer = Ed25519Signer.generate()
    message = bytes(64)
    return message, signer.sign(message), signer.public_key
