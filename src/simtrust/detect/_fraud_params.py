"""Thresholds of the fraud detectors and the places impossible travel is measured between.

Places are the serving country's centroid (``data/mcc_centroids.json``, MCC →
country, sources named there) with an uncertainty radius; distances are great
circles on the IUGG mean Earth sphere (docs/decisions/detect-fraud-thresholds.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

__all__ = ["FraudThresholds", "Place", "country_places", "great_circle_km"]

_EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius


#: A place: (latitude°, longitude°, uncertainty radius km, label).
Place = tuple[float, float, float, str]


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine great-circle distance on the mean Earth sphere, in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def country_places(radius_factor: float = 1.5) -> Mapping[str, Place]:
    """MCC → (lat, lon, uncertainty radius km, ISO country) from the shipped table."""
    raw = resources.files("simtrust.detect").joinpath("data/mcc_centroids.json").read_text()
    doc = json.loads(raw)
    out: dict[str, Place] = {}
    for iso, c in doc["countries"].items():
        radius = radius_factor * math.sqrt(float(c["area_km2"]) / math.pi)
        place = (float(c["lat"]), float(c["lon"]), radius, iso)
        for mcc in c["mcc"]:
            out[mcc] = place
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class FraudThresholds:
    """Thresholds of the fraud detectors (``docs/decisions/detect-fraud-thresholds.md``)."""

    max_speed_kmh: float = 1000.0
    min_distance_km: float = 200.0
    min_transfer_s: float = 1800.0
    radius_factor: float = 1.5
    cell_radius_km: float = 35.0
    network_alternation_s: float = 6 * 3600.0
    imei_alternation_s: float = 24 * 3600.0
    auts_failures: int = 3
    auts_window_s: float = 24 * 3600.0
    session_stale_s: float = 2 * 3600.0
    churn_imeis: int = 3
    churn_window_s: float = 7 * 86_400.0
    flap_returns: int = 4
    flap_window_s: float = 12 * 3600.0
    flap_min_span_s: float = 2 * 3600.0
    cooldown_s: float = 6 * 3600.0
    volume_factor: float = 10.0
    volume_floor_octets: int = 50_000_000
    volume_min_days: int = 3
    cohort_factor: float = 20.0
    cohort_z: float = 3.0
    cohort_min_days: int = 100
    dest_learn_s: float = 2 * 86_400.0
    dest_new_per_day: int = 20
    dest_max_usual: int = 64
    session_factor: float = 5.0
    session_floor: int = 12
    session_min_days: int = 3
    voice_floor: int = 5
    voice_factor: float = 5.0
    voice_cohort_share: float = 0.05
    voice_min_days: int = 3
