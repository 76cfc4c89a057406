"""Tunnel status and rekey events from strongSwan's charon over VICI (the Versatile IKE
Control Interface, strongSwan ``src/libcharon/plugins/vici/README.md``: "Transport
protocol", "Message format", "Event messages" ike-updown, ike-rekey, child-updown,
child-rekey). ``swanctl --monitor-sa`` subscribes to the up/down events only, so this
module speaks the protocol itself: a 32-bit big-endian length, one byte of packet type
(EVENT_REGISTER 3, EVENT_CONFIRM 5, EVENT_UNKNOWN 6, EVENT 7), a length-prefixed event
name and the message, a tree of sections (1/2), key/values (3) and lists (4/5/6).

:class:`TunnelEvents` holds the socket, registers for the four events and turns each into
a :class:`TunnelEvent` (``up``, ``down``, ``ike-rekeyed``, ``child-up``, ``child-down``,
``child-rekeyed``); a ``down`` of a tunnel in the specs becomes a ``tunnel-down``
:class:`~simtrust.policy.TunnelAlert`. Messages come from the local daemon, but the decoder
still bounds every length and is fuzzed (tests/policy/test_vici.py).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simtrust.errors import DecodeError
from simtrust.policy._tunnels import TunnelAlert, TunnelSpec

__all__ = ["EVENTS", "TunnelEvent", "TunnelEvents", "decode_vici", "encode_vici_packet"]

EVENTS = ("ike-updown", "ike-rekey", "child-updown", "child-rekey")
_EVENT_REGISTER, _EVENT_CONFIRM, _EVENT_UNKNOWN, _EVENT = 3, 5, 6, 7
_SECTION_START, _SECTION_END, _KEY_VALUE, _LIST_START, _LIST_ITEM, _LIST_END = range(1, 7)
_MAX_PACKET = 512 * 1024
_MAX_DEPTH = 16

VICI = dict[str, Any]


def decode_vici(data: bytes) -> VICI:
    """A VICI message → nested dicts (sections), bytes (values), lists of bytes."""
    root: VICI = {}
    stack: list[VICI] = [root]
    current_list: list[bytes] | None = None
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise DecodeError("VICI message truncated", reason="vici")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    def name() -> str:
        raw = take(take(1)[0])
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError("VICI name is not ASCII", reason="vici") from None

    while pos < len(data):
        kind = take(1)[0]
        if current_list is not None and kind not in (_LIST_ITEM, _LIST_END):
            raise DecodeError("VICI list not terminated", reason="vici")
        if kind == _SECTION_START:
            if len(stack) >= _MAX_DEPTH:
                raise DecodeError("VICI sections nested too deep", reason="vici")
            section: VICI = {}
            stack[-1][name()] = section
            stack.append(section)
        elif kind == _SECTION_END:
            if len(stack) == 1:
                raise DecodeError("VICI section end without start", reason="vici")
            stack.pop()
        elif kind == _KEY_VALUE:
            key = name()
            stack[-1][key] = take(struct.unpack(">H", take(2))[0])
        elif kind == _LIST_START:
            current_list = []
            stack[-1][name()] = current_list
        elif kind == _LIST_ITEM:
            if current_list is None:
                raise DecodeError("VICI list item outside a list", reason="vici")
            current_list.append(take(struct.unpack(">H", take(2))[0]))
        elif kind == _LIST_END:
            if current_list is None:
                raise DecodeError("VICI list end outside a list", reason="vici")
            current_list = None
        else:
            raise DecodeError(f"unknown VICI element type {kind}", reason="vici")
    if len(stack) != 1 or current_list is not None:
        raise DecodeError("VICI message ends inside a section or list", reason="vici")
    return root


def encode_vici_packet(kind: int, name: str = "", message: bytes = b"") -> bytes:
    """One packet on the wire: length, type, (event) name, message."""
    body = bytes([kind])
    if kind in (_EVENT_REGISTER, 4, _EVENT):
        raw = name.encode("ascii")
        body += bytes([len(raw)]) + raw
    body += message
    return struct.pack(">I", len(body)) + body


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


@dataclass(frozen=True, slots=True)
class TunnelEvent:
    """One SA change of one tunnel (connection name), with the IKE SA's unique id."""

    kind: str
    tunnel: str
    ike_id: str
    state: str
    at: str
    details: dict[str, str] = field(default_factory=dict)


def events_of(name: str, message: VICI, at: str) -> list[TunnelEvent]:
    """The tunnel events one VICI event message carries."""
    out: list[TunnelEvent] = []
    up = message.get("up") == b"yes"
    for tunnel, sa in message.items():
        if not isinstance(sa, dict):
            continue
        if name == "ike-rekey":  # {name: {old: {...}, new: {...}}}
            new = sa.get("new", {}) if isinstance(sa.get("new"), dict) else {}
            old = sa.get("old", {}) if isinstance(sa.get("old"), dict) else {}
            out.append(TunnelEvent("ike-rekeyed", tunnel, _text(new.get("uniqueid")),
                                   _text(new.get("state")), at,
                                   {"previous_ike_id": _text(old.get("uniqueid"))}))
            continue
        ike_id, state = _text(sa.get("uniqueid")), _text(sa.get("state"))
        if name == "ike-updown":
            out.append(TunnelEvent("up" if up else "down", tunnel, ike_id, state, at))
            continue
        children = sa.get("child-sas", {})
        for child in (children.values() if isinstance(children, dict) else ()):
            if not isinstance(child, dict):
                continue
            if name == "child-rekey":
                new = child.get("new", {}) if isinstance(child.get("new"), dict) else {}
                out.append(TunnelEvent("child-rekeyed", tunnel, ike_id,
                                       _text(new.get("state")), at,
                                       {"child": _text(new.get("name"))}))
            else:
                out.append(TunnelEvent("child-up" if up else "child-down", tunnel, ike_id,
                                       _text(child.get("state")), at,
                                       {"child": _text(child.get("name"))}))
    return out


class TunnelEvents:
    """Collects SA events from one charon's VICI socket in a thread of its own."""

    def __init__(self, path: str, specs: Sequence[TunnelSpec] = (), *,
                 on_event: Callable[[TunnelEvent], None] = lambda _e: None,
                 on_alert: Callable[[TunnelAlert], None] = lambda _a: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._path = path
        self._specs = {s.name: s for s in specs}
        self._on_event = on_event
        self._on_alert = on_alert
        self._clock = clock
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.events: list[TunnelEvent] = []
        self.malformed = 0

    def __repr__(self) -> str:
        return f"TunnelEvents({self._path}, {len(self.events)} events)"

    @property
    def alive(self) -> bool:
        """Connected and listening (False once charon closed the socket)."""
        return self._thread is not None and self._thread.is_alive()

    def _read_packet(self, sock: socket.socket) -> bytes:
        head = self._read_exact(sock, 4)
        length = struct.unpack(">I", head)[0]
        if not 1 <= length <= _MAX_PACKET:
            raise DecodeError("VICI packet length out of bounds", reason="vici")
        return self._read_exact(sock, length)

    @staticmethod
    def _read_exact(sock: socket.socket, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("VICI socket closed")
            buf += chunk
        return bytes(buf)

    def start(self) -> TunnelEvents:
        """Connect, register for the four events (each confirmed), then listen."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10.0)
        sock.connect(self._path)
        for name in EVENTS:
            sock.sendall(encode_vici_packet(_EVENT_REGISTER, name))
            while True:
                packet = self._read_packet(sock)
                if packet[0] == _EVENT:
                    self._event(packet)
                    continue
                if packet[0] != _EVENT_CONFIRM:
                    sock.close()
                    raise ConnectionError(f"charon refused the {name} event")
                break
        sock.settimeout(None)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="vici-events", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            try:
                packet = self._read_packet(sock)
            except (OSError, ConnectionError, DecodeError):
                return
            if packet[0] == _EVENT:
                self._event(packet)

    def _event(self, packet: bytes) -> None:
        try:
            if len(packet) < 2 or len(packet) < 2 + packet[1]:
                raise DecodeError("VICI event name truncated", reason="vici")
            name = packet[2:2 + packet[1]].decode("ascii", "replace")
            events = events_of(name, decode_vici(packet[2 + packet[1]:]),
                               self._clock().isoformat())
        except DecodeError:
            with self._lock:
                self.malformed += 1
            return
        for event in events:
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
            self._on_event(event)
            spec = self._specs.get(event.tunnel)
            if event.kind == "down" and spec is not None:
                self._on_alert(TunnelAlert(spec.name, spec.tenant_id, spec.apn,
                                           {"ike": event.state or "DELETING"}, event.at))

    def wait_for(self, kind: str, tunnel: str, timeout: float = 30.0) -> TunnelEvent:
        """Block until an event of ``kind`` for ``tunnel`` arrived (tests, tools)."""
        def found() -> TunnelEvent | None:
            return next((e for e in self.events if e.kind == kind and e.tunnel == tunnel),
                        None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None, timeout)
            event = found()
        if event is None:
            raise TimeoutError(f"no {kind} event for {tunnel}")
        return event

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
