"""``simtrust serve`` starts the Diameter listener when SIMTRUST_DIAMETER_BIND is set."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simtrust.config import load_settings
from simtrust.errors import ConfigError

from .conftest import Mme


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_settings_parse_the_diameter_variables(tmp_path: Path) -> None:
    settings = load_settings(env={
        "SIMTRUST_DIAMETER_BIND": "127.0.0.1:3868",
        "SIMTRUST_DIAMETER_ORIGIN_HOST": "hss.example.org",
        "SIMTRUST_DIAMETER_ORIGIN_REALM": "example.org",
        "SIMTRUST_DIAMETER_PEERS": "mme1.example.org, mme2.example.org",
    }, home=tmp_path)
    assert "127.0.0.1:3868" == settings.diameter_bind
    assert frozenset({"mme1.example.org", "mme2.example.org"}) == settings.diameter_peer_hosts
    assert "" == load_settings(env={}, home=tmp_path).diameter_bind  # off by default


@pytest.mark.parametrize(("var", "value"), [
    ("SIMTRUST_DIAMETER_BIND", "3868"),
    ("SIMTRUST_DIAMETER_ORIGIN_HOST", "has space"),
])
def test_bad_diameter_settings_are_config_errors(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(env={var: value}, home=tmp_path)


def test_serve_starts_the_diameter_listener(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(tmp_path / "home"),
           "SIMTRUST_API_BIND": f"127.0.0.1:{_free_port()}",
           "SIMTRUST_DIAMETER_BIND": f"127.0.0.1:{port}",
           "SIMTRUST_DIAMETER_ORIGIN_HOST": "hss.test.realm",
           "SIMTRUST_DIAMETER_ORIGIN_REALM": "test.realm",
           "SIMTRUST_DIAMETER_PEERS": "mme.test.realm",
           "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    cli = [sys.executable, "-m", "simtrust"]
    subprocess.run([*cli, "init", "--json"], env=env, check=True, capture_output=True,
                   timeout=120)
    proc = subprocess.Popen([*cli, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        client = None
        while client is None:
            try:
                client = Mme(port)
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
                assert time.monotonic() < deadline, "listener did not come up"
                time.sleep(0.1)
        try:
            cea = client.cer()
            assert 2001 == cea.result_code
            assert b"hss.test.realm" == cea.origin_host
        finally:
            client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
