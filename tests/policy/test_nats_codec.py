"""The flow-batch encoding (``simtrust.policy._nats_codec``): round trip and a strict decoder."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.domain import FlowRecord
from simtrust.errors import InvalidInput
from simtrust.flows import BatchDecodeError, FlowBatch, MappedFlow, decode_batch, encode_batch

V4 = st.ip_addresses(v=4).map(str)
# addresses as the IPFIX decoder writes them (inet_ntop text, e.g. ::ffff:0.0.0.0)
V6 = st.ip_addresses(v=6).map(lambda a: socket.inet_ntop(socket.AF_INET6, a.packed))
TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False)
IMSIS = st.from_regex(r"\A[0-9]{5,15}\Z")


@st.composite
def mapped_flows(draw: st.DrawFn) -> MappedFlow:
    imsi = draw(st.none() | IMSIS)
    record = FlowRecord(
        draw(TIMES), draw(TIMES), draw(V4 | V6), draw(V4 | V6),
        draw(st.integers(0, 65535)), draw(st.integers(0, 65535)), draw(st.integers(0, 255)),
        draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(0, 255)), draw(st.sampled_from(["", "10.0.0.1:4739", "gw-ü"])), imsi)
    return MappedFlow(record, draw(st.booleans()) if imsi is not None else False)


@settings(max_examples=150, deadline=None)
@given(st.lists(mapped_flows(), min_size=1, max_size=40), st.integers(1, 64), st.data())
def test_round_trip_returns_every_field(flows: list[MappedFlow], partitions: int,
                                        data: st.DataObject) -> None:
    partition = data.draw(st.integers(0, partitions - 1))
    raw = encode_batch(flows, partition=partition, partitions=partitions)
    assert FlowBatch(partitions, partition, flows) == decode_batch(raw)


def _valid() -> bytes:
    flows = [MappedFlow(FlowRecord(1.0, 2.0, "10.64.0.1", "192.0.2.1", 40000, 443, 6, 3, 900,
                                   0x1B, "gw", "001010000000001"), True),
             MappedFlow(FlowRecord(1.0, 2.0, "2001:db8::1", "10.64.0.2", 53, 4000, 17, 1, 80,
                                   0, "gw", None), False)]
    return encode_batch(flows, partition=2, partitions=4)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_batch_decode_error(data: bytes) -> None:
    reason = ""
    try:
        batch = decode_batch(data)
    except BatchDecodeError as exc:
        reason = exc.reason
    else:
        assert batch.flows
        return
    assert reason


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_message_is_rejected_or_self_consistent(data: st.DataObject) -> None:
    raw = bytearray(_valid())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        batch = decode_batch(bytes(raw))
    except BatchDecodeError:
        return
    again = encode_batch(batch.flows, partition=batch.partition, partitions=batch.partitions)
    assert batch == decode_batch(again)


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda b: b[:10], "short_header"),
    (lambda b: b"XXXX" + b[4:], "bad_magic"),
    (lambda b: b[:4] + b"\x02" + b[5:], "bad_version"),
    (lambda b: b[:5] + b"\x01" + b[6:], "reserved_flags"),
    (lambda b: b[:8] + struct.pack("!H", 4) + b[10:], "bad_partition"),
    (lambda b: b[:10] + struct.pack("!H", 0) + b[12:], "bad_count"),
    (lambda b: b + b"\x00", "trailing_bytes"),
    (lambda b: b[:-1], "record_truncated"),
])
def test_decoder_names_the_reason(mutate: object, reason: str) -> None:
    with pytest.raises(BatchDecodeError) as err:
        decode_batch(mutate(_valid()))  # type: ignore[operator]
    assert reason == err.value.reason


def test_encoder_refuses_what_it_cannot_represent() -> None:
    good = FlowRecord(1.0, 2.0, "10.0.0.1", "10.0.0.2", 1, 2, 6, 1, 1)
    with pytest.raises(InvalidInput):
        encode_batch([], partition=0, partitions=1)
    with pytest.raises(InvalidInput):
        encode_batch([MappedFlow(good._replace(src_addr="host"), False)], partition=0,
                     partitions=1)
    with pytest.raises(InvalidInput):
        encode_batch([MappedFlow(good._replace(imsi="12ab5"), True)], partition=0, partitions=1)
    with pytest.raises(InvalidInput):
        encode_batch([MappedFlow(good._replace(octets=-1), False)], partition=0, partitions=1)
    with pytest.raises(InvalidInput):
        encode_batch([MappedFlow(good, False)], partition=1, partitions=1)
