"""The RFC 5080 §2.2.2 retransmission cache: keys and entries the collector never tracks."""

from __future__ import annotations

import gc

import pytest

from simtrust.aaa._admission import AnswerCache, answer_key

AUTH = bytes(range(16))


def test_keys_tell_every_field_of_a_request_apart() -> None:
    base = answer_key(7, ("127.0.0.1", 1812), 9, AUTH)
    others = [answer_key(8, ("127.0.0.1", 1812), 9, AUTH),
              answer_key(7, ("127.0.0.2", 1812), 9, AUTH),
              answer_key(7, ("127.0.0.1", 1813), 9, AUTH),
              answer_key(7, ("127.0.0.1", 1812), 10, AUTH),
              answer_key(7, ("127.0.0.1", 1812), 9, AUTH[::-1]),
              answer_key(7, ("fe80::1", 1812, 0, 2), 9, AUTH),
              answer_key(7, ("fe80::1", 1812, 0, 3), 9, AUTH)]
    assert len({base, *others}) == 1 + len(others)
    assert base == answer_key(7, ("127.0.0.1", 1812), 9, AUTH)


def test_nothing_the_cache_keeps_is_tracked_by_the_collector() -> None:
    cache = AnswerCache(ttl=30.0, capacity=100)
    keys = [answer_key(1, ("127.0.0.1", 40000 + n), n % 256, AUTH) for n in range(50)]
    cache.remember(keys[0], None)
    cache.remember_many((k, b"\x02" + bytes(19)) for k in keys[1:])
    assert not any(gc.is_tracked(k) for k in cache._answers)
    assert not any(gc.is_tracked(v) for v in cache._answers.values())


def test_in_progress_answered_forgotten_and_oldest_dropped() -> None:
    cache = AnswerCache(ttl=30.0, capacity=2)
    a, b, c = (answer_key(1, ("127.0.0.1", 5000), n, AUTH) for n in range(3))
    assert cache.lookup(a) == (False, None)
    cache.remember(a, None)
    assert cache.lookup(a) == (True, None)  # still being worked on: the copy is dropped
    cache.remember(a, b"answer-a")
    assert cache.lookup(a) == (True, b"answer-a")
    cache.remember_many([(b, b"answer-b"), (c, b"answer-c")])
    assert cache.lookup(a) == (False, None)  # capacity 2: the oldest went
    assert cache.lookup(c) == (True, b"answer-c")
    cache.forget(c)
    assert cache.lookup(c) == (False, None)
    assert len(cache) == 1


def test_an_expired_answer_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = AnswerCache(ttl=30.0, capacity=10)
    key = answer_key(1, ("127.0.0.1", 5000), 1, AUTH)
    now = [1000.0]
    monkeypatch.setattr("simtrust.aaa._admission.time.monotonic", lambda: now[0])
    cache.remember(key, b"answer")
    now[0] += 29.0
    assert cache.lookup(key) == (True, b"answer")
    now[0] += 2.0
    assert cache.lookup(key) == (False, None)
    assert len(cache) == 0
