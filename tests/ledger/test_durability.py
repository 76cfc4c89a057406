"""Durability: SIGKILL a real ingesting process; every acknowledged message survives and
the restarted node's state equals a recomputation from the store (docs/ledger.md "Durability")."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simtrust.store import Database
from tests.ledger.ingest_child import WALLETS, open_node

REPO = Path(__file__).resolve().parents[2]


def _run_and_kill(db_path: Path, min_acks: int, rng: random.Random) -> set[bytes]:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'src'}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.ingest_child", str(db_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    acked: set[bytes] = set()
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    try:
        while len(acked) < min_acks and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"ACK "):
                acked.add(bytes.fromhex(line[4:].strip().decode()))
        time.sleep(rng.uniform(0.0, 0.05))  # land the kill anywhere in the next batch
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Lines the child managed to write before dying were acknowledged too.
    for line in rest.splitlines():
        if line.startswith(b"ACK ") and len(line) == 68:
            acked.add(bytes.fromhex(line[4:].decode()))
    assert len(acked) >= min_acks, proc.stderr.read() if proc.stderr else "no output"
    assert proc.returncode == -signal.SIGKILL
    return acked


@pytest.mark.slow
def test_sigkill_mid_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db_path = tmp_path / "ledger.db"
    rng = random.Random(3)
    all_acked: set[bytes] = set()
    for round_ in range(3):
        acked = _run_and_kill(db_path, 300 + 150 * round_, rng)
        all_acked |= acked
        node = open_node(str(db_path))
        try:
            for mid in all_acked:
                assert node.status(mid)["state"] in ("finalized", "conflicting")
                assert mid == node.get_message(mid).id
            live = node.snapshot()
            assert live == node.recompute()
            assert live.messages == live.finalized  # one validator: nothing left unordered
            total = sum(node.balance(w.public_key).amount for w in WALLETS)
            assert 4_000_000 == total  # transfers move value among wallets, never create it
        finally:
            node.close()
            db: Database = node.db
            db.close()
        again = open_node(str(db_path))
        try:
            assert live == again.snapshot()  # a second restart resumes identically
        finally:
            again.close()
            again.db.close()
