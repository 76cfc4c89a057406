"""Fixtures of the detection tests: the IoT Sentinel captures and a few chosen files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sentinel(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "pcaps" / "iot-sentinel"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def hue_capture(sentinel: Path) -> Path:
    return sorted((sentinel / "HueBridge").glob("*.pcap"))[0]
