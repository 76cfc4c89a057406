"""Acknowledged accounting survives kill -9 of a real ``simtrust serve`` process (RFC 2866
§2: the answer goes out after the group commit). ``ROUNDS`` > 1 restarts the process on
the same data directory and repeats."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from simtrust.aaa import Attr, Code, Packet
from simtrust.config import load_settings
from simtrust.runtime import Runtime

from .conftest import SECRET, wait_until

SENDERS = 6
ROUNDS = 1


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(session: str, identifier: int) -> bytes:
    packet = Packet(Code.ACCOUNTING_REQUEST, identifier)
    packet.add_int(Attr.ACCT_STATUS_TYPE, 1)
    packet.add(Attr.ACCT_SESSION_ID, session.encode())
    packet.add_int(Attr.ACCT_INPUT_OCTETS, 1234)
    return packet.sign_request(SECRET.encode())


def _sender(port: int, prefix: str, acked: list[str], stop: threading.Event) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        n = 0
        while not stop.is_set():
            session = f"{prefix}-{n}"
            try:
                sock.sendto(_request(session, n % 256), ("127.0.0.1", port))
                data, _ = sock.recvfrom(4096)
            except OSError:
                continue  # server gone or slow: this one was never acknowledged
            if data[0] == Code.ACCOUNTING_RESPONSE and data[1] == n % 256:
                acked.append(session)
            n += 1


def test_kill_9_loses_no_acknowledged_accounting(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.aaa.clients.add("127.0.0.1/32", SECRET, actor="test")
    finally:
        rt.close()
    all_acked: list[str] = []
    for round_no in range(ROUNDS):
        udp = _free_port(socket.SOCK_DGRAM)
        env_round = {**env, "SIMTRUST_RADIUS_ACCT_BIND": f"127.0.0.1:{udp}"}
        log = tmp_path / f"serve-{round_no}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "simtrust", "serve", "--bind",
                 f"127.0.0.1:{_free_port(socket.SOCK_STREAM)}"],
                env=env_round, stdout=out, stderr=subprocess.STDOUT,
            )
        try:
            probe: list[str] = []
            stop_probe = threading.Event()
            prober = threading.Thread(target=_sender, args=(udp, f"probe{round_no}", probe,
                                                            stop_probe))
            prober.start()
            wait_until(lambda probe=probe: probe, timeout=300)
            stop_probe.set()
            prober.join()
            acked: list[str] = []
            stop = threading.Event()
            threads = [threading.Thread(target=_sender, args=(udp, f"r{round_no}s{i}", acked,
                                                               stop)) for i in range(SENDERS)]
            for t in threads:
                t.start()
            try:  # below the test's own timeout, so that the server's log is shown
                wait_until(lambda acked=acked: len(acked) >= 300, timeout=240)
            except AssertionError:
                tail = log.read_text(errors="replace")[-4000:]
                raise AssertionError(f"{len(acked)} of 300 acknowledged; serve log:\n{tail}"
                                     ) from None
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            stop.set()
            for t in threads:
                t.join()
            all_acked.extend(probe + acked)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with sqlite3.connect(home / "simtrust.db") as conn:
            stored = {row[0] for row in conn.execute("SELECT acct_session_id FROM aaa_sessions")}
        missing = sorted(set(all_acked) - stored)
        assert [] == missing, f"round {round_no}: {len(missing)} acknowledged records lost"
    assert len(all_acked) >= 300 * ROUNDS
