"""The flows and policy benchmarks run in quick mode and report the keys issue 6 names."""

from __future__ import annotations

import os

import pytest

from simtrust.benchmark import load_bench
from tests.policy.conftest import require_binaries


@pytest.mark.slow
def test_quick_flows_bench_reports_its_keys() -> None:
    require_binaries("nfcapd", "nfdump")
    result = load_bench("flows").run(quick=True).to_json()
    metrics = result["metrics"]
    for key in ("records_per_s", "decode_only_per_s", "decode_map_policy_per_s"):
        assert metrics[key] > 0, key
    assert result["limits"]["raw_unpack_records_per_s"] > 0
    assert {} == result["notes"]["decoder_drops"]
    assert result["notes"]["records"] == 20_000
    # side by side with nfdump's nfcapd (#22): the same stream into both receivers
    assert result["metrics"]["collector_records_per_cpu_s"] > 0
    assert result["metrics"]["collector_full_path_records_per_cpu_s"] > 0
    assert result["limits"]["nfcapd_records_per_cpu_s"] > 0
    assert result["ratios"]["vs_nfcapd"] > 0
    side = result["notes"]["vs_nfcapd"]
    assert side["compared_at_records_per_s"] > 0
    assert {"nfcapd", "count", "full"} == set(side["runs"])
    for runs in side["runs"].values():
        assert all(0 < r["received"] <= side["stream_records"] for r in runs)


@pytest.mark.slow
def test_quick_policy_bench_reports_its_keys() -> None:
    result = load_bench("policy").run(quick=True).to_json()
    metrics = result["metrics"]
    for key in ("decisions_per_s", "p99_s", "http_decisions_per_s", "http_p99_s"):
        assert metrics[key] > 0, key
    assert metrics["p99_s"] < 0.001, "in-process p99 well under a millisecond"
    assert 0.9 < result["notes"]["in_process_allowed_fraction"] < 1.0


def test_nfcapd_receiver_survives_its_child_reaped_elsewhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another library's child watcher in the same process may reap nfcapd between the
    bench's SIGTERM and its wait4; the receiver still reports the records nfcapd wrote
    and the CPU it had used once its queue was drained, instead of failing."""
    require_binaries("nfcapd", "nfdump")
    bench = load_bench("flows")
    rx = bench._Receiver("nfcapd")
    try:
        def reaped_elsewhere(pid: int, options: int) -> None:
            os.waitpid(pid, 0)  # what the foreign watcher does
            raise ChildProcessError(10, "No child processes")

        monkeypatch.setattr(bench.os, "wait4", reaped_elsewhere)
        total, cpu = rx.finish()
        assert total == 0  # nothing was sent
        assert cpu >= 0.0
        assert rx.proc.returncode == 0
        assert rx.proc.poll() == 0
    finally:
        rx.close()
