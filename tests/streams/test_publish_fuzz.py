"""Untrusted bytes at the stored service's door: anything that is not the channel's next
frame is refused with a typed error, counted, and never stored."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from simtrust.errors import Conflict, DecodeError, InvalidSignature
from simtrust.runtime import Runtime
from simtrust.streams import Author, SodiumSigner


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_and_random_frames_are_refused(sqlite_runtime: Runtime, data: st.DataObject
                                               ) -> None:
    rt = sqlite_runtime
    if not rt.tenants.list_tenants():
        rt.tenants.create_tenant("acme", "Acme")
    ticks = itertools.count(1)
    author = Author(SodiumSigner.generate(), lambda: next(ticks))
    channel = rt.streams.open_channel("acme", author.announce.to_bytes(), actor="t")["id"]
    good = author.publish(b"payload").to_bytes()
    if data.draw(st.booleans()):
        raw = data.draw(st.binary(max_size=400))
    else:
        mutated = bytearray(good)
        for _ in range(data.draw(st.integers(1, 4))):
            mutated[data.draw(st.integers(0, len(mutated) - 1))] ^= data.draw(st.integers(1, 255))
        raw = bytes(mutated)
    assume(raw != good)  # two flips of one byte can cancel out
    try:
        rt.streams.publish(channel, raw, actor="fuzz")
    except (DecodeError, InvalidSignature, Conflict):
        assert 1 == rt.streams.channel(channel)["messages"]
    else:
        raise AssertionError("a frame the author never signed was stored")
    assert "ok" == rt.streams.publish(channel, good, actor="t")["verdict"]
