"""Acknowledged means durable: every frame a real `simtrust serve` answered 201 for is
in the store after the process is killed with SIGKILL while authors keep publishing."""

from __future__ import annotations

import base64
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from simtrust.config import load_settings
from simtrust.identity import Ed25519Signer
from simtrust.runtime import Runtime
from simtrust.streams import Author

AUTHORS = 3
#: Acknowledged frames to wait for before the kill (the authors keep publishing).
ACKNOWLEDGED = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(condition: object, what: str, bound: float = 300.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_acknowledged_frames_survive_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant("acme", "Acme")
        secret = rt.tenants.create_key("tenant-admin", "meters", tenant_id="acme").secret
    finally:
        rt.close()
    ticks = itertools.count(1_767_225_600_000)
    authors = [Author(Ed25519Signer.generate(), lambda: next(ticks)) for _ in range(AUTHORS)]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    log = (home / "server.log").open("w+b")
    server = subprocess.Popen(
        [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    headers = {"Authorization": f"Bearer {secret}"}
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def up() -> bool:
        assert server.poll() is None, "server exited before it listened"
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def publish(author: Author) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            made = http.post("/v1/streams/channels", json={
                "announce": base64.b64encode(author.announce.to_bytes()).decode()})
            assert 201 == made.status_code, made.text
            while not stop.is_set():
                frame = author.publish(os.urandom(48)).to_bytes()
                try:
                    answer = http.post(f"/v1/streams/channels/{author.channel.hex()}/messages",
                                       json={"frame": base64.b64encode(frame).decode()})
                except httpx.HTTPError:
                    return  # the server is gone: this frame was never acknowledged
                assert 201 == answer.status_code, answer.text
                with lock:
                    acknowledged.add(answer.json()["message_id"])

    try:
        _wait_until(up, "the server to listen")
        threads = [threading.Thread(target=publish, args=(a,)) for a in authors]
        for thread in threads:
            thread.start()
        _wait_until(lambda: len(acknowledged) >= ACKNOWLEDGED or not any(
            t.is_alive() for t in threads), "acknowledged frames")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        log.close()
    assert -signal.SIGKILL == server.returncode
    assert len(acknowledged) >= ACKNOWLEDGED
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        stored = {m["message_id"] for a in authors
                  for m in rt.streams.messages(a.channel.hex(), limit=1000)}
        assert set() == acknowledged - stored
        # The restarted store goes on: each author's next frame extends its channel.
        for author in authors:
            verdict = rt.streams.publish(author.channel.hex(), author.publish(b"after").to_bytes(),
                                         actor="test")["verdict"]
            assert verdict in ("ok", "gap")
    finally:
        rt.close()
