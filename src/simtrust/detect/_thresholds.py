"""Alarm thresholds of the detectors (docs/decisions/detect-thresholds.md)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Thresholds"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Alarm thresholds: ``max(floor, factor × baseline maximum)`` per feature.

    Floors are physical facts about attacks, not about any capture: a Mirai
    scanner probes hundreds of addresses a minute, a flood sends hundreds of
    packets a second; a sensor, plug or camera reaches a handful of services.
    """

    scan_floor: float = 16.0
    scan_factor: float = 4.0
    breadth_floor: float = 64.0
    breadth_factor: float = 4.0
    ddos_packets_floor: float = 1500.0
    ddos_flows_floor: float = 150.0
    ddos_bytes_floor: float = 4_000_000.0
    ddos_factor: float = 10.0
    ddos_known_factor: float = 5.0
    volume_floor_trained: float = 5_000_000.0
    volume_floor_default: float = 60_000_000.0
    volume_factor: float = 10.0
    beacon_min_contacts: int = 7
    beacon_max_cv: float = 0.2
    beacon_min_period_s: float = 10.0
    beacon_max_period_s: float = 6 * 3600.0
    beacon_merge_s: float = 2.0
    destination_min_windows: int = 240
    time_min_days: int = 7
    cooldown_s: float = 600.0
