"""The flow collector says on stderr when it listens (port 0 shows the port the OS
chose), in every output mode, so a caller sends only once it is bound."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.policy.test_ipfix import FLOW_FIELDS, REC, ipfix, set_, template

MAIN = "import sys; from simtrust.cli import main; sys.exit(main(sys.argv[1:]))"


def test_collector_announces_its_port_then_collects(tmp_path: Path) -> None:
    env = {**os.environ, "SIMTRUST_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-c", MAIN, "flows", "collect", "--port", "0", "--count", "2",
         "--duration", "120", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until the collector has bound its socket
        found = re.search(r"listening on udp 127\.0\.0\.1:(\d+)", line)
        assert found, line
        port = int(found.group(1))
        assert port > 0
        msg = ipfix([set_(2, template(256, FLOW_FIELDS)), set_(256, REC + REC)])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(msg, ("127.0.0.1", port))
        out, _err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    flows = [doc for doc in map(json.loads, out.splitlines()) if "dst" in doc]
    assert 2 == len(flows)
