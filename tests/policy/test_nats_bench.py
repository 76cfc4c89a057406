"""``simtrust bench flows-nats`` in quick mode: every figure present, limits measured."""

from __future__ import annotations

from collections.abc import Callable

from simtrust.benchmark import load_bench


def test_quick_bench_reports_rates_against_raw_jetstream(
        require_service: Callable[[str], None]) -> None:
    require_service("nats")
    result = load_bench("flows-nats").run(True)
    doc = result.to_json()
    assert {"published_records_per_s", "consumed_records_per_s", "consumed_records_per_cpu_s",
            "end_to_end_records_per_s"} == set(doc["metrics"])
    assert {"raw_publish_records_per_s", "raw_fetch_ack_records_per_s"} == set(doc["limits"])
    assert all(v > 0 for v in (*doc["metrics"].values(), *doc["limits"].values()))
    assert 15_000 == doc["notes"]["records"]
