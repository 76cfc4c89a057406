"""The settlement demo step runs on its own: reconciliation with the injected
discrepancies, netting, token settlement that follows the positions, an SLA credit
paid through a signed credit note."""

from __future__ import annotations

from pathlib import Path

from simtrust.demo import DemoContext
from simtrust.demo import settlement as step
from simtrust.runtime import Runtime


def test_settlement_step(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path)
    try:
        result = step.run(DemoContext(rt=rt, home=tmp_path, say=lambda _: None))
    finally:
        rt.close()
    counts = result["reconciliation"]
    assert (2, 1, 1) == (counts["partial"], counts["visited-only"], counts["duplicate"])
    assert 0 == sum(result["netting"]["positions"].values())
    assert result["token_moves"] == result["netting"]["positions"]
    assert len(result["netting"]["transfers"]) <= 2
    assert 87_500 == result["sla_credit_minor_units"]
    assert 87_500 == result["sla_credit_paid"]  # the signed credit note, paid in the token
    assert Path(result["chart"]).stat().st_size > 0
