"""Tables of the detection component: the per-SIM event stream shared by processes."""

from __future__ import annotations

from simtrust.store import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS = [
    Migration(
        "detect",
        1,
        "per-SIM events handed from API workers to the serving process's detectors",
        """
        CREATE TABLE detect_sim_events (
            seq {serial},
            origin INTEGER NOT NULL,
            body TEXT NOT NULL
        )
        """,
    ),
]
