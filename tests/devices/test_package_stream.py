"""A pushed firmware package is streamed from its stored file (devices/_packages.py
``StoredPackage``): Block1 blocks read by offset are byte-identical to the package, and a
package of several MB costs constant memory (tracemalloc peak far below its size); a file
changed after its digest was checked fails the transfer."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any, cast

import pytest

from simtrust.devices import CON, Code, FirmwarePackages, Message, MsgType, Opt
from simtrust.devices._blockwise import CONTINUE, decode_block, encode_block, exchange
from simtrust.errors import NotFound

SIZE = 6 << 20  # 6 MiB
BLOCK = 1024


class RecordingPeer:
    """Answers every Block1 block like a device (2.31 Continue, 2.04 on the last), hashing
    what it received and checking that blocks arrive in order."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.received = 0
        self.blocks = 0
        self.size1: int | None = None

    async def request(self, _peer: object, msg: Message, **_kw: Any) -> Message:
        block = decode_block(msg.first(Opt.BLOCK1) or b"")
        assert block.offset == self.received
        if block.num == 0:
            self.size1 = msg.uint(Opt.SIZE1)
        self.digest.update(msg.payload)
        self.received += len(msg.payload)
        self.blocks += 1
        code = CONTINUE if block.more else Code.CHANGED
        return Message(MsgType.ACK, code, msg.mid, msg.token,
                       ((Opt.BLOCK1, encode_block(block)),))


def _store(tmp_path: Path) -> tuple[FirmwarePackages, str]:
    packages = FirmwarePackages(tmp_path / "fw", max_bytes=SIZE)
    upload = packages.begin("acme")
    digest = hashlib.sha256()
    for i in range(SIZE // (1 << 20)):
        chunk = hashlib.sha256(bytes([i])).digest() * (1 << 15)  # 1 MiB, differs per MiB
        digest.update(chunk)
        upload.write(chunk)
    info = upload.commit(digest.hexdigest())
    return packages, info.digest


def test_stored_package_is_streamed_block_by_block_in_constant_memory(tmp_path: Path) -> None:
    packages, digest = _store(tmp_path)
    peer = RecordingPeer()
    tracemalloc.start()
    try:
        package = packages.open("acme", digest)  # digest checked, file read in chunks
        msg = Message(CON, Code.PUT, 0, b"", ((Opt.URI_PATH, b"5"), (Opt.URI_PATH, b"0"),
                                              (Opt.URI_PATH, b"0")))
        resp = asyncio.run(exchange(cast(Any, peer), cast(Any, ("127.0.0.1", 5683)), msg,
                                    block_size=BLOCK, source=package))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Code.CHANGED == resp.code
    assert (SIZE, SIZE // BLOCK, SIZE) == (peer.received, peer.blocks, peer.size1)
    assert digest == peer.digest.hexdigest()  # byte-identical to the stored package
    assert peak < 1 << 20, f"peak {peak} bytes for a {SIZE}-byte package"


def test_a_package_changed_after_its_check_fails_the_transfer(tmp_path: Path) -> None:
    packages = FirmwarePackages(tmp_path / "fw", max_bytes=1 << 16)
    upload = packages.begin("acme")
    upload.write(b"firmware 3.0.0\n" + bytes(5000))
    info = upload.commit()
    package = packages.open("acme", info.digest)
    assert (5015, info.digest) == (package.size, package.digest)
    assert b"firmware" == package.read(0, 8)
    assert info.digest[:12] in repr(package)
    path = tmp_path / "fw" / "acme" / info.digest
    path.chmod(0o600)
    with path.open("r+b") as f:
        f.write(b"FIRMWARE")
    os.utime(path, ns=(1, 1))
    with pytest.raises(NotFound):
        package.read(0, 8)
    with pytest.raises(NotFound):  # the changed file no longer matches its digest
        packages.open("acme", info.digest)
