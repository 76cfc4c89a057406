"""``simtrust serve`` runs the API in worker processes that never outlive the master.

A real ``simtrust serve --workers 2`` is started; its workers are found by
their parent pid in /proc. The API answers over TLS 1.3 only (curl and
``openssl s_client`` are the independent clients), problem documents and the
body limit are the same in every worker, and after SIGTERM or SIGKILL of the
master no worker is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc needed")
needs_tls_tools = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None,
    reason="curl and openssl are the independent TLS clients")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie left to an init that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _trust(cert: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(cert)) if cert else True


def _wait_until(condition: Callable[[], bool], what: str, bound: float = 300.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    workers: list[int]
    cert: Path | None
    key: str


def _tls_pair(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def _serve(tmp: Path, *, tls: bool) -> Iterator[Served]:
    home = tmp / "home"
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    cli = [sys.executable, "-m", "simtrust"]
    init = subprocess.run([*cli, "init", "--json"], env=env, check=True, capture_output=True,
                          timeout=120)
    key = str(json.loads(init.stdout)["operator_api_key"])
    port = _free_port()
    args = [*cli, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    cert = None
    if tls:
        cert, private = _tls_pair(tmp)
        args += ["--tls-cert", str(cert), "--tls-key", str(private)]
    log = (tmp / "serve.log").open("w+b")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(log.read().decode(errors="replace"))
        try:
            return httpx.get(base + "/healthz", verify=_trust(cert),
                             timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait_until(up, "the API")
        _wait_until(lambda: len(_children(proc.pid)) == 2, "two workers")
        yield Served(proc, base, _children(proc.pid), cert, key)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


@needs_tls_tools
def test_tls13_workers_and_sigkill_of_the_master(tmp_path: Path) -> None:
    served = next(gen := _serve(tmp_path, tls=True))
    try:
        assert served.cert is not None
        curl = subprocess.run(
            ["curl", "-sS", "--cacert", str(served.cert), "--tlsv1.3", "-w", "\n%{http_code}",
             "-H", f"Authorization: Bearer {served.key}", served.base + "/v1/tenants"],
            capture_output=True, timeout=30, check=True)
        assert curl.stdout.decode().endswith("\n200")
        s_client = ["openssl", "s_client", "-connect",
                    served.base.removeprefix("https://"), "-CAfile", str(served.cert)]
        v13 = subprocess.run([*s_client, "-tls1_3"], input=b"", capture_output=True, check=False,
                             timeout=30)
        assert b"TLSv1.3" in v13.stdout
        assert b"Verify return code: 0 (ok)" in v13.stdout
        v12 = subprocess.run([*s_client, "-tls1_2"], input=b"", capture_output=True, check=False,
                             timeout=30)
        assert b"Cipher is (NONE)" in v12.stdout  # TLS 1.2 is refused
        # Same problems and limits from every worker: many fresh connections.
        with httpx.Client(verify=_trust(served.cert), timeout=10) as client:
            for _ in range(8):
                denied = httpx.get(served.base + "/v1/tenants", verify=_trust(served.cert))
                assert 401 == denied.status_code
                assert "application/problem+json" == denied.headers["content-type"]
                big = client.post(served.base + "/v1/tenants", content=b"x" * 2_000_000,
                                  headers={"Authorization": f"Bearer {served.key}",
                                           "Content-Type": "application/json"})
                assert 413 == big.status_code
                assert 413 == big.json()["status"]
        workers = served.workers
        assert all(_alive(pid) for pid in workers)
        os.kill(served.proc.pid, signal.SIGKILL)
        served.proc.wait(timeout=30)
        _wait_until(lambda: not any(_alive(pid) for pid in workers), "workers to exit")
    finally:
        gen.close()


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    served = next(gen := _serve(tmp_path, tls=False))
    try:
        workers = served.workers
        served.proc.send_signal(signal.SIGTERM)
        assert 0 == served.proc.wait(timeout=60)
        assert [] == [pid for pid in workers if _alive(pid)]  # reaped before the master exits
    finally:
        gen.close()


def test_bad_tls_options_are_one_line_errors(tmp_path: Path) -> None:
    env = {**os.environ, "SIMTRUST_HOME": str(tmp_path / "home")}
    cli = [sys.executable, "-m", "simtrust"]
    subprocess.run([*cli, "init", "--json"], env=env, check=True, capture_output=True,
                   timeout=120)
    missing = subprocess.run([*cli, "serve", "--tls-cert", str(tmp_path / "nope.pem"),
                              "--tls-key", str(tmp_path / "nope.pem")],
                             env=env, capture_output=True, timeout=60, check=False)
    assert 2 == missing.returncode
    assert 1 == len(missing.stderr.decode().strip().splitlines())
    (tmp_path / "cert.pem").write_text("not a certificate")
    half = subprocess.run([*cli, "serve", "--tls-cert", str(tmp_path / "cert.pem")],
                          env=env, capture_output=True, timeout=60, check=False)
    assert 0 != half.returncode
    assert 1 == len(half.stderr.decode().strip().splitlines())
