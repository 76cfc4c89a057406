"""tshark dissects a recorded h2c exchange with the SBI: no malformed frame, no expert warning."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from ..diameter.test_peers import _pcap
from ..subscriber.conftest import imsi
from .conftest import Udm

TSHARK = shutil.which("tshark")
SNN = "5G:mnc001.mcc001.3gppnetwork.org"
AUSF = "6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"


class _Relay:
    """A one-connection TCP relay on loopback that records both directions in order."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.flows: list[tuple[bool, bytes]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._target = target
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                dst.close()
                return
            with self._lock:
                self.flows.append((up, data))
                dst.sendall(data)

    def _run(self) -> None:
        client, _ = self._listener.accept()
        server = socket.create_connection(self._target)
        back = threading.Thread(target=self._pump, args=(server, client, False), daemon=True)
        back.start()
        self._pump(client, server, True)
        back.join(timeout=10)

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=10)


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_dissects_the_sbi_traffic(udm: Udm, tmp_path: Path) -> None:
    assert udm.server.address is not None
    relay = _Relay(udm.server.address)
    body = {"servingNetworkName": SNN, "ausfInstanceId": AUSF}
    with httpx.Client(base_url=f"http://127.0.0.1:{relay.port}", http1=False, http2=True,
                      timeout=15) as client:
        url = f"/nudm-ueau/v1/{imsi(1).supi}/security-information/generate-auth-data"
        assert 200 == client.post(url, json=body).status_code
        assert 404 == client.post("/nudm-ueau/v1/imsi-001019999999999/security-information/"
                                  "generate-auth-data", json=body).status_code
    relay.close()
    capture = tmp_path / "sbi.pcap"
    _pcap(relay.flows, capture, port=80)
    frames = subprocess.run(
        [str(TSHARK), "-r", str(capture), "-d", "tcp.port==80,http2", "-Y", "http2",
         "-T", "fields", "-e", "http2.type"],
        check=True, capture_output=True, text=True, timeout=120).stdout
    types = {t for line in frames.split() for t in line.split(",")}
    assert {"0", "1"} <= types  # DATA and HEADERS frames were dissected
    bad = subprocess.run(
        [str(TSHARK), "-r", str(capture), "-d", "tcp.port==80,http2",
         "-Y", "_ws.malformed || _ws.expert.severity >= warning"],
        check=True, capture_output=True, text=True, timeout=120).stdout
    assert "" == bad.strip()
