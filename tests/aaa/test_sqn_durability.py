"""SQN advances are group-committed and still durable: a real ``simtrust serve`` answering
EAP-AKA' challenges for several SIMs at once is killed with SIGKILL, and a vector issued
after the restart carries, for every SIM, an SQN above every SQN a peer received before
the kill (an acknowledged challenge is never reissued, TS 33.102 §6.3.2 / Annex C)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import Imsi, OpKind, SimSecrets, SimSpec, SimState

from .conftest import APN, K1, OPC1, SECRET, TENANT, iccid, imsi, wait_until
from .eap_peer import Peer, Usim, attrs

SIMS = 4
SENDERS = 8
REALM = "wlan.mnc001.mcc001.3gppnetwork.org"


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _challenger(port: int, n: int, received: dict[str, list[int]],
                stop: threading.Event) -> None:
    """Asks for challenges for SIM ``n``; records the SQN of each one it gets."""
    sim = str(imsi(n))
    usim = Usim(K1, OPC1)
    peer = Peer(usim, sim, SECRET.encode(), port)
    peer.sock.settimeout(0.5)
    identity = f"6{sim}@{REALM}".encode()
    eap = bytes((2, 1)) + (5 + len(identity)).to_bytes(2, "big") + b"\x01" + identity
    try:
        while not stop.is_set():
            try:
                reply = peer._radius(eap, None, {})
            except (OSError, AssertionError):
                continue  # server gone or slow: nothing acknowledged
            message = b"".join(reply["EAP-Message"]) if "EAP-Message" in reply else b""
            if len(message) < 8 or message[5] != 1:
                continue
            at = attrs(message[8:])
            rand, autn = at[1][2:], at[2][2:]
            ak = usim.functions(rand, bytes(6), bytes(2))["f5"]
            sqn = int.from_bytes(bytes(a ^ b for a, b in zip(autn[:6], ak, strict=True)), "big")
            received[sim].append(sqn)
    finally:
        peer.close()


def test_kill_9_never_reissues_an_acknowledged_sqn(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant(TENANT, "Acme")
        rt.subscriber.inventory.create_apn(TENANT, APN, actor="test", pool="10.45.0.0/24")
        for n in range(SIMS):
            rt.subscriber.inventory.add_sim(TENANT, SimSpec(
                iccid(n), imsi(n), secrets=SimSecrets(K1, OPC1, OpKind.OPC),
                state=SimState.ACTIVE, apn=APN), actor="test")
        rt.aaa.clients.add("127.0.0.1/32", SECRET, actor="test")
    finally:
        rt.close()
    udp = _free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(
        [sys.executable, "-m", "simtrust", "serve", "--bind",
         f"127.0.0.1:{_free_port(socket.SOCK_STREAM)}"],
        env={**env, "SIMTRUST_RADIUS_BIND": f"127.0.0.1:{udp}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    received: dict[str, list[int]] = {str(imsi(n)): [] for n in range(SIMS)}
    stop = threading.Event()
    threads = [threading.Thread(target=_challenger, args=(udp, i % SIMS, received, stop))
               for i in range(SENDERS)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: sum(map(len, received.values())) >= 200, timeout=90)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        for sim, sqns in received.items():
            vector = rt.subscriber.auth.eap_aka_prime(Imsi(sim, 2), "WLAN", actor="test")
            ak = Usim(K1, OPC1).functions(vector.rand, bytes(6), bytes(2))["f5"]
            after = int.from_bytes(
                bytes(a ^ b for a, b in zip(vector.autn[:6], ak, strict=True)), "big")
            assert sqns, sim
            assert len(set(sqns)) == len(sqns), "an SQN was issued twice"
            assert after > max(sqns), sim
    finally:
        rt.close()
