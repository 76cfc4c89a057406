"""A reduced evaluation (a few device types and captures) holds the recall and false-alarm
bounds the full `simtrust detect evaluate` reports on."""

from __future__ import annotations

from pathlib import Path

import pytest

from simtrust.testing.detect.evaluation import VARIANTS, discover, evaluate
from simtrust.testing.detect.plots import write_plots

TYPES = ["Aria", "TP-LinkPlugHS100", "WeMoSwitch"]
PICK = {"scan-20pps", "udp-400pps", "gre-300pps", "flood-150pps", "beacon-60s-25pct"}


@pytest.fixture(scope="module")
def report(sentinel: Path) -> dict[str, object]:
    variants = [v for v in VARIANTS if v.name in PICK]
    return evaluate(sentinel, device_types=TYPES, variants=variants, max_captures=6).to_json()


def test_reduced_evaluation_meets_recall_and_false_alarm_bounds(report: dict) -> None:
    assert report["device_types"] == TYPES
    for name, cls in report["classes"].items():
        assert cls["recall"] >= 0.95, f"{name}: {cls}"
        assert cls["precision"] is None or cls["precision"] >= 0.95
    benign = report["benign"]
    assert benign["runs"] == 3 * 6
    assert benign["false_alarms"] == 0, benign["examples"]
    assert benign["device_days"] > 0


def test_time_to_detect_is_bounded_by_the_meter_timeouts(report: dict) -> None:
    # Records reach the detector at the latest one idle (15 s) or active (60 s) timeout
    # after the evidence; floods and scans are caught within about a minute.
    assert report["classes"]["scan"]["time_to_detect_s"]["max"] <= 61
    assert report["classes"]["ddos"]["time_to_detect_s"]["max"] <= 75


def test_discover_lists_device_type_folders(sentinel: Path) -> None:
    corpus = discover(sentinel)
    assert len(corpus) >= 16
    assert all(files for files in corpus.values())


@pytest.mark.slow
def test_plots_are_png(sentinel: Path, tmp_path: Path) -> None:

    paths = write_plots(sentinel, tmp_path, device_type="TP-LinkPlugHS100")
    assert [p.name for p in paths] == ["detect-baseline.png", "detect-alert.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
