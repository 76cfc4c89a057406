"""IPFIX / NetFlow v9 decoding: templates, withdrawal, expiry, options, variable length,
enterprise elements, sequence accounting, and malformed input (RFC 7011, RFC 3954)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.flows import FlowCollector, FlowDecoder

FLOW_FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 8), (152, 8), (153, 8)]


def ipfix(sets: list[bytes], seq: int = 0, domain: int = 7, export_time: int = 1_700_000_000,
          length: int | None = None) -> bytes:
    body = b"".join(sets)
    total = 16 + len(body) if length is None else length
    return struct.pack("!HHIII", 10, total, export_time, seq, domain) + body


def v9(sets: list[bytes], seq: int = 0, source_id: int = 3, uptime: int = 10_000,
       unix_secs: int = 1_700_000_000) -> bytes:
    return struct.pack("!HHIIII", 9, len(sets), uptime, unix_secs, seq, source_id) + b"".join(sets)


def set_(set_id: int, payload: bytes) -> bytes:
    return struct.pack("!HH", set_id, 4 + len(payload)) + payload


def template(tid: int, fields: Sequence[tuple[int, ...]]) -> bytes:
    out = struct.pack("!HH", tid, len(fields))
    for f in fields:
        if len(f) == 3:
            out += struct.pack("!HHI", f[0] | 0x8000, f[1], f[2])
        else:
            out += struct.pack("!HH", f[0], f[1])
    return out


def flow_record(src: str, dst: str, sport: int, dport: int, proto: int, packets: int,
                octets: int, start_ms: int, end_ms: int) -> bytes:
    return (socket.inet_aton(src) + socket.inet_aton(dst)
            + struct.pack("!HHBIQQQ", sport, dport, proto, packets, octets, start_ms, end_ms))


REC = flow_record("10.0.0.2", "192.0.2.10", 40000, 443, 6, 5, 900, 1_700_000_000_000,
                  1_700_000_001_500)


def test_ipfix_template_then_data_decodes_flow() -> None:
    d = FlowDecoder()
    msg = ipfix([set_(2, template(256, FLOW_FIELDS)), set_(256, REC + REC)])
    flows = d.decode(msg, "e1", 0.0)
    assert 2 == len(flows)
    f = flows[0]
    assert ("10.0.0.2", "192.0.2.10", 40000, 443, 6, 5, 900) == (
        f.src_addr, f.dst_addr, f.src_port, f.dst_port, f.protocol, f.packets, f.octets)
    assert 1_700_000_000.0 == f.start
    assert 1_700_000_001.5 == f.end
    assert "e1" == f.exporter


def test_templates_are_per_exporter_and_domain() -> None:
    d = FlowDecoder()
    d.decode(ipfix([set_(2, template(256, FLOW_FIELDS))], domain=1), "e1", 0.0)
    assert [] == d.decode(ipfix([set_(256, REC)], domain=2), "e1", 0.0)
    assert [] == d.decode(ipfix([set_(256, REC)], domain=1), "e2", 0.0)
    assert 1 == len(d.decode(ipfix([set_(256, REC)], domain=1), "e1", 0.0))
    assert 2 == d.drops["unknown_template"]


def test_template_withdrawal_single_and_all() -> None:
    d = FlowDecoder()
    d.decode(ipfix([set_(2, template(256, FLOW_FIELDS) + template(257, FLOW_FIELDS))]), "e", 0)
    d.decode(ipfix([set_(2, struct.pack("!HH", 256, 0))]), "e", 0)  # withdraw 256
    assert d.template("e", 7, 256) is None
    assert d.template("e", 7, 257) is not None
    d.decode(ipfix([set_(2, struct.pack("!HH", 2, 0))]), "e", 0)  # withdraw all (§8.1)
    assert d.template("e", 7, 257) is None
    assert [] == d.decode(ipfix([set_(257, REC)]), "e", 0)
    assert 2 == d.stats()["withdrawals"]


def test_template_expires_after_timeout_and_refresh_renews() -> None:
    d = FlowDecoder(template_timeout=60)
    tpl = set_(2, template(256, FLOW_FIELDS))
    d.decode(ipfix([tpl]), "e", 0)
    assert 1 == len(d.decode(ipfix([set_(256, REC)]), "e", 59))
    d.decode(ipfix([tpl]), "e", 100)  # refreshed
    assert 1 == len(d.decode(ipfix([set_(256, REC)]), "e", 150))
    assert [] == d.decode(ipfix([set_(256, REC)]), "e", 161)
    assert 1 == d.drops["template_expired"]


def test_options_template_sampling_is_kept() -> None:
    d = FlowDecoder()
    # scope: observationDomainId (149, 4); options: samplingPacketInterval 305, Space 306
    opt = struct.pack("!HHH", 300, 3, 1) + struct.pack("!HHHHHH", 149, 4, 305, 4, 306, 4)
    rec = struct.pack("!III", 7, 1, 99)
    d.decode(ipfix([set_(3, opt), set_(300, rec)]), "e", 0)
    assert {"e/7": 100} == d.stats()["sampling"]
    assert 7 == d.options[("e", 7)][300]["scope:149"]


def test_v9_options_template_sampling_interval_scales_counts() -> None:
    d = FlowDecoder()
    # scope: system (1, 4); option SAMPLING_INTERVAL 34 (4), SAMPLING_ALGORITHM 35 (1)
    opt = struct.pack("!HHH", 260, 4, 8) + struct.pack("!HHHHHH", 1, 4, 34, 4, 35, 1)
    rec = struct.pack("!IIB", 0, 64, 2) + b"\x00\x00\x00"  # padded to 4
    d.decode(v9([set_(1, opt), set_(260, rec)]), "r", 0)
    assert {"r/3": 64} == d.stats()["sampling"]
    fields = [(8, 4), (12, 4), (1, 4), (2, 4)]
    data = socket.inet_aton("10.0.0.1") + socket.inet_aton("10.0.0.2") + struct.pack("!II", 100, 2)
    (f,) = d.decode(v9([set_(0, template(256, fields)), set_(256, data)]), "r", 0)
    assert (6400, 128) == (f.octets, f.packets)
    raw = FlowDecoder(scale_sampled=False)
    raw.decode(v9([set_(1, opt), set_(260, rec)]), "r", 0)
    (g,) = raw.decode(v9([set_(0, template(256, fields)), set_(256, data)]), "r", 0)
    assert (100, 2) == (g.octets, g.packets)


def test_variable_length_and_enterprise_fields_are_skipped() -> None:
    """RFC 7011 §7 (1- and 3-byte length prefixes) and §3.2 (enterprise bit + PEN)."""
    d = FlowDecoder()
    fields = [(8, 4), (12, 4), (96, 65535), (7, 2), (1, 2, 9), (11, 2), (4, 1), (1, 4),
              (2, 4), (5000, 65535, 29305)]
    body = (socket.inet_aton("10.0.0.9") + socket.inet_aton("8.8.8.8") + b"\x03abc"
            + struct.pack("!H", 5353) + b"ZZ" + struct.pack("!HBII", 53, 17, 120, 2)
            + b"\xff\x01\x00" + b"x" * 256)
    body2 = (socket.inet_aton("10.0.0.9") + socket.inet_aton("8.8.4.4") + b"\x00"
             + struct.pack("!H", 1) + b"ZZ" + struct.pack("!HBII", 53, 17, 60, 1) + b"\x00")
    flows = d.decode(ipfix([set_(2, template(400, fields)), set_(400, body + body2)]), "e", 0)
    assert [("8.8.8.8", 5353, 53, 17, 120, 2), ("8.8.4.4", 1, 53, 17, 60, 1)] == [
        (f.dst_addr, f.src_port, f.dst_port, f.protocol, f.octets, f.packets) for f in flows]


def test_ipv6_and_reduced_size_counters() -> None:
    d = FlowDecoder()
    fields = [(27, 16), (28, 16), (4, 1), (1, 3), (2, 2)]
    rec = (socket.inet_pton(socket.AF_INET6, "2001:db8::1")
           + socket.inet_pton(socket.AF_INET6, "2001:db8::2") + b"\x11" + b"\x01\x00\x00"
           + b"\x00\x07")
    (f,) = d.decode(ipfix([set_(2, template(256, fields)), set_(256, rec)]), "e", 0)
    assert ("2001:db8::1", "2001:db8::2", 65536, 7) == (f.src_addr, f.dst_addr, f.octets,
                                                        f.packets)


def test_v9_sysuptime_times_are_absolute() -> None:
    d = FlowDecoder()
    fields = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4)]
    rec = socket.inet_aton("10.0.0.1") + socket.inet_aton("10.0.0.2") + struct.pack(
        "!IIII", 4_000, 9_000, 10, 1)
    (f,) = d.decode(v9([set_(0, template(256, fields)), set_(256, rec)], uptime=10_000,
                       unix_secs=1000), "r", 0)
    assert (994.0, 999.0) == (f.start, f.end)


def test_sequence_gaps_ipfix_counts_records_and_v9_counts_packets() -> None:
    d = FlowDecoder()
    d.decode(ipfix([set_(2, template(256, FLOW_FIELDS))], seq=0), "e", 0)
    d.decode(ipfix([set_(256, REC * 3)], seq=0), "e", 0)
    d.decode(ipfix([set_(256, REC)], seq=3), "e", 0)
    d.decode(ipfix([set_(256, REC)], seq=10), "e", 0)  # 6 records lost
    d.decode(ipfix([set_(256, REC)], seq=5), "e", 0)  # late
    s = d.sequence[("e", 10, 7)]
    assert (1, 6, 1) == (s.gaps, s.lost, s.out_of_order)
    for seq in (100, 101, 104):
        d.decode(v9([], seq=seq), "r", 0)
    s9 = d.sequence[("r", 9, 3)]
    assert (1, 2) == (s9.gaps, s9.lost)


def test_malformed_messages_are_counted_by_reason() -> None:
    d = FlowDecoder()
    good_tpl = set_(2, template(256, FLOW_FIELDS))
    cases = {
        "short_header": b"\x00\x0a\x00",
        "bad_version": struct.pack("!HH", 5, 24) + b"\x00" * 20,
        "length_mismatch": ipfix([good_tpl], length=99),
        "set_too_short": ipfix([struct.pack("!HH", 256, 0)]),  # zero-length set: a length loop
        "set_overrun": ipfix([struct.pack("!HH", 256, 200) + b"\x00" * 8]),
        "set_truncated": ipfix([b"\x01"]),
        "bad_set_id": ipfix([set_(100, b"\x00" * 4)]),
        "template_malformed": ipfix([set_(2, struct.pack("!HH", 256, 5) + b"\x00\x08")]),
        "zero_length_field": v9([set_(0, struct.pack("!HHHH", 256, 1, 8, 0))]),
    }
    for reason, msg in cases.items():
        assert [] == d.decode(msg, "e", 0), reason
        assert d.drops[reason] >= 1, reason
    assert 0 == d.stats()["active_templates"]


def test_truncated_variable_length_record_counted() -> None:
    d = FlowDecoder()
    fields = [(8, 4), (12, 4), (96, 65535)]
    rec = socket.inet_aton("10.0.0.1") + socket.inet_aton("10.0.0.2") + b"\xff\x10\x00abc"
    d.decode(ipfix([set_(2, template(256, fields)), set_(256, rec)]), "e", 0)
    assert 1 == d.drops["record_truncated"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    d = FlowDecoder()
    d.decode(data, "f", 0)
    d.decode(b"\x00\x0a" + data, "f", 0)
    d.decode(b"\x00\x09" + data, "f", 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 70000), st.binary(max_size=60)), max_size=6),
       st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535)), max_size=8),
       st.integers(0, 2**32 - 1))
def test_fuzz_structured_messages_never_raise(sets: list[tuple[int, bytes]],
                                              fields: list[tuple[int, int]], seq: int) -> None:
    """Well-framed headers around hostile templates and data: count, never crash."""
    d = FlowDecoder()
    tpl = struct.pack("!HH", 256, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
    body = [set_(2, tpl), set_(0, tpl), set_(3, tpl + b"\x00")]
    for sid, payload in sets:
        body.append(set_(sid % 65536, payload))
    for msg in (ipfix(body, seq=seq), v9(body, seq=seq)):
        flows = d.decode(msg, "f", 0)
        assert all(f.packets >= 0 for f in flows)
    for i in range(len(body)):
        d.decode(ipfix(body[: i + 1])[:-1], "f", 0)  # truncated mid-set


def test_collector_survives_garbage_and_keeps_decoding() -> None:
    """Junk datagrams over real UDP are counted; a later good message still decodes."""


    got: list[object] = []
    with FlowCollector(got.extend) as collector, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for junk in (b"", b"\x00", b"\x00\x0a" + b"\xff" * 40, b"\x00\x09" + b"\x00" * 30,
                     ipfix([struct.pack("!HH", 256, 0)])):
            tx.sendto(junk, (collector.host, collector.port))
        tx.sendto(ipfix([set_(2, template(256, FLOW_FIELDS)), set_(256, REC)]),
                  (collector.host, collector.port))
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        drops = collector.decoder.drops
    assert 1 == len(got)
    assert sum(drops.values()) >= 4
