"""Flow records in columns, as the collector's batch decoder hands them over.

The C batch decoder (``simtrust.flows._rx``, RFC 7011 §3.4.3 / RFC 3954 §5.3
data sets of fixed-length IPv4 templates) writes the records of a run of
datagrams into typed columns instead of one Python object per record:
float64 start and end times (UNIX seconds, as :class:`FlowRecord` has them),
4-octet addresses in network order, unsigned 64-bit ports, protocol, packet
and octet counts (already scaled by the sampling interval, RFC 7011 §5) and
TCP flags, and per record the index of its datagram in the batch (whose
sender names the exporter). :meth:`FlowColumns.records` builds the very
records :class:`~simtrust.flows.FlowDecoder.decode` would have built.

:class:`ReceivedFlows` is what one collector batch decoded to: column runs and,
for datagrams the batch decoder left to the Python decoder, record lists, in
the order the datagrams arrived.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from simtrust.domain import FlowRecord

_rx: ModuleType | None
try:
    from simtrust.flows import _rx
except ImportError:  # built optionally (setup.py)
    _rx = None

__all__ = ["FlowColumns", "ReceivedFlows"]

#: addresses already named (shared by every batch; equal addresses share one str)
_NAMES: dict[bytes, str] = {}


def _name(addr: bytes) -> str:
    name = _NAMES.get(addr)
    if name is None:
        name = socket.inet_ntoa(addr)
    return name


class FlowColumns:
    """One run of records in columns (see the module docstring for the types)."""

    __slots__ = ("_cols", "exporters")

    def __init__(self, cols: tuple[Any, ...], exporters: list[str]) -> None:
        self._cols = cols
        #: the batch's sender names; ``datagram[i]`` indexes it
        self.exporters = exporters

    def __len__(self) -> int:
        n: int = self._cols[0]
        return n

    def __repr__(self) -> str:
        return f"FlowColumns({len(self)} records)"

    def _view(self, i: int) -> memoryview[int]:
        return memoryview(self._cols[i])

    @property
    def start(self) -> memoryview[float]:
        return self._view(1).cast("d")

    @property
    def end(self) -> memoryview[float]:
        return self._view(2).cast("d")

    @property
    def src_addr(self) -> bytes:
        """Source IPv4 addresses, 4 octets each in network order."""
        data: bytes = self._cols[3]
        return data

    @property
    def dst_addr(self) -> bytes:
        data: bytes = self._cols[4]
        return data

    @property
    def src_port(self) -> memoryview:
        return self._view(5).cast("Q")

    @property
    def dst_port(self) -> memoryview:
        return self._view(6).cast("Q")

    @property
    def protocol(self) -> memoryview:
        return self._view(7).cast("Q")

    @property
    def packets(self) -> memoryview:
        return self._view(8).cast("Q")

    @property
    def octets(self) -> memoryview:
        return self._view(9).cast("Q")

    @property
    def tcp_flags(self) -> memoryview:
        return self._view(10).cast("Q")

    @property
    def datagram(self) -> memoryview:
        return self._view(11).cast("I")

    def record(self, i: int) -> FlowRecord:
        """Record ``i`` as :meth:`records` builds it (for the few a batch path needs)."""
        cols = self._cols
        src = bytes(cols[3][4 * i:4 * i + 4])
        dst = bytes(cols[4][4 * i:4 * i + 4])
        return FlowRecord(self.start[i], self.end[i], _name(src), _name(dst),
                          self.src_port[i], self.dst_port[i], self.protocol[i],
                          self.packets[i], self.octets[i], self.tcp_flags[i],
                          self.exporters[self.datagram[i]])

    def records(self, out: list[FlowRecord] | None = None) -> list[FlowRecord]:
        """The records as :class:`FlowRecord` tuples (appended to ``out`` if given)."""
        assert _rx is not None  # only the extension makes columns
        if out is None:
            out = []
        if len(_NAMES) > 65536:
            _NAMES.clear()
        _rx.to_records(self._cols, self.exporters, _NAMES, FlowRecord, out)
        return out


class ReceivedFlows:
    """The flows of one received batch: column runs and record lists, in arrival order."""

    __slots__ = ("_n", "segments")

    def __init__(self, segments: list[FlowColumns | list[FlowRecord]]) -> None:
        self.segments = segments
        self._n = sum(len(s) for s in segments)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ReceivedFlows({self._n} records in {len(self.segments)} segments)"

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self.records())

    def records(self) -> list[FlowRecord]:
        """Every record as a :class:`FlowRecord`, in arrival order."""
        out: list[FlowRecord] = []
        for seg in self.segments:
            if isinstance(seg, FlowColumns):
                seg.records(out)
            else:
                out.extend(seg)
        return out
