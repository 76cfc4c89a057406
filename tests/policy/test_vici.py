"""The VICI event decoder (strongSwan's message format): a round trip of the messages
charon sends for ike-updown and ike-rekey, malformed input refused, fuzzed; and, between
network namespaces, the events of a real charon: up, IKE rekeyed, down with its alert."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from simtrust.errors import DecodeError
from simtrust.policy import TunnelEvents, render_swanctl
from simtrust.policy._vici import decode_vici, events_of

from .test_tunnels_netns import SPEC, lab, swanctl  # noqa: F401 - lab is a fixture


def _name(text: str) -> bytes:
    return bytes([len(text)]) + text.encode()


def section(name: str, *items: bytes) -> bytes:
    return b"\x01" + _name(name) + b"".join(items) + b"\x02"


def kv(name: str, value: str) -> bytes:
    return b"\x03" + _name(name) + struct.pack(">H", len(value)) + value.encode()


def lst(name: str, *values: str) -> bytes:
    return (b"\x04" + _name(name)
            + b"".join(b"\x05" + struct.pack(">H", len(v)) + v.encode() for v in values)
            + b"\x06")


def test_decodes_updown_and_rekey_messages() -> None:
    up = kv("up", "yes") + section("acme-iot", kv("uniqueid", "1"), kv("state", "ESTABLISHED"),
                                   lst("tasks-active", "IKE_ESTABLISH"))
    tree = decode_vici(up)
    assert {"up": b"yes", "acme-iot": {"uniqueid": b"1", "state": b"ESTABLISHED",
                                       "tasks-active": [b"IKE_ESTABLISH"]}} == tree
    [event] = events_of("ike-updown", tree, "t")
    assert ("up", "acme-iot", "1", "ESTABLISHED") == (event.kind, event.tunnel, event.ike_id,
                                                       event.state)
    rekey = section("acme-iot", section("old", kv("uniqueid", "1")),
                    section("new", kv("uniqueid", "2"), kv("state", "ESTABLISHED")))
    [event] = events_of("ike-rekey", decode_vici(rekey), "t")
    assert ("ike-rekeyed", "2", {"previous_ike_id": "1"}) == (event.kind, event.ike_id,
                                                              event.details)
    child = kv("up", "yes") + section("acme-iot", kv("uniqueid", "3"), section(
        "child-sas", section("acme-iot-4", kv("name", "acme-iot"), kv("state", "INSTALLED"))))
    [event] = events_of("child-updown", decode_vici(child), "t")
    assert ("child-up", "INSTALLED", {"child": "acme-iot"}) == (event.kind, event.state,
                                                                event.details)
    for bad in (b"\x01\x05ab", b"\x02", b"\x05\x00\x01x", b"\x09", section("a")[:-1],
                b"\x04\x01l\x03\x01k\x00\x00"):
        try:
            decode_vici(bad)
        except DecodeError:
            continue
        raise AssertionError(f"{bad!r} accepted")


@given(st.binary(max_size=300))
def test_decoder_never_crashes(data: bytes) -> None:
    try:
        tree = decode_vici(data)
    except DecodeError:
        return
    for name in ("ike-updown", "ike-rekey", "child-updown", "child-rekey"):
        events_of(name, tree, "t")


def test_events_of_a_real_charon_up_rekeyed_down_and_alert(lab: Path) -> None:  # noqa: F811
    (lab / "gw.conf").write_text(render_swanctl([SPEC], start=False))
    (lab / "ent.conf").write_text(render_swanctl([SPEC.mirrored()], start=False))
    swanctl(lab, "ent", "--load-all", "--file", str(lab / "ent.conf"))
    swanctl(lab, "gw", "--load-all", "--file", str(lab / "gw.conf"))
    alerts: list[object] = []
    events = TunnelEvents(str(lab / "gw" / "charon.vici"), [SPEC], on_alert=alerts.append)
    events.start()
    try:
        swanctl(lab, "gw", "--initiate", "--ike", SPEC.name, check=False)
        up = events.wait_for("up", SPEC.name)
        assert "ESTABLISHED" == up.state
        swanctl(lab, "gw", "--rekey", "--ike", SPEC.name, check=False)
        rekeyed = events.wait_for("ike-rekeyed", SPEC.name)
        assert rekeyed.details["previous_ike_id"] == up.ike_id
        assert rekeyed.ike_id != up.ike_id
        swanctl(lab, "gw", "--terminate", "--ike", SPEC.name, check=False)
        events.wait_for("down", SPEC.name)
    finally:
        events.close()
    assert ["tunnel-down"] == [a.kind for a in alerts]  # type: ignore[attr-defined]
    assert 0 == events.malformed
