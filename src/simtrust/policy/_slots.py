"""The column batch path's usage counters, in arrays per device slot.

:meth:`PolicyEngine.ingest_columns` counts volume and rate per device of its
address index (``policy/_batch.py``). Reading every device's ``(bucket, count)``
from the :class:`UsageMeter` dicts into arrays and writing them back as tuples
at every batch cost about half of the batch path's policy time, so the counters
stay in arrays here between batches (bucket, count and whether one is stored,
per device slot and counter) and reach the dicts only when something else uses
them: :class:`SlotCounters` is the meter's holder (``UsageMeter.held``) while
its arrays are newer than the dicts, and the meter has it write the counters it
changed (and only those) before any access of the dicts through the meter. After
that the dicts are the state again and the arrays are read from them anew at
the next batch. docs/decisions/flows-batch-path.md says why and what it gave.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from simtrust.domain import ImsiDigits
from simtrust.policy._usage import UsageMeter

_counters_c: ModuleType | None
try:
    from simtrust.policy import _counters as _counters_c
except ImportError:  # built optionally (setup.py): the numpy path then
    _counters_c = None

__all__ = ["Counter", "SlotCounters", "count_rows"]

#: stored counts above this make a batch go through the per-record path (int64 room)
_LIMIT = 1 << 61
#: the count read for a stored value the arrays cannot hold (above _LIMIT: never used)
_UNUSABLE = 1 << 62


class Counter:
    """One counter (volume of a period, or flows of a rate window) per device slot."""

    __slots__ = ("bucket", "count", "dirty", "has", "keys")

    def __init__(self, keys: list[Any], stored: dict[Any, Any]) -> None:
        self.keys = keys
        n = len(keys)
        bucket, count = [0] * n, [0] * n
        has = [False] * n
        for k, v in enumerate(map(stored.get, keys)):
            if v is None:
                continue
            has[k] = True
            b, c = _usable(v)
            bucket[k], count[k] = b, c
        self.bucket = np.array(bucket, np.int64)
        self.count = np.array(count, np.int64)
        self.has = np.array(has, bool)
        #: slots changed since the dicts were last written
        self.dirty = np.zeros(n, bool)

    def write(self, stored: dict[Any, Any]) -> None:
        """Put the changed slots' ``(bucket, count)`` into ``stored``."""
        at = np.flatnonzero(self.dirty)
        if len(at):
            keys = self.keys
            stored.update(zip([keys[k] for k in at.tolist()],
                              zip(self.bucket[at].tolist(), self.count[at].tolist(),
                                  strict=True),
                              strict=True))
            self.dirty[at] = False


def _usable(v: Any) -> tuple[int, int]:
    """A stored ``(bucket, count)`` as the arrays hold it; a count of ``_UNUSABLE``
    where they cannot (the per-record path takes the device's batches then)."""
    try:
        b, c = v
    except (TypeError, ValueError):
        return 0, _UNUSABLE
    if type(b) not in (int, bool) or type(c) not in (int, bool) \
            or not -(1 << 63) <= b < 1 << 63 or not -(1 << 63) <= c <= _LIMIT:
        return 0, _UNUSABLE
    return int(b), int(c)


class SlotCounters:
    """The counters of one device table's slots, for one :class:`UsageMeter`.

    ``imsis`` are the table's devices by slot; a device at two slots (a resolver
    that binds one SIM to several addresses) has one counter slot.
    """

    __slots__ = ("_counters", "_imsis", "meter", "slot")

    def __init__(self, imsis: list[ImsiDigits]) -> None:
        firsts: dict[ImsiDigits, int] = {}
        at = [firsts.setdefault(i, len(firsts)) for i in imsis]
        self._imsis = list(firsts)
        #: table slot → counter slot, None where they are the same
        self.slot = None if len(firsts) == len(imsis) else np.array(at, np.int64)
        self._counters: dict[tuple[bool, str | int], Counter] = {}
        self.meter: UsageMeter | None = None

    def hold(self, meter: UsageMeter) -> None:
        """Make the arrays the meter's counters (read from its dicts unless they already
        are)."""
        if meter.held is self:
            return
        if self.meter is not None and self.meter is not meter:
            self.meter.sync()  # counters of another meter (the engine's policies replaced)
        with meter.lock:
            held, meter.held = meter.held, None
            if held is not None:  # another table's counters: into the dicts first
                held.flush(meter)
            self._counters.clear()
            self.meter = meter
            meter.held = self

    def counter(self, volume: bool, sub: str | int) -> Counter:
        """The arrays of ``(imsi, sub)`` in the volume (or flow) dict."""
        hit = self._counters.get((volume, sub))
        if hit is None:
            assert self.meter is not None
            stored = self.meter.raw()[0 if volume else 1]
            hit = self._counters[(volume, sub)] = Counter(
                [(imsi, sub) for imsi in self._imsis], stored)
        return hit

    def flush(self, meter: UsageMeter) -> None:
        """Write the changed counters into the meter's dicts (``UsageMeter.sync``)."""
        volume, flows = meter.raw()
        for (is_volume, _), c in self._counters.items():
            c.write(volume if is_volume else flows)
        self._counters.clear()


def count_rows(pos: np.ndarray, bucket: np.ndarray, inc: np.ndarray, sb: np.ndarray,
               sc: np.ndarray, has: np.ndarray) -> np.ndarray | None:
    """Per row (in order) the counter before it, ``UsageMeter.add_bytes`` row by row:
    a row whose bucket is not its slot's stored one starts from zero. ``sb``, ``sc``,
    ``has`` (per slot) are updated in place. None, with nothing changed, when a touched
    slot stores a count above 2^61."""
    prev = np.empty(len(pos), np.int64)
    if _counters_c is not None:
        return prev if _counters_c.slots(pos, bucket, inc, sb, sc, has, prev) else None
    ud, first_rev = np.unique(pos[::-1], return_index=True)
    if (has[ud] & (sc[ud] > _LIMIT)).any():
        return None
    last = len(pos) - 1 - first_rev  # each slot's last row
    n = len(pos)
    order = np.argsort(pos, kind="stable")
    d, b, x = pos[order], bucket[order], inc[order]
    new = np.ones(n, bool)
    new[1:] = (d[1:] != d[:-1]) | (b[1:] != b[:-1])
    first = np.ones(n, bool)
    first[1:] = d[1:] != d[:-1]
    base = np.where(first & has[d] & (sb[d] == b), sc[d], 0)
    c = np.cumsum(x)
    seg = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    before = np.where(seg > 0, c[seg - 1], 0)
    # counter before row = base of its segment + what earlier rows of the segment added
    prev[order] = base[seg] + (c - x) - before
    sc[ud] = prev[last] + inc[last]
    sb[ud] = bucket[last]
    has[ud] = True
    return prev
