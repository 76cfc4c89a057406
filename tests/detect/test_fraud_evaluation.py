"""The labelled fraud scenario generator, its evaluation and the fraud bench at tiny size."""

from __future__ import annotations

from pathlib import Path

from simtrust.benchmark import load_bench
from simtrust.detect import FraudDetector, country_places, great_circle_km
from simtrust.testing.fraud import evaluation, scenarios
from simtrust.testing.fraud.plots import write_plots
from simtrust.testing.fraud.scenarios import NEIGHBOURS, generate, merged


def test_generator_is_seeded_ordered_and_labelled() -> None:
    a = list(generate(7, 60, days=3))
    b = list(generate(7, 60, days=3))
    assert [s.events for s in a] == [s.events for s in b]
    assert {s.label for s in a} <= {"benign", "clone", "travel"}
    assert len({s.imsi for s in a}) == 60
    for s in a:
        assert all(x.at <= y.at for x, y in zip(s.events, s.events[1:], strict=False))
        if s.label != "benign":
            assert s.onset < float("inf")
    stream = merged(a)
    assert len(stream) == sum(len(s.events) for s in a)
    assert next(iter(generate(8, 5, days=3))).events != a[0].events


def test_neighbours_are_symmetric_and_known() -> None:
    isos = {p[3] for p in country_places().values()}
    for here, there in NEIGHBOURS.items():
        assert here in isos
        for other in there:
            assert other in isos
            assert here in NEIGHBOURS[other]


def test_border_crossings_are_never_provably_far() -> None:
    # every land border of the generator is within the detector's uncertainty
    places = {p[3]: p for p in country_places().values()}
    for here, there in NEIGHBOURS.items():
        for other in there:
            a, b = places[here], places[other]
            assert great_circle_km(a[0], a[1], b[0], b[1]) - a[2] - b[2] < 200


def test_evaluation_scores_a_small_run() -> None:
    figures = evaluation.evaluate(11, 300, days=4, benign_share=0.6)
    doc = figures.to_json()
    assert set(doc["recall"]) == {"clone", "travel"}
    assert doc["recall"]["clone"] > 0.8
    assert doc["recall"]["travel"] > 0.8
    assert figures.false_alarms <= 3
    assert doc["sim_days_benign"] > 0
    assert doc["events"] > 1000


def test_score_counts_false_alarms_on_benign_sims() -> None:
    run = list(generate(3, 20, days=2, benign_share=1.0))
    detector = FraudDetector()
    alerts = detector.observe_many(merged(run))
    figures = evaluation.score(run, alerts, 0)
    assert figures.recall == {}
    assert figures.false_alarms == len(alerts)
    assert figures.sim_days_benign == 40.0


def test_bench_runs_at_tiny_size() -> None:
    figures = load_bench("fraud").run(True).to_json()
    assert {"events_per_s", "bytes_per_sim", "recall_clone", "recall_travel",
            "false_alarms_per_1000_sim_days"} <= set(figures["metrics"])
    assert figures["limits"]["lookup_loop_events_per_s"] > 0
    assert 0 < figures["metrics"]["bytes_per_sim"] < 4096


def test_public_surface_sorted() -> None:
    for module in (evaluation, scenarios):
        assert list(module.__all__) == sorted(module.__all__)


def test_plots_are_png(tmp_path: Path) -> None:
    """The documentation's figures are drawn from a generated run (small here)."""
    paths = write_plots(tmp_path, seed=7, sims=300, days=3.0)
    assert ["fraud-recall.png", "fraud-time-to-detect.png"] == [p.name for p in paths]
    for path in paths:
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
