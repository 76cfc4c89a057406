"""The latency probe: stage timestamps of sampled local messages, bounded memory."""

from __future__ import annotations

from simtrust.ledger import FinalizedMessage
from simtrust.ledger.net._probe import MAX_TRACKED, SAMPLE, LatencyProbe


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _fm(mid: bytes) -> FinalizedMessage:
    fm = FinalizedMessage.__new__(FinalizedMessage)
    fm.message_id = mid
    return fm


def test_stages_of_a_sampled_message_are_reported() -> None:
    clock = _Clock()
    probe = LatencyProbe(clock)
    sampled, skipped = bytes([0]) + b"a" * 31, bytes([1]) + b"b" * 31
    assert 0 == sampled[0] % SAMPLE
    assert 0 != skipped[0] % SAMPLE
    probe.admitted([sampled, skipped])
    clock.now += 0.05
    probe.proposed([sampled, skipped])
    clock.now += 0.3
    probe.committed([sampled])
    clock.now += 0.01
    probe.apply(_fm(sampled))
    probe.apply(_fm(skipped))
    report = probe.report()
    assert 1 == report["admit_to_apply"]["count"]
    assert abs(report["admit_to_propose"]["p50_s"] - 0.05) < 1e-6
    assert abs(report["propose_to_commit"]["p50_s"] - 0.3) < 1e-6
    assert abs(report["commit_to_apply"]["p50_s"] - 0.01) < 1e-6
    assert 0 == report["tracked"]
    clock.now += 60
    assert probe.report()["admit_to_apply"] is None  # outside the window


def test_tracking_is_bounded_and_stale_samples_are_dropped() -> None:
    clock = _Clock()
    probe = LatencyProbe(clock)
    ids = [bytes([0]) + i.to_bytes(31, "big") for i in range(MAX_TRACKED + 10)]
    probe.admitted(ids)
    assert MAX_TRACKED == probe.report()["tracked"]
    clock.now += 1000
    probe.admitted([bytes([0]) + b"z" * 31])
    assert 1 == probe.report()["tracked"]
