"""CoAP message and LwM2M content-format codecs: fixed vectors, round trips and fuzzing of
the decoders of untrusted bytes (each either decodes or raises DecodeError)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.devices import (
    CF_SENML_CBOR,
    CF_SENML_JSON,
    CF_TEXT,
    CF_TLV,
    Code,
    Message,
    MsgType,
    ObjLink,
    Opt,
    check_links,
    decode_content,
    decode_message,
    encode_content,
    encode_message,
    parse_endpoint,
    parse_links,
    parse_path,
)
from simtrust.errors import DecodeError


def test_coap_get_vector_rfc7252() -> None:
    """CON GET /3/0 with token 0x71, MID 0x1234 as RFC 7252 §3 lays it out."""
    wire = bytes.fromhex("41011234" "71" "b133" "0130")
    msg = decode_message(wire)
    assert (MsgType.CON, Code.GET, 0x1234, b"\x71") == (msg.mtype, msg.code, msg.mid, msg.token)
    assert ["3", "0"] == msg.path
    assert wire == encode_message(msg)


def test_coap_extended_option_deltas_round_trip() -> None:
    msg = Message(MsgType.NON, Code.CONTENT, 7, b"tok", (
        (Opt.OBSERVE, b"\x05"), (Opt.CONTENT_FORMAT, (11542).to_bytes(2, "big")),
        (Opt.SIZE1, b"\x01\x00"), (2048, b"x" * 300)), b"payload")
    assert msg == decode_message(encode_message(msg))


@pytest.mark.parametrize("wire", [
    b"\x40\x01", bytes.fromhex("81010000"), bytes.fromhex("49010000") + b"\x00" * 9,
    bytes.fromhex("40010000ff"), bytes.fromhex("400100" "00" "f0"),
    bytes.fromhex("40000000" "ff01"), bytes.fromhex("40e00000"),
    bytes.fromhex("40010000" "d1"), bytes.fromhex("40010000" "b5" "3132"),
])
def test_coap_format_errors(wire: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(wire)


@pytest.mark.parametrize("wire", [
    bytes.fromhex("40010000" "1d"), bytes.fromhex("40010000" "1e00"),  # length 13/14 cut
    bytes.fromhex("40010000" "e0"), bytes.fromhex("40010000" "1f"),  # delta cut, nibble 15
    bytes.fromhex("40010000" "1d05") + b"x" * 17,  # extended length runs past the end
])
def test_coap_extended_nibbles_checked(wire: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(wire)


def test_parse_path_is_cached_but_refusals_are_not() -> None:
    assert parse_path("/3/0/9") is parse_path("/3/0/9")
    assert (3, 0, 9) == parse_path("/3/0/9")
    for _ in range(2):  # a refused text raises every time, it is never remembered
        with pytest.raises(ValueError):
            parse_path("/3/70000")


@given(st.binary(max_size=300))
@settings(max_examples=150, deadline=None)
def test_fuzz_coap_decoder(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except DecodeError:
        return
    assert msg == decode_message(encode_message(msg))


VALUES: dict[tuple[int, ...], Any] = {(3, 0, 0): "simtrust", (3, 0, 9): 87, (3, 0, 13): 1_700_000_000,
          (3, 0, 6, 0): 1, (3, 0, 6, 1): 5, (6, 0, 0): 48.8566, (1, 0, 6): True,
          (0, 1, 5): b"\x00\x01secret"}


@pytest.mark.parametrize("fmt", [CF_SENML_JSON, CF_SENML_CBOR, CF_TLV])
def test_content_round_trip(fmt: int) -> None:
    for obj in (0, 1, 3, 6):
        sub = {p: v for p, v in VALUES.items() if p[0] == obj}
        base = (obj, next(iter(sub))[1])
        assert sub == decode_content(fmt, encode_content(fmt, sub, base), base)


def test_tlv_vector_device_object() -> None:
    """Core §7.4.3.2 example shape: resource 0 "Open Mobile Alliance" in an instance."""
    wire = bytes.fromhex("C8 00 14 4F70656E204D6F62696C6520416C6C69616E6365".replace(" ", ""))
    assert {(3, 0, 0): "Open Mobile Alliance"} == decode_content(CF_TLV, wire, (3, 0))
    multi = bytes.fromhex("86 06 41 00 01 41 01 05".replace(" ", ""))
    assert {(3, 0, 6, 0): 1, (3, 0, 6, 1): 5} == decode_content(CF_TLV, multi, (3, 0))


def test_senml_json_base_name_and_objlnk() -> None:
    doc = [{"bn": "/3/0/", "n": "0", "vs": "ACME"}, {"n": "9", "v": 50},
           {"bn": "/1/0/", "n": "7", "vs": "U"}]
    assert {(3, 0, 0): "ACME", (3, 0, 9): 50, (1, 0, 7): "U"} == decode_content(
        CF_SENML_JSON, json.dumps(doc).encode(), (3,))
    link = cbor2.dumps([{0: "/99/0/1", "vlo": "3:0"}])
    assert {(99, 0, 1): ObjLink(3, 0)} == decode_content(CF_SENML_CBOR, link, (99,))


@pytest.mark.parametrize(("fmt", "payload"), [
    (CF_SENML_JSON, b"{"), (CF_SENML_JSON, b'[{"n":"/3/0/9","v":"x"}]'),
    (CF_SENML_JSON, b'[{"n":"/3/0/9","v":1.5}]'), (CF_SENML_JSON, b'[{"n":"/a/b"}]'),
    (CF_SENML_JSON, b'[{"n":"/3/0/0","vs":"a","v":1}]'), (CF_SENML_CBOR, b"\xff"),
    (CF_SENML_CBOR, cbor2.dumps({"not": "a list"})), (CF_TLV, b"\xc8\x00\x14ab"),
    (CF_TLV, b"\xc1\x09"), (CF_TEXT, b"\xff"), (11543, b"[]"),
])
def test_malformed_content_is_refused(fmt: int, payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_content(fmt, payload, (3, 0, 9) if fmt == CF_TEXT else (3, 0))


@given(st.sampled_from([CF_SENML_JSON, CF_SENML_CBOR, CF_TLV, CF_TEXT]),
       st.binary(max_size=200),
       st.sampled_from([(3,), (3, 0), (3, 0, 9), (5, 0, 1), (6, 0), (0, 1)]))
@settings(max_examples=250, deadline=None)
def test_fuzz_content_decoders(fmt: int, data: bytes, base: tuple[int, ...]) -> None:
    with contextlib.suppress(DecodeError):
        decode_content(fmt, data, base)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                    | st.binary(max_size=8) | st.floats(allow_nan=True),
                    lambda c: st.lists(c, max_size=4)
                    | st.dictionaries(st.integers(-3, 8) | st.sampled_from(["vlo", "n"]), c,
                                      max_size=4), max_leaves=12))
@settings(max_examples=150, deadline=None)
def test_fuzz_senml_cbor_structures(doc: object) -> None:
    with contextlib.suppress(DecodeError):
        decode_content(CF_SENML_CBOR, cbor2.dumps(doc), (3, 0))


@given(st.text(max_size=80))
@settings(max_examples=150, deadline=None)
def test_fuzz_link_format_and_endpoint(text: str) -> None:
    for fn in (lambda: parse_links(text.encode()), lambda: parse_endpoint(text)):
        with contextlib.suppress(DecodeError):
            fn()


def _verdict(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except DecodeError:
        return False
    return True


@given(st.lists(st.sampled_from(["<", ">", "</3/0>", "</1/0>", ",", ";", "=", '"', "ver",
                                 "1.1", "rt", "a,b", "é", " "]), max_size=14).map("".join)
       | st.text(alphabet='<>/0123;=,"ab', max_size=40))
@settings(max_examples=300, deadline=None)
def test_check_links_accepts_exactly_what_parse_links_accepts(text: str) -> None:
    """The registration's regular-expression check and the parser agree on every body."""
    body = text.encode()
    assert _verdict(lambda: parse_links(body)) == _verdict(lambda: check_links(body))


def test_check_links_returns_the_text_and_bounds_the_records() -> None:
    assert "</1/0>,</3/0>;ver=1.1" == check_links(b"</1/0>,</3/0>;ver=1.1")
    assert '</>;rt="oma.lwm2m"' == check_links(b'</>;rt="oma.lwm2m"')
    with pytest.raises(DecodeError):
        check_links(b"</1/0>;=x")
    with pytest.raises(DecodeError):
        check_links(b"\xff")
    with pytest.raises(DecodeError):  # one link over the parser's record limit
        check_links(",".join(["</3/0>"] * 513).encode())
    check_links(",".join(["</3/0>"] * 512).encode())


def test_links_and_endpoint_names() -> None:
    assert [("/", {"rt": "oma.lwm2m", "ct": "110"}), ("/1/0", {}), ("/3/0", {"ver": "1.1"})] \
        == parse_links(b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>;ver=1.1')
    assert ("490154203237518", "001010000000001") == parse_endpoint(
        "urn:imei-imsi:490154203237518-001010000000001")
    with pytest.raises(DecodeError):
        parse_endpoint("urn:imei:490154203237519")  # Luhn check digit wrong
