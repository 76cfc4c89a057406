"""Dashboard sessions live in the store: a session opened on a real `simtrust serve`
process still works after that process is killed with SIGKILL and a new one starts on
the same home; a signed-out session stays signed out across the restart too."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from simtrust.config import load_settings
from simtrust.runtime import Runtime

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(condition: Callable[[], bool], what: str, bound: float = 120.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _serve(home: Path, n: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    log = (home / f"server-{n}.log").open("w+b")
    server = subprocess.Popen(
        [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert server.poll() is None, "server exited before it listened"
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_until(up, "the server to listen")
    return server, base


def _kill(server: subprocess.Popen[bytes]) -> None:
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=30)


def _sign_in(base: str, key: str) -> tuple[str, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        form = http.get("/ui/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert token is not None
        answer = http.post("/ui/login", data={"api_key": key, "login_csrf": token.group(1),
                                              "next": "/ui/sims"})
        assert 303 == answer.status_code, answer.text
        sid = http.cookies.get("simtrust_session")
        assert sid
        page = http.get("/ui/sims")
        found = CSRF.search(page.text)
        assert found is not None
        return sid, found.group(1)


def _page(base: str, sid: str) -> httpx.Response:
    return httpx.get(base + "/ui/sims", cookies={"simtrust_session": sid}, timeout=30)


def test_sessions_survive_a_restart_and_logout_sticks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant("acme", "Acme")
        key = rt.tenants.create_key("tenant-admin", "restart", "acme").secret
    finally:
        rt.close()

    server, base = _serve(home, 1)
    try:
        kept, kept_csrf = _sign_in(base, key)
        ended, ended_csrf = _sign_in(base, key)
        assert 200 == _page(base, kept).status_code
        out = httpx.post(base + "/ui/logout", data={"csrf": ended_csrf},
                         cookies={"simtrust_session": ended}, timeout=30)
        assert 303 == out.status_code
    finally:
        _kill(server)

    server, base = _serve(home, 2)
    try:
        page = _page(base, kept)
        assert 200 == page.status_code, page.text
        assert "restart · tenant-admin · acme" in page.text
        found = CSRF.search(page.text)
        assert found is not None
        assert found.group(1) == kept_csrf
        gone = _page(base, ended)
        assert 303 == gone.status_code
        assert "/ui/login" in gone.headers["location"]
        forged = _page(base, kept[:-2] + ("AA" if not kept.endswith("AA") else "BB"))
        assert 303 == forged.status_code
    finally:
        _kill(server)

    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        stored = [str(r[0]) for r in rt.db.query("SELECT sid_digest FROM web_sessions")]
        assert kept not in stored  # only the digest is kept, never the cookie itself
        assert 1 == len(stored)
    finally:
        rt.close()
