"""``simtrust policy`` and ``simtrust flows`` from the command line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.policy import policy_from_dict
from simtrust.runtime import Runtime
from tests.policy.test_integration import provision
from tests.policy.test_ipfix import FLOW_FIELDS, REC, flow_record, ipfix, set_, template

MAIN = "import sys; from simtrust.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(home: Path, *args: str) -> Result:
    """Run the CLI in-process (the way the console script does) and capture its output."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with mock.patch.dict(os.environ, {"SIMTRUST_HOME": str(home)}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def test_policy_set_check_history(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert 0 == run(home, "init").returncode
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"kind": "destination", "allow": [
        {"cidrs": ["192.0.2.0/24"], "ports": [443], "protocols": ["tcp"]}]}]))
    for _ in range(2):
        done = run(home, "policy", "set", "acme", "group:meters", "-f", str(rules), "--json")
        assert 0 == done.returncode, done.stderr
    assert 2 == json.loads(done.stdout)["version"]
    ok = run(home, "policy", "check", "acme", "001010000000001", "--group", "meters",
             "--dst", "192.0.2.1", "--port", "443", "--json")
    bad = run(home, "policy", "check", "acme", "001010000000001", "--group", "meters",
              "--dst", "192.0.2.1", "--port", "23", "--json")
    assert (0, True) == (ok.returncode, json.loads(ok.stdout)["allowed"])
    assert (1, "destination") == (bad.returncode, json.loads(bad.stdout)["reason"])
    hist = json.loads(run(home, "policy", "history", "acme", "group:meters", "--json").stdout)
    assert [1, 2] == [v["version"] for v in hist]
    missing = run(home, "policy", "set", "acme", "tenant", "-f", str(tmp_path / "none.json"))
    assert 2 == missing.returncode
    assert "cannot read" in missing.stderr


def test_flows_collect_prints_decoded_flows(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SIMTRUST_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-c", MAIN, "flows", "collect", "--port",
                             str(port), "--count", "2", "--duration", "40", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        msg = ipfix([set_(2, template(256, FLOW_FIELDS)), set_(256, REC + REC)])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(250):  # until the collector is up and has counted the flows
                tx.sendto(msg, ("127.0.0.1", port))
                time.sleep(0.1)
                if proc.poll() is not None:
                    break
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in out.splitlines()]
    flows = [x for x in lines if "dst" in x]
    assert len(flows) >= 2, err
    assert ("192.0.2.10", 443, 900) == (flows[0]["dst"], flows[0]["dport"], flows[0]["octets"])
    assert lines[-1]["stats"]["records"] >= 2


def test_flows_collect_enforce_maps_flows_to_sims(tmp_path: Path) -> None:
    """``--enforce``: flows from a SIM's attach address are judged by the stored policy."""

    home = tmp_path / "home"
    assert 0 == run(home, "init").returncode
    with mock.patch.dict(os.environ, {"SIMTRUST_HOME": str(home)}):

        rt = Runtime.open(load_settings())
        try:
            address, _iccid, imsi, _imei = provision(rt)
            rt.policy.store.put(policy_from_dict({
                "tenant_id": "acme", "scope": "group:cameras", "rules": [
                    {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/24"]}],
                     "actions": ["log"]}]}), actor="test")
        finally:
            rt.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SIMTRUST_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", MAIN, "flows", "collect", "--port",
                             str(port), "--count", "2", "--duration", "40", "--json",
                             "--enforce"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    rec = flow_record(address, "198.51.100.9", 40000, 23, 6, 2, 120, 1_700_000_000_000,
                      1_700_000_000_500)
    try:
        msg = ipfix([set_(2, template(256, FLOW_FIELDS)), set_(256, rec + REC)])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(250):  # the child may take seconds to start on a loaded machine
                tx.sendto(msg, ("127.0.0.1", port))
                time.sleep(0.1)
                if proc.poll() is not None:
                    break
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    flows = [json.loads(line) for line in out.splitlines() if '"dst"' in line]
    judged = [f for f in flows if f.get("imsi") == imsi.value]
    assert judged, err
    assert "destination" == judged[0]["decision"]["reason"]
    assert not any("imsi" in f for f in flows if f["src"] != address)
