"""Ed25519 verification spread over worker processes, in batches.

Signature verification is the one CPU-bound step of ingest that parallelizes
without shared state, so the node ships whole chunks of raw messages to a
process pool (one worker per core) and keeps decoding, validating and storing
in its own process while the workers verify (``docs/ledger.md``, "Ingest
pipeline"). A worker needs no decoder: the issuer key, signature and signed
bytes sit at fixed offsets of every message.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Sequence
from multiprocessing.pool import AsyncResult, Pool

from simtrust.ledger._codec import ISSUER_OFFSET, SIGNATURE_SIZE
from simtrust.ledger._keys import verify_ed25519_ok

__all__ = ["SignatureMemo", "UnlockJob", "VerifierPool", "verify_chunk"]

UnlockJob = tuple[bytes, bytes, bytes]


def verify_chunk(raws: Sequence[bytes], unlocks: Sequence[UnlockJob]) -> tuple[bytes, bytes]:
    """One status byte per message and per unlock job: 1 valid, 0 invalid."""
    ok = bytearray(len(raws))
    for i, raw in enumerate(raws):
        ok[i] = verify_ed25519_ok(
            raw[ISSUER_OFFSET : ISSUER_OFFSET + 32], raw[-SIGNATURE_SIZE:], raw[:-SIGNATURE_SIZE]
        )
    uok = bytearray(len(unlocks))
    for i, (key, sig, digest) in enumerate(unlocks):
        uok[i] = verify_ed25519_ok(key, sig, digest)
    return bytes(ok), bytes(uok)


class SignatureMemo:
    """Bounded memory of signature outcomes by message id (oldest forgotten first)."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int = 65_536) -> None:
        self.limit = limit
        #: Outcome by id: True (every signature valid), False (one does not verify).
        #: Read it directly on hot paths; write through :meth:`put`, which bounds it.
        self.seen: OrderedDict[bytes, bool] = OrderedDict()

    def __len__(self) -> int:
        return len(self.seen)

    def get(self, msg_id: bytes) -> bool | None:
        """True (every signature valid), False (one does not verify) or None (not known)."""
        return self.seen.get(msg_id)

    def put(self, msg_id: bytes, valid: bool) -> None:
        seen = self.seen
        seen[msg_id] = valid
        while len(seen) > self.limit:
            seen.popitem(last=False)


class VerifierPool:
    """A lazily started pool of ``workers`` processes (spawned, so safe beside threads)."""

    __slots__ = ("_pool", "workers")

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: Pool | None = None

    def submit(
        self, raws: Sequence[bytes], unlocks: Sequence[UnlockJob]
    ) -> AsyncResult[tuple[bytes, bytes]]:
        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers)
        return self._pool.apply_async(verify_chunk, (list(raws), list(unlocks)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
