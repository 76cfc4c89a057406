"""The usage counters volume and rate caps count against (:class:`UsageMeter`).

The counters live in two dicts, ``(imsi, period) → (bucket, octets)`` and
``(imsi, per_seconds) → (window, flows)``. The column batch path
(``policy/_batch.py``) keeps the counters of the devices it has seen in arrays
per device slot (``policy/_slots.py``) and writes them into the dicts only
when something else is about to read or write them: it hands the meter a
holder (:attr:`UsageMeter.held`), and every access to the dicts through the
meter first asks the holder to write what it holds (:meth:`UsageMeter.sync`).
docs/decisions/flows-batch-path.md says why.
"""

from __future__ import annotations

import threading
from typing import Protocol

from simtrust.domain import ImsiDigits

__all__ = ["CounterHolder", "UsageMeter"]


class CounterHolder(Protocol):
    """Counters held outside the dicts: ``flush`` writes them into the meter's dicts."""

    def flush(self, meter: UsageMeter) -> None: ...


class UsageMeter:
    """Per-device byte counters per local hour/day/month and flow-start counters.

    Buckets are keyed by the period they fall in (in the device's zone), so a
    new hour/day/month starts from zero without a sweeper; old buckets of a
    device are dropped when a newer one opens.
    """

    __slots__ = ("_flow_d", "_lock", "_volume_d", "held")

    def __init__(self) -> None:
        self._volume_d: dict[tuple[ImsiDigits, str], tuple[int, int]] = {}
        self._flow_d: dict[tuple[str, int], tuple[int, int]] = {}
        #: counters newer than the dicts' (the column batch path's arrays), or None
        self.held: CounterHolder | None = None
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Write the held counters into the dicts; they are the only state afterwards."""
        with self._lock:
            held, self.held = self.held, None
            if held is not None:
                held.flush(self)

    def raw(self) -> tuple[dict[tuple[ImsiDigits, str], tuple[int, int]],
                           dict[tuple[str, int], tuple[int, int]]]:
        """The volume and flow dicts as they are, held counters not written (the
        holder's own access)."""
        return self._volume_d, self._flow_d

    @property
    def lock(self) -> threading.Lock:
        """Held while counters move between the dicts and a holder."""
        return self._lock

    @property
    def _volume(self) -> dict[tuple[ImsiDigits, str], tuple[int, int]]:
        if self.held is not None:
            self.sync()
        return self._volume_d

    @property
    def _flows(self) -> dict[tuple[str, int], tuple[int, int]]:
        if self.held is not None:
            self.sync()
        return self._flow_d

    @property
    def volume(self) -> dict[tuple[ImsiDigits, str], tuple[int, int]]:
        """The live byte counters: ``(imsi, period) → (bucket, octets)``.

        Returned by reference on purpose: partitioned ingestion restores the
        counters it persisted and writes back the ones a batch touched.
        """
        return self._volume

    def add_bytes(self, imsi: ImsiDigits, period: str, bucket: int, octets: int) -> int:
        volume = self._volume
        key = (imsi, period)
        cur = volume.get(key)
        total = octets if cur is None or cur[0] != bucket else cur[1] + octets
        volume[key] = (bucket, total)
        return total

    def bytes_in(self, imsi: ImsiDigits, period: str, bucket: int) -> int:
        cur = self._volume.get((imsi, period))
        return cur[1] if cur is not None and cur[0] == bucket else 0

    def add_flow(self, imsi: ImsiDigits, per_seconds: int, window: int) -> int:
        flows = self._flows
        key = (imsi, per_seconds)
        cur = flows.get(key)
        total = 1 if cur is None or cur[0] != window else cur[1] + 1
        flows[key] = (window, total)
        return total

    def reset(self, imsi: ImsiDigits | None = None) -> None:
        volume, flows = self._volume, self._flows
        if imsi is None:
            volume.clear()
            flows.clear()
            return
        for kv in [k for k in volume if k[0] == imsi]:
            del volume[kv]
        for kf in [k for k in flows if k[0] == imsi]:
            del flows[kf]
