"""Enforcement on a real Linux gateway: nftables rendered from policy, in network namespaces.

Topology, all created here on private addresses inside the namespaces only::

    device netns (10.77.1.2) ── gateway netns (10.77.1.1 | 10.77.2.1) ── service netns
                                                                          (10.77.2.2, .3)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from simtrust.domain import DeviceContext
from simtrust.policy import PolicySet, policy_from_dict
from simtrust.policy._nft import GatewayDevice, apply_ruleset, read_counters, render_ruleset

pytestmark = pytest.mark.netns

IMSI = "001010000000042"
TENANT = "acme"

SERVER = textwrap.dedent("""
    import socket, threading
    def serve(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(16)
        while True:
            c, _ = s.accept(); c.sendall(b"ok"); c.close()
    for p in (8080, 9090):
        threading.Thread(target=serve, args=(p,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
""")

CLIENT = textwrap.dedent("""
    import socket, sys
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0)
        print(c.recv(2).decode() or "closed")
    except OSError as e:
        print("fail", type(e).__name__)
""")


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


def _skip_or_fail(message: str) -> None:
    if os.environ.get("SIMTRUST_REQUIRE_SERVICES", "") not in ("", "0"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def netns() -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:6]
    ns = {"dev": f"st{tag}d", "gw": f"st{tag}g", "svc": f"st{tag}s"}
    created: list[str] = []
    server: subprocess.Popen[str] | None = None
    try:
        for name in ns.values():
            try:
                sh("ip", "netns", "add", name)
            except (subprocess.CalledProcessError, FileNotFoundError) as exc:
                _skip_or_fail(f"cannot create network namespaces: {exc}")
            created.append(name)
        d, g, s = ns["dev"], ns["gw"], ns["svc"]
        a, b, c, e = f"v{tag}a", f"v{tag}b", f"v{tag}c", f"v{tag}e"
        sh("ip", "-n", d, "link", "add", a, "type", "veth", "peer", "name", b, "netns", g)
        sh("ip", "-n", g, "link", "add", c, "type", "veth", "peer", "name", e, "netns", s)
        for n, dev, addr in ((d, a, "10.77.1.2/24"), (g, b, "10.77.1.1/24"),
                             (g, c, "10.77.2.1/24"), (s, e, "10.77.2.2/24"),
                             (s, e, "10.77.2.3/24")):
            sh("ip", "-n", n, "addr", "add", addr, "dev", dev)
        for n, dev in ((d, a), (g, b), (g, c), (s, e), (d, "lo"), (g, "lo"), (s, "lo")):
            sh("ip", "-n", n, "link", "set", dev, "up")
        sh("ip", "-n", d, "route", "add", "default", "via", "10.77.1.1")
        sh("ip", "-n", s, "route", "add", "default", "via", "10.77.2.1")
        sh("ip", "netns", "exec", g, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        server = subprocess.Popen(["ip", "netns", "exec", s, sys.executable, "-c", SERVER],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        assert "ready" == server.stdout.readline().strip()
        yield ns
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=5)
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def connect(ns: dict[str, str], host: str, port: int) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns["dev"], sys.executable, "-c", CLIENT,
                           host, str(port)], check=True, capture_output=True, text=True,
                          timeout=20)
    return done.stdout.strip()


def test_allowed_passes_forbidden_dropped_and_counted_remove_cuts_off(
        netns: dict[str, str]) -> None:
    policy = policy_from_dict({"tenant_id": TENANT, "scope": "group:cameras", "rules": [
        {"kind": "destination", "allow": [
            {"cidrs": ["10.77.2.2/32"], "ports": [8080], "protocols": ["tcp"]}]}]})
    policies = PolicySet([policy])
    device = GatewayDevice(DeviceContext(IMSI, TENANT, group="cameras"), "10.77.1.2")
    gw = netns["gw"]
    assert "ok" == connect(netns, "10.77.2.2", 9090), "no rules yet: everything passes"

    apply_ruleset(render_ruleset(TENANT, policies, [device]), netns=gw)
    assert "ok" == connect(netns, "10.77.2.2", 8080)
    assert connect(netns, "10.77.2.2", 9090).startswith("fail")  # forbidden port
    assert connect(netns, "10.77.2.3", 8080).startswith("fail")  # forbidden address
    counters = read_counters(TENANT, netns=gw)
    dropped_packets, dropped_bytes = counters["dev_0_drop"]
    assert dropped_packets >= 2
    assert dropped_bytes > 0
    assert (0, 0) == counters["removed_drop"]
    assert "ok" == connect(netns, "10.77.2.2", 8080)

    apply_ruleset(render_ruleset(TENANT, policies, [device], removed=[IMSI]), netns=gw)
    assert connect(netns, "10.77.2.2", 8080).startswith("fail")
    assert read_counters(TENANT, netns=gw)["removed_drop"][0] >= 1


def _window_around(now: float, *, inside: bool) -> dict[str, object]:
    """A one-hour UTC window containing ``now`` (or twelve hours away from it)."""
    t = datetime.fromtimestamp(now + (0 if inside else 12 * 3600), UTC)
    start = t.replace(minute=0, second=0) - timedelta(minutes=30 if t.minute < 30 else 0)
    end = start + timedelta(hours=1)
    days = sorted({start.weekday(), end.weekday()})
    return {"kind": "time", "tz": "UTC", "windows": [
        {"days": days, "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}]}


def test_time_window_is_enforced_in_the_kernel(netns: dict[str, str]) -> None:
    dest = {"kind": "destination", "allow": [{"cidrs": ["10.77.2.0/24"], "ports": [8080]}]}
    device = GatewayDevice(DeviceContext(IMSI, TENANT, group="cameras", tz="Asia/Tokyo"),
                           "10.77.1.2")
    gw = netns["gw"]
    now = time.time()
    closed = policy_from_dict({"tenant_id": TENANT, "scope": "tenant",
                               "rules": [dest, _window_around(now, inside=False)]})
    apply_ruleset(render_ruleset(TENANT, PolicySet([closed]), [device], at=now), netns=gw)
    assert connect(netns, "10.77.2.2", 8080).startswith("fail")
    assert read_counters(TENANT, netns=gw)["dev_0_time_drop"][0] >= 1

    opened = policy_from_dict({"tenant_id": TENANT, "scope": "tenant",
                               "rules": [dest, _window_around(now, inside=True)]})
    apply_ruleset(render_ruleset(TENANT, PolicySet([opened]), [device], at=now), netns=gw)
    assert "ok" == connect(netns, "10.77.2.2", 8080)
    assert connect(netns, "10.77.2.2", 9090).startswith("fail")
    counters = read_counters(TENANT, netns=gw)
    assert (0, 0) == counters["dev_0_time_drop"]
    assert counters["dev_0_drop"][0] >= 1
