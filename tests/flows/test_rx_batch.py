"""The batch receiver and columnar decoder (simtrust.flows._rx) against the Python reference.

Batches decoded by :meth:`FlowDecoder.decode_received` (runs of datagrams in
columns, the rest through :meth:`FlowDecoder.decode`) must give the records and
the decoder statistics (templates, sequence accounting, drops) of the pure-Python
decoder fed the same datagrams one by one: on softflowd's exports of the shared
captures, on generated templates, records, sampling and system-init options
(hypothesis), and on arbitrary bytes. The extension's entry points are fuzzed
with arbitrary arguments: they return or raise ValueError/TypeError, never crash.
``recv_batch`` names senders exactly as Python's ``recvfrom`` does (IPv4, IPv6).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.domain import FlowRecord
from simtrust.flows import FlowCollector, FlowDecoder, _collector, _ipfix
from simtrust.flows._columns import FlowColumns, ReceivedFlows
from simtrust.flows._templates import SequenceState
from tests.flows.test_native_decode import (
    _ipfix_message,
    _record,
    _softflowd_datagrams,
    _template,
    _v9_message,
)
from tests.policy.conftest import require_binaries

rx = _ipfix._rx
SLOT = 65536
needs_rx = pytest.mark.skipif(rx is None, reason="simtrust.flows._rx is not built")


def test_rx_extension_is_built_when_required() -> None:
    if rx is None:
        if os.environ.get("SIMTRUST_REQUIRE_NATIVE") == "1":
            pytest.fail("SIMTRUST_REQUIRE_NATIVE=1 but simtrust.flows._rx does not import")
        pytest.skip("simtrust.flows._rx is not built")
    assert SLOT == rx.SLOT


def _buffer(messages: list[bytes]) -> bytearray:
    buf = bytearray(SLOT * max(1, len(messages)))
    for i, m in enumerate(messages):
        buf[i * SLOT:i * SLOT + len(m)] = m
    return buf


def _compare(messages: list[bytes], senders: list[str], batch: int = 64
             ) -> tuple[list[FlowRecord], FlowDecoder, int]:
    """Decode in batches and one by one (pure Python); assert both agree."""
    fast, slow = FlowDecoder(), FlowDecoder()
    got: list[FlowRecord] = []
    columns = 0
    for k in range(0, len(messages), batch):
        chunk, names = messages[k:k + batch], senders[k:k + batch]
        now = 1_700_000_000.0 + k
        received = ReceivedFlows(fast.decode_received(_buffer(chunk), [len(m) for m in chunk],
                                                      names, now))
        columns += sum(len(s) for s in received.segments if isinstance(s, FlowColumns))
        assert len(received) == len(received.records())
        got.extend(received)
    want: list[FlowRecord] = []
    saved = _ipfix._native
    _ipfix._native = None
    try:
        for k in range(0, len(messages), batch):
            for m, name in zip(messages[k:k + batch], senders[k:k + batch], strict=True):
                want.extend(slow.decode(m, name, 1_700_000_000.0 + k))
    finally:
        _ipfix._native = saved
    assert want == got
    assert fast.stats() == slow.stats()
    return got, fast, columns


@needs_rx
@pytest.mark.parametrize("version", ["9", "10"])
def test_identical_on_softflowd_exports_of_the_captures(shared_dir: Path, tmp_path: Path,
                                                        version: str) -> None:
    require_binaries("softflowd")
    folder = shared_dir / "data" / "pcaps" / "iot-sentinel"
    pcaps = [sorted((folder / d).glob("*.pcap"))[0]
             for d in ("D-LinkCam", "EdimaxPlug1101W", "Aria", "HueBridge", "WeMoSwitch")
             if (folder / d).is_dir()]
    assert pcaps
    total = in_columns = 0
    for pcap in pcaps:
        messages = _softflowd_datagrams(pcap, version, tmp_path)
        for batch in (1, 7, 64):
            got, _, columns = _compare(messages, ["192.0.2.9:4739"] * len(messages), batch)
        total += len(got)
        in_columns += columns
    assert total > 0
    assert in_columns > 0, "softflowd's IPv4 data sets took the columnar path"


def _options(v9: bool, interval: int, sysinit: int | None, seq: int) -> bytes:
    """An options template and record: samplingInterval (and systemInitTimeMilliseconds)."""
    fields = [(34, 4)] + ([(160, 8)] if sysinit is not None else [])
    values = struct.pack("!I", 7) + struct.pack("!I", interval) + (
        struct.pack("!Q", sysinit) if sysinit is not None else b"")
    if v9:  # RFC 3954 §6.1: scope system (1), length 4
        body = struct.pack("!HHH", 300, 4, 4 * len(fields)) + struct.pack("!HH", 1, 4) + \
            b"".join(struct.pack("!HH", *f) for f in fields)
        sets = struct.pack("!HH", 1, 4 + len(body)) + body
        sets += struct.pack("!HH", 300, 4 + len(values)) + values
        return struct.pack("!HHIIII", 9, 2, 3_600_000, 1_700_000_000, seq, 7) + sets
    body = struct.pack("!HHH", 300, 1 + len(fields), 1) + struct.pack("!HH", 149, 4) + \
        b"".join(struct.pack("!HH", *f) for f in fields)
    sets = struct.pack("!HH", 3, 4 + len(body)) + body
    sets += struct.pack("!HH", 300, 4 + len(values)) + values
    return struct.pack("!HHIII", 10, 16 + len(sets), 1_700_000_000, seq, 7) + sets


@needs_rx
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=_template(), raws=st.lists(st.lists(st.binary(min_size=1, max_size=24),
                                                  max_size=12), min_size=1, max_size=6),
       v9=st.booleans(), padding=st.integers(0, 3), batch=st.integers(1, 8),
       options=st.none() | st.tuples(st.integers(1, 2**32 - 1),
                                     st.none() | st.integers(0, 2**64 - 1), st.integers(0, 5)),
       senders=st.lists(st.sampled_from(["192.0.2.1:9995", "[2001:db8::1]:4739"]),
                        min_size=1, max_size=3))
def test_identical_on_generated_templates(fields: list[tuple[int, int]],
                                          raws: list[list[bytes]], v9: bool, padding: int,
                                          batch: int, options: tuple[int, int | None, int] | None,
                                          senders: list[str]) -> None:
    if v9:
        fields = [(ie, ln) for ie, ln in fields if ln != 65535]  # no variable length in v9
    make = _v9_message if v9 else _ipfix_message
    messages = [make(fields, [_record(fields, r) for r in recs], i, i == 0, padding)
                for i, recs in enumerate(raws)]
    if options is not None:  # sampling (and system init time) learned mid-stream
        interval, sysinit, at = options
        messages.insert(min(at, len(messages)), _options(v9, interval, sysinit, 99))
    names = [senders[i % len(senders)] for i in range(len(messages))]
    _compare(messages, names, batch)


@needs_rx
@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=400), v9=st.booleans(), fix_length=st.booleans())
def test_identical_on_arbitrary_bytes(blob: bytes, v9: bool, fix_length: bool) -> None:
    fields = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1),
              (6, 1)]
    make = _v9_message if v9 else _ipfix_message
    template = make(fields, [], 0, True, 0)
    head = template[:20] if v9 else template[:16]
    arbitrary = head + struct.pack("!HH", 256, 4 + len(blob)) + blob
    if not v9 and fix_length:
        arbitrary = arbitrary[:2] + struct.pack("!H", len(arbitrary) & 0xFFFF) + arbitrary[4:]
    raw = head[:4] + blob  # arbitrary after the version
    messages = [template, arbitrary, blob, raw, arbitrary]
    _compare(messages, ["198.51.100.7:2055"] * len(messages), 5)


# -- fuzzing the entry points ---------------------------------------------------------------

def _state(decoder: FlowDecoder) -> tuple[Any, ...]:
    return (decoder._templates, decoder.sampling, decoder._sysinit, decoder.sequence,
            SequenceState, 1800.0)


@needs_rx
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), lengths=st.lists(st.integers(-3, 70_000), max_size=3),
       first=st.integers(-2, 4), slots=st.integers(0, 3),
       layout=st.lists(st.integers(-3, 70_000) | st.floats(allow_nan=True), max_size=25),
       state_size=st.integers(4, 7))
def test_decode_datagrams_fuzz_arbitrary_arguments(data: bytes, lengths: list[int], first: int,
                                                   slots: int, layout: list[Any],
                                                   state_size: int) -> None:
    assert rx is not None
    decoder = FlowDecoder()
    fields = [(8, 4), (12, 4), (152, 8), (153, 8), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4),
              (6, 1)]
    decoder.decode(_ipfix_message(fields, [], 0, True, 0), "x:1", 0.0)
    tpl = decoder.template("x:1", 7, 256)
    assert tpl is not None
    assert tpl.fast is not None
    tpl.fast = tuple(layout)  # an arbitrary layout must be refused, not trusted
    buf = bytearray(SLOT * slots)
    buf[:len(data)] = data
    record = struct.pack("!HH", 256, 4 + len(data)) + data
    msg = struct.pack("!HHIII", 10, 16 + len(record), 0, 1, 7) + record
    if slots and len(msg) <= SLOT:
        buf[:len(msg)] = msg
    state = (*_state(decoder), None, None)[:state_size]
    try:
        nxt, cols, messages, records = rx.decode_datagrams(
            buf, lengths, ["x:1"] * len(lengths), first, 0.0, state)
    except (ValueError, TypeError, OverflowError):
        return
    assert first <= nxt <= len(lengths)
    assert messages == nxt - first
    assert (cols is None and records == 0) or cols[0] == records


@needs_rx
@settings(max_examples=200, deadline=None)
@given(n=st.integers(-2, 5), sizes=st.lists(st.integers(0, 48), min_size=0, max_size=13),
       senders=st.integers(0, 3))
def test_to_records_fuzz(n: int, sizes: list[int], senders: int) -> None:
    assert rx is not None
    cols = (n, *(b"\x01" * s for s in sizes))
    out: list[FlowRecord] = []
    try:
        got = rx.to_records(cols, ["s:1"] * senders, {}, FlowRecord, out)
    except (ValueError, TypeError):
        return
    assert got == n == len(out)


@needs_rx
def test_entry_points_refuse_wrong_types() -> None:
    assert rx is not None
    decoder = FlowDecoder()
    with pytest.raises(TypeError):
        rx.decode_datagrams(bytearray(SLOT), [16], [b"x"], 0, 0.0, _state(decoder))
    with pytest.raises(TypeError):
        rx.decode_datagrams(bytearray(SLOT), [16], ["x"], 0, 0.0,
                            ([], None, {}, {}, SequenceState, 1.0))
    with pytest.raises(ValueError):
        rx.decode_datagrams(bytearray(SLOT), [16, 16], ["x", "x"], 0, 0.0, _state(decoder))
    with pytest.raises(ValueError):
        rx.recv_batch(0, bytearray(SLOT), 2, 0, {})
    with pytest.raises(TypeError):
        rx.to_records((0,) + (b"",) * 11, [], {}, dict, [])


# -- receiving -----------------------------------------------------------------------------

@needs_rx
@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")])
def test_recv_batch_names_senders_like_recvfrom(family: int, host: str) -> None:
    assert rx is not None
    rx_sock = socket.socket(family, socket.SOCK_DGRAM)
    senders = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        rx_sock.bind((host, 0))
        port = rx_sock.getsockname()[1]
        buf = bytearray(4 * SLOT)
        assert rx.recv_batch(rx_sock.fileno(), buf, 4, 0, {}) == ([], [])
        sent = [b"a" * 10, b"", b"b" * 1400, b"c" * 3]
        for i, m in enumerate(sent):
            senders[i % 2].sendto(m, (host, port))
        names: dict[bytes, str] = {}
        got_lengths: list[int] = []
        got_names: list[str] = []
        while len(got_lengths) < len(sent):  # all four are queued on loopback already
            lengths, who = rx.recv_batch(rx_sock.fileno(), buf, 4, 5000, names)
            assert lengths
            for i, n in enumerate(lengths):
                assert bytes(buf[i * SLOT:i * SLOT + n]) == sent[len(got_lengths) + i]
            got_lengths += lengths
            got_names += who
        want = []
        for i in range(len(sent)):
            addr = senders[i % 2].getsockname()
            want.append(f"{host}:{addr[1]}")
        assert got_names == want
        assert got_lengths == [len(m) for m in sent]
        assert len(names) == 2
    finally:
        rx_sock.close()
        for s in senders:
            s.close()


@needs_rx
def test_collector_hands_columns_to_a_columnar_sink() -> None:
    fields = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1),
              (6, 1)]
    records = [[_record(fields, bytes([i, i + 1, i + 2])) for i in range(k, k + 5)]
               for k in range(0, 40, 5)]
    messages = [_ipfix_message(fields, recs, 5 * i, i == 0, 0) for i, recs in enumerate(records)]
    batches: list[ReceivedFlows] = []
    with FlowCollector(batches.append, columnar=True, clock=lambda: 1_700_000_000.0) as c:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for m in messages:
                out.sendto(m, (c.host, c.port))
            exporter = f"127.0.0.1:{out.getsockname()[1]}"
        finally:
            out.close()
        deadline = time.monotonic() + 30
        while c.datagrams < len(messages) and time.monotonic() < deadline:
            time.sleep(0.01)
    got = [r for b in batches for r in b.records()]
    want: list[FlowRecord] = []
    reference = FlowDecoder()
    for m in messages:
        want.extend(reference.decode(m, exporter, 1_700_000_000.0))
    assert got == want
    assert len(got) == 40
    assert c.decoder.stats() == reference.stats()
    assert any(isinstance(s, FlowColumns) for b in batches for s in b.segments)


def test_collector_without_the_extension_gives_the_same_batches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without _rx the collector receives one datagram at a time; sinks see the same."""
    monkeypatch.setattr(_collector, "_rx", None)
    fields = [(8, 4), (12, 4), (152, 8), (153, 8), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1),
              (6, 1)]
    messages = [_ipfix_message(fields, [_record(fields, bytes([k, 3]))], k, k == 0, 0)
                for k in range(6)]
    batches: list[ReceivedFlows] = []
    lists: list[FlowRecord] = []
    with FlowCollector(batches.append, columnar=True) as c, FlowCollector(lists.extend) as d:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for m in messages:
                out.sendto(m, (c.host, c.port))
                out.sendto(m, (d.host, d.port))
        finally:
            out.close()
        deadline = time.monotonic() + 30
        while (c.datagrams < 6 or d.datagrams < 6) and time.monotonic() < deadline:
            time.sleep(0.01)
    got = [r for b in batches for r in b.records()]
    assert len(got) == 6
    assert got == lists
    assert all(isinstance(s, list) for b in batches for s in b.segments)
