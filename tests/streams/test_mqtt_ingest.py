"""Frames published on the real broker (Mosquitto) are stored by the ingest, and bad ones
are refused, counted and still acknowledged (they will never be good)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from simtrust.runtime import Runtime
from simtrust.streams import (
    Author,
    MqttChannelPublisher,
    MqttStreamIngest,
    SodiumSigner,
    frame_id,
)
from tests.conftest import require_service

URL = "mqtt://127.0.0.1:1883"


def test_frames_on_the_broker_are_stored_and_bad_ones_counted(sqlite_runtime: Runtime,
                                                              tmp_path: Path) -> None:
    require_service("mqtt")
    rt = sqlite_runtime
    rt.tenants.create_tenant("acme", "Acme")
    ticks = itertools.count(1)
    author = Author(SodiumSigner.generate(), lambda: next(ticks))
    channel = rt.streams.open_channel("acme", author.announce.to_bytes(), actor="t")["id"]
    prefix = f"simtrust-test/{tmp_path.name}"
    ingest = MqttStreamIngest(URL, rt.streams, prefix=prefix,
                              client_id=f"ingest-{tmp_path.name}"[:23])
    publisher = MqttChannelPublisher(URL, prefix=prefix)
    try:
        assert ingest.wait_subscribed()
        frames = [author.publish(f"r{n}".encode()).to_bytes() for n in range(20)]
        forged = bytearray(author.publish(b"x").to_bytes())
        forged[-3] ^= 0x40
        publisher.publish_many(author.channel, [*frames, b"STF1 garbage", bytes(forged),
                                                frames[0]])
        publisher.publish_many(bytes(32), [frames[1]])
        deadline = time.monotonic() + 30
        while sum(ingest.counts.values()) < 24 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        publisher.close()
        ingest.close()
    assert {"ok": 20, "malformed": 1, "forged": 1, "replay": 1, "not-found": 1} == dict(
        ingest.counts)
    stored = [m["message_id"] for m in rt.streams.messages(channel, limit=100)][1:]
    assert [frame_id(f).hex() for f in frames] == stored
    assert {"malformed": 1, "forged": 1, "replay": 1} == rt.streams.channel(channel)["rejected"]
