"""The auc benchmark reports the figures issue 4 names, in the shared format."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from simtrust.subscriber.auc import KDF_BACKEND

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_auc.py"


def test_quick_run_reports_every_figure() -> None:
    spec = importlib.util.spec_from_file_location("bench_auc_under_test", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "auc" == module.NAME
    out = module.run(quick=True).to_json()
    metrics = {"eps_vectors_per_s", "fiveg_vectors_per_s", "tuak_vectors_per_s"}
    assert metrics <= set(out["metrics"])
    assert all(out["metrics"][m] > 0 for m in metrics)
    assert out["limits"]["aes_blocks_per_s"] > 0
    expected = out["metrics"]["eps_vectors_per_s"] / (out["limits"]["aes_blocks_per_s"] / 6)
    assert abs(round(expected, 4) - out["ratios"]["eps_to_bound"]) < 1e-3
    # Which key derivation produced the figures, so a Python-path run is not mistaken.
    assert KDF_BACKEND == out["notes"]["kdf"]
    assert out["notes"]["kdf"] in {"native", "python"}
