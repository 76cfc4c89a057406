"""The random pool hands out each octet of its ``os.urandom`` blocks once, in order, and a
forked child does not hand out what its parent still holds."""

from __future__ import annotations

import os
import threading

import pytest

from simtrust.crypto import RandomPool, pooled_random


def test_draws_are_consecutive_slices_of_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = [bytes(range(256)), bytes(range(255, -1, -1))]
    calls: list[int] = []

    def urandom(n: int) -> bytes:
        calls.append(n)
        return blocks[len(calls) - 1][:n]

    monkeypatch.setattr(os, "urandom", urandom)
    pool = RandomPool(256)
    assert bytes(range(16)) == pool(16)
    assert bytes(range(16, 48)) == pool(32)
    assert [256] == calls  # one system call for both
    assert bytes(range(48, 240)) == pool(64) + pool(64) + pool(64)  # still fits
    # 32 more do not fit: they come from a fresh block, the old block's tail is dropped
    assert bytes(range(255, 223, -1)) == pool(32)
    assert [256, 256] == calls


def test_large_draws_go_straight_to_the_system() -> None:
    pool = RandomPool(256)
    calls: list[int] = []
    real = os.urandom

    def urandom(n: int) -> bytes:
        calls.append(n)
        return real(n)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "urandom", urandom)
        assert 65 == len(pool(65))
    assert [65] == calls  # asked for as such, nothing pooled for it
    with pytest.raises(ValueError, match="negative"):
        pool(-1)
    with pytest.raises(ValueError, match="64"):
        RandomPool(32)


def test_threads_never_get_the_same_octets() -> None:
    pool = RandomPool(1024)
    seen: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [pool(16) for _ in range(500)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 2000 == len(set(seen))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_other_octets_than_its_parent() -> None:
    pooled_random(1)  # the parent's pool holds a block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, pooled_random(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert 16 == len(child)
    assert child != pooled_random(16)
