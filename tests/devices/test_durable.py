"""A PSK the bootstrap server hands out is on disk before the device gets it: a process that
issued one and printed it (as it would write it to the device) is killed with SIGKILL,
and the key still resolves after reopening the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from simtrust.config import load_settings
from simtrust.devices import CredentialStore
from simtrust.runtime import Runtime

CHILD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from simtrust.config import load_settings
from simtrust.devices import CredentialStore
from simtrust.runtime import Runtime
rt = Runtime.open(load_settings(env={}, home=Path(sys.argv[1])))
store = CredentialStore(rt.db, rt.keyring, lambda: datetime.now(UTC))
identity, key = store.issue("dm", "001010000000001", "acme")
print(identity, key.hex(), flush=True)
time.sleep(600)
"""


def test_issued_psk_survives_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Runtime.initialise(load_settings(env={}, home=home)).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(home)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    identity, key_hex = proc.stdout.readline().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        entry = CredentialStore(rt.db, rt.keyring, lambda: datetime.now(UTC)).resolve(
            identity, "dm")
        assert entry is not None
        assert (bytes.fromhex(key_hex), "001010000000001") == (entry.key, entry.imsi)
    finally:
        rt.close()


def test_reported_imei_is_read_back_before_and_after_its_write(tmp_path: Path) -> None:
    """The IMEI a registration reported is seen by the next registration at once (before the
    writer thread commits it) and by a store opened afresh once flushed."""
    home = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        store = CredentialStore(rt.db, rt.keyring, lambda: datetime.now(UTC))
        assert store.last_imei("001010000000009") is None
        store.record_imei("001010000000009", "urn:imei:490154203237518", "490154203237518")
        assert "490154203237518" == store.last_imei("001010000000009")
        store.record_imei("001010000000009", "urn:imei:356938035643809", "356938035643809")
        store.flush()
        fresh = CredentialStore(rt.db, rt.keyring, lambda: datetime.now(UTC))
        assert "356938035643809" == fresh.last_imei("001010000000009")
    finally:
        rt.close()
