"""The C bulk decoder (simtrust.flows._native) against the pure-Python reference.

Both paths of :class:`FlowDecoder` must give identical flow records: on the
datagrams real exporters (softflowd, NetFlow v9 and IPFIX) send for the
captures in ``shared/data/pcaps/iot-sentinel``, and on generated templates and
records (hypothesis). The extension itself is fuzzed with arbitrary bytes and
arguments: it returns or raises ValueError/TypeError, never crashes.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.domain import FlowRecord
from simtrust.flows import FlowDecoder, _ipfix
from tests.policy.conftest import require_binaries

native = _ipfix._native


def test_extension_is_built_when_required() -> None:
    if native is None:
        if os.environ.get("SIMTRUST_REQUIRE_NATIVE") == "1":
            pytest.fail("SIMTRUST_REQUIRE_NATIVE=1 but simtrust.flows._native does not import: "
                        "install a C compiler, then reinstall the package")
        pytest.skip("simtrust.flows._native is not built")
    assert "c" == _ipfix.BACKEND


needs_native = pytest.mark.skipif(native is None, reason="simtrust.flows._native is not built")


class _Counting:
    """Stands in for the extension module and counts the data sets it decoded."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.calls = 0

    def ipv4_flows(self, *args: Any) -> int:
        self.calls += 1
        n: int = self.module.ipv4_flows(*args)
        return n


def _decode_both(messages: list[bytes], exporter: str = "192.0.2.9:4739"
                 ) -> tuple[list[FlowRecord], list[FlowRecord], FlowDecoder, FlowDecoder, int]:
    spy = _Counting(native)
    saved = _ipfix._native
    fast, slow = FlowDecoder(), FlowDecoder()
    got: list[FlowRecord] = []
    want: list[FlowRecord] = []
    try:
        for i, m in enumerate(messages):
            _ipfix._native = spy  # type: ignore[assignment]
            got.extend(fast.decode(m, exporter, 1_700_000_000.0 + i))
            _ipfix._native = None
            want.extend(slow.decode(m, exporter, 1_700_000_000.0 + i))
    finally:
        _ipfix._native = saved
    return got, want, fast, slow, spy.calls


def _softflowd_datagrams(pcap: Path, version: str, tmp_path: Path) -> list[bytes]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        subprocess.run(["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", version,
                        "-d", "-p", str(tmp_path / f"sf{version}.pid")],
                       check=True, capture_output=True, timeout=60)
        sock.setblocking(False)  # softflowd has exited: everything it sent is queued
        out = []
        while True:
            try:
                out.append(sock.recv(65535))
            except BlockingIOError:
                return out
    finally:
        sock.close()


@needs_native
@pytest.mark.parametrize("version", ["9", "10"])
def test_identical_on_softflowd_exports_of_the_captures(shared_dir: Path, tmp_path: Path,
                                                        version: str) -> None:
    require_binaries("softflowd")
    folder = shared_dir / "data" / "pcaps" / "iot-sentinel"
    pcaps = [sorted((folder / d).glob("*.pcap"))[0]
             for d in ("D-LinkCam", "EdimaxPlug1101W", "Aria", "HueBridge", "WeMoSwitch")
             if (folder / d).is_dir()]
    assert pcaps
    total = 0
    for pcap in pcaps:
        messages = _softflowd_datagrams(pcap, version, tmp_path)
        got, want, fast, slow, calls = _decode_both(messages)
        assert want == got
        assert fast.stats() == slow.stats()
        if want:
            assert calls > 0, "softflowd's IPv4 data sets took the C path"
        total += len(want)
    assert total > 0


# -- generated templates and records ---------------------------------------------------

_IE_LENGTHS = {8: (4,), 12: (4,), 7: (1, 2, 4), 11: (1, 2, 4), 4: (1, 2), 6: (1, 2),
               1: (1, 2, 3, 4, 5, 8), 2: (1, 2, 4, 7, 8), 85: (4, 8), 86: (4, 8),
               21: (4, 8), 22: (4, 8), 152: (8, 6), 153: (8, 6), 150: (4,), 151: (4,),
               27: (16,), 28: (16,), 160: (8,)}
_FILLER = st.tuples(st.sampled_from([10, 14, 5, 60, 61, 136, 89, 300]),
                    st.integers(1, 12))


@st.composite
def _template(draw: st.DrawFn) -> list[tuple[int, int]]:
    wanted = draw(st.lists(st.sampled_from(sorted(_IE_LENGTHS)), unique=True, min_size=2))
    core = draw(st.booleans())
    if core:  # mostly the full IPv4 shape the C path takes
        wanted = sorted(set(wanted) | {8, 12, 7, 11, 4, 6, 1, 2, 21, 22} - {27, 28})
    fields = [(ie, draw(st.sampled_from(_IE_LENGTHS[ie]))) for ie in wanted]
    fields += draw(st.lists(_FILLER, max_size=4))
    if draw(st.integers(0, 9)) == 0:
        fields.append((300, 65535))  # a variable-length field: general path
    return draw(st.permutations(fields))


def _record(fields: list[tuple[int, int]], raw: bytes) -> bytes:
    out = bytearray()
    for i, (_ie, length) in enumerate(fields):
        if length == 65535:
            n = raw[i % len(raw)] % 6
            out += bytes([n]) + raw[:n].ljust(n, b"\0")
        else:
            out += (raw * (length // len(raw) + 1))[i:i + length].ljust(length, b"\0")
    return bytes(out)


def _ipfix_message(fields: list[tuple[int, int]], records: list[bytes], seq: int,
                   with_template: bool, padding: int) -> bytes:
    sets = b""
    if with_template:
        body = struct.pack("!HH", 256, len(fields)) + b"".join(
            struct.pack("!HH", ie, ln) for ie, ln in fields)
        sets += struct.pack("!HH", 2, 4 + len(body)) + body
    payload = b"".join(records) + b"\0" * padding
    sets += struct.pack("!HH", 256, 4 + len(payload)) + payload
    return struct.pack("!HHIII", 10, 16 + len(sets), 1_700_000_000, seq, 7) + sets


def _v9_message(fields: list[tuple[int, int]], records: list[bytes], seq: int,
                with_template: bool, padding: int) -> bytes:
    sets = b""
    if with_template:
        body = struct.pack("!HH", 256, len(fields)) + b"".join(
            struct.pack("!HH", ie, ln) for ie, ln in fields)
        sets += struct.pack("!HH", 0, 4 + len(body)) + body
    payload = b"".join(records) + b"\0" * padding
    sets += struct.pack("!HH", 256, 4 + len(payload)) + payload
    return struct.pack("!HHIIII", 9, len(records), 3_600_000, 1_700_000_000, seq, 7) + sets


@needs_native
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=_template(), raws=st.lists(st.lists(st.binary(min_size=1, max_size=24),
                                                  max_size=12), min_size=1, max_size=4),
       v9=st.booleans(), padding=st.integers(0, 3))
def test_identical_on_generated_templates(fields: list[tuple[int, int]],
                                          raws: list[list[bytes]], v9: bool,
                                          padding: int) -> None:
    if v9:
        fields = [(ie, ln) for ie, ln in fields if ln != 65535]  # no variable length in v9
    make = _v9_message if v9 else _ipfix_message
    messages = [make(fields, [_record(fields, r) for r in recs], i, i == 0, padding)
                for i, recs in enumerate(raws)]
    got, want, fast, slow, _calls = _decode_both(messages)
    assert want == got
    assert fast.stats() == slow.stats()


# -- fuzzing the extension ------------------------------------------------------------------

@needs_native
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), start=st.integers(-5, 320), end=st.integers(-5, 320),
       record_len=st.integers(-2, 80),
       offsets=st.lists(st.integers(-3, 90), min_size=0, max_size=22),
       scale=st.integers(-3, 2**70))
def test_native_fuzz_arbitrary_arguments(data: bytes, start: int, end: int, record_len: int,
                                         offsets: list[int], scale: int) -> None:
    assert native is not None
    out: list[FlowRecord] = []
    try:
        n = native.ipv4_flows(data, start, end, record_len, tuple(offsets), 0.5, "x", {},
                              FlowRecord, scale, out)
    except ValueError:
        assert out == []
        return
    assert n == len(out) == (end - start) // record_len
    assert all(isinstance(r, FlowRecord) and len(r) == 12 for r in out)


@needs_native
def test_native_rejects_wrong_types() -> None:
    assert native is not None
    good = (0, 4, 4, 4, 8, 4, 12, 4, 16, 2, 18, 2, 20, 1, 21, 4, 25, 4, 29, 1)
    with pytest.raises(TypeError):
        native.ipv4_flows(b"\0" * 30, 0, 30, 30, good, 0.0, "x", {}, dict, 1, [])
    with pytest.raises(TypeError):
        native.ipv4_flows(b"\0" * 30, 0, 30, 30, good, 0.0, "x", {}, FlowRecord, 1.5, [])
    out: list[FlowRecord] = []
    assert 1 == native.ipv4_flows(b"\1" * 30, 0, 30, 30, good, 0.0, "x", {}, FlowRecord, 3, out)
    (rec,) = out
    assert rec.src_addr == "1.1.1.1"
    assert rec.packets == 0x01010101 * 3


@needs_native
@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=400), v9=st.booleans())
def test_decoder_with_native_never_raises(blob: bytes, v9: bool) -> None:
    fields = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1),
              (6, 1)]
    make = _v9_message if v9 else _ipfix_message
    template = make(fields, [], 0, True, 0)
    body = struct.pack("!HH", 256, 4 + len(blob)) + blob
    head = template[:16] if not v9 else template[:20]
    arbitrary = head + body
    if not v9:
        arbitrary = arbitrary[:2] + struct.pack("!H", len(arbitrary)) + arbitrary[4:]
    got, want, fast, slow, _ = _decode_both([template, arbitrary, blob])
    assert want == got
    assert fast.drops == slow.drops


