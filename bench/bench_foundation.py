"""Foundation benchmark: audit appends, sealing, and authenticated API requests.

Figures sit beside this machine's SHA-256 and AES-GCM rates measured in the same run.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.audit import AuditEntry
from simtrust.benchmark import BenchResult, rate
from simtrust.runtime import Runtime

NAME = "foundation"
DESCRIPTION = "audit appends/s (batched and single), seals/s, authenticated GET/s"


def run(quick: bool = False) -> BenchResult:
    result = BenchResult(NAME)
    n = 2_000 if quick else 50_000
    seconds = 0.2 if quick else 1.0
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime.ephemeral(Path(tmp))
        try:
            entries = [AuditEntry("bench", "bench.event", f"thing:{i}", "info") for i in range(n)]
            start = time.perf_counter()
            for i in range(0, n, 500):
                rt.audit.append_many(entries[i : i + 500])
            result.metrics["audit_batched_per_s"] = round(n / (time.perf_counter() - start), 1)
            singles = n // 20
            start = time.perf_counter()
            for i in range(singles):
                rt.audit.append(actor="bench", action="bench.single", subject=f"s:{i}",
                                outcome="info")
            result.metrics["audit_single_per_s"] = round(singles / (time.perf_counter() - start), 1)
            result.metrics["seal_per_s"] = round(
                rate(lambda: rt.keyring.seal(b"0" * 16, b"aad"), min_seconds=seconds), 1)
            key = rt.tenants.create_key("operator-admin", "bench")
            client = TestClient(create_app(rt))
            headers = {"Authorization": f"Bearer {key.secret}"}
            result.metrics["api_get_per_s"] = round(
                rate(lambda: client.get("/v1/tenants", headers=headers), min_seconds=seconds,
                     batch=20), 1)
        finally:
            rt.close()
    payload = b"x" * 200
    result.limits["sha256_200b_per_s"] = round(
        rate(lambda: hashlib.sha256(payload).digest(), min_seconds=seconds), 1)
    gcm = AESGCM(bytes(32))
    nonce = bytes(12)
    result.limits["aes_gcm_16b_per_s"] = round(
        rate(lambda: gcm.encrypt(nonce, b"0" * 16, b"aad"), min_seconds=seconds), 1)
    result.ratio("audit_batched_to_sha256", "audit_batched_per_s", "sha256_200b_per_s")
    result.ratio("seal_to_gcm", "seal_per_s", "aes_gcm_16b_per_s", divisor=2)
    result.notes["store"] = "sqlite"
    result.notes["records"] = n
    return result
