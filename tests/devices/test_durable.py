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

from simtrust.alerts import MemorySink
from simtrust.config import load_settings
from simtrust.devices import CredentialStore, DeviceAlert, DeviceManager, Message, MsgType, Peer
from simtrust.devices._coap import Code, Opt
from simtrust.runtime import Runtime
from simtrust.subscriber import build_services

from .conftest import IMEI1, IMEI2, TENANT, add_sim, imsi

IMSI_A, IMSI_B, IMSI_C = (imsi(n).value for n in (11, 12, 13))

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


def test_imei_change_against_the_stored_imei_is_found_by_the_writer(tmp_path: Path) -> None:
    """After a restart (no registration in memory, nothing pending) the IMEI a SIM reports
    is compared with the stored one by the writer thread, in its batch: a different one
    raises imei-changed once durable, the same one raises nothing and is not rewritten."""
    rt = Runtime.initialise(load_settings(env={}, home=tmp_path / "home"))
    try:
        store = CredentialStore(rt.db, rt.keyring, lambda: datetime.now(UTC))
        store.record_imei(IMSI_A, "urn:imei:490154203237518", "490154203237518")
        store.record_imei(IMSI_B, "urn:imei:356938035643809", "356938035643809")
        store.flush()
        fresh = CredentialStore(rt.db, rt.keyring, lambda: datetime.now(UTC))
        seen: list[tuple[str, str]] = []
        fresh.record_imei(IMSI_A, "urn:imei:356938035643809", "356938035643809",
                          changed=lambda before: seen.append((IMSI_A, before)))
        fresh.record_imei(IMSI_B, "urn:imei:356938035643809", "356938035643809",
                          changed=lambda before: seen.append((IMSI_B, before)))
        fresh.record_imei(IMSI_C, "urn:imei:356938035643809", "356938035643809",
                          changed=lambda before: seen.append((IMSI_C, before)))
        fresh.flush()
        assert [(IMSI_A, "490154203237518")] == seen
        assert "356938035643809" == fresh.last_imei(IMSI_A)
        assert "356938035643809" == fresh.last_imei(IMSI_C)
    finally:
        rt.close()


def test_manager_alerts_an_imei_change_seen_only_in_the_store(tmp_path: Path) -> None:
    """A management server that restarted (empty memory) alerts a SIM registering from
    another device than the one stored, through the writer's batch comparison."""
    rt = Runtime.initialise(load_settings(env={}, home=tmp_path / "home"))
    try:
        store = CredentialStore(rt.db, rt.keyring, lambda: datetime.now(UTC))
        store.record_imei(IMSI_A, f"urn:imei-imsi:{IMEI1}-{IMSI_A}", IMEI1)
        store.flush()
        rt.tenants.create_tenant(TENANT, "Acme")
        subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
        add_sim(subs, 11)

        class Sink:
            def send(self, peer: Peer, data: bytes) -> None:
                return None

        alerts = MemorySink[DeviceAlert]()
        restarted = DeviceManager(subs.inventory, store, [alerts], lambda: datetime.now(UTC),
                                  allow_nosec=True)
        reply = restarted.handle(Peer(("10.0.0.1", 5683), Sink()), Message(
            MsgType.CON, Code.POST, 1, b"", ((Opt.URI_PATH, b"rd"), (Opt.URI_QUERY, (
                f"ep=urn:imei-imsi:{IMEI2}-{IMSI_A}").encode()))))
        assert reply is not None
        assert Code.CREATED == reply.code
        store.flush()
        assert ["imei-changed"] == [a.kind for a in alerts.alerts]
        assert IMEI1 == alerts.alerts[0].document()["previous_imei"]
    finally:
        rt.close()
