"""The identity demo step runs end to end and ends with the revoked credentials rejected."""

from __future__ import annotations

from pathlib import Path

from simtrust.demo import DemoContext
from simtrust.demo import identity as step
from simtrust.runtime import Runtime


def test_identity_demo_step(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    said: list[str] = []
    report = step.run(DemoContext(sqlite_runtime, tmp_path, said.append))
    assert report["device_certificate_verified"] is True
    assert ["age_over_18", "nationality"] == report["kyc_disclosed"]
    assert ("revoked", "revoked") == (
        report["kyc_after_revocation"],
        report["certificate_after_revocation"],
    )
    assert report["receipt_anchored_order"] > 0
    assert not any("Lovelace" in line for line in said)
    assert 40 == step.ORDER
