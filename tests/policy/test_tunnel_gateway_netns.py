"""The gateway follows the enterprise APNs: ``TunnelGateway.apply`` with a tunnel brings
it up (charon in the gateway namespace initiates it at load, the guard is installed);
applying again is idempotent (the guard is replaced, not doubled); applying without it
unloads the connection, terminates its IKE SA and drops its guard rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.cli import main
from simtrust.policy import TunnelEvents, TunnelGateway, parse_list_sas, render_swanctl

from .test_tunnels_netns import NS, SPEC, lab, netns, swanctl  # noqa: F401 - lab: fixture


def test_apply_sets_up_and_tears_down_the_apns_tunnel(lab: Path) -> None:  # noqa: F811
    (lab / "ent.conf").write_text(render_swanctl([SPEC.mirrored()], start=False))
    swanctl(lab, "ent", "--load-all", "--file", str(lab / "ent.conf"))
    gateway = TunnelGateway(lab / "swanctl-gw", vici_uri=f"unix://{lab / 'gw' / 'charon.vici'}",
                            netns=NS["gw"])
    events = TunnelEvents(str(lab / "gw" / "charon.vici"), [SPEC]).start()
    try:
        change = gateway.apply([SPEC])
        assert ((SPEC.name,), (), ()) == (change.added, change.removed, change.kept)
        events.wait_for("up", SPEC.name)  # start_action=start: initiated at load
        assert "ESTABLISHED" == parse_list_sas(swanctl(lab, "gw", "--list-sas"))[
            SPEC.name]["ike"]
        assert 0o600 == (lab / "swanctl-gw" / "swanctl.conf").stat().st_mode & 0o777
        again = gateway.apply([SPEC])
        assert ((), (SPEC.name,)) == (again.added, again.kept)
        guard = netns("gw", "nft", "list", "table", "inet", "simtrust_tunnels").stdout
        assert 1 == guard.count("only through the tunnel")

        gone = gateway.apply([])
        assert (SPEC.name,) == gone.removed
        events.wait_for("down", SPEC.name)
        assert SPEC.name not in parse_list_sas(swanctl(lab, "gw", "--list-sas"))
        assert SPEC.name not in swanctl(lab, "gw", "--list-conns")
        guard = netns("gw", "nft", "list", "table", "inet", "simtrust_tunnels").stdout
        assert "only through the tunnel" not in guard
        assert [] == gateway.tunnels
    finally:
        events.close()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def test_cli_apply_follows_a_json_file_across_processes(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    (lab / "ent.conf").write_text(render_swanctl([SPEC.mirrored()], start=False))
    swanctl(lab, "ent", "--load-all", "--file", str(lab / "ent.conf"))
    spec = {"name": SPEC.name, "tenant_id": SPEC.tenant_id, "apn": SPEC.apn,
            "local_address": SPEC.local_address, "remote_address": SPEC.remote_address,
            "local_id": SPEC.local_id, "remote_id": SPEC.remote_id,
            "apn_pool": list(SPEC.apn_pool), "enterprise_prefixes": list(SPEC.enterprise_prefixes),
            "psk_hex": bytes(range(32)).hex()}
    tunnels = lab / "tunnels.json"
    gw = ["--dir", str(lab / "swanctl-gw"), "--uri", f"unix://{lab / 'gw' / 'charon.vici'}",
          "--netns", NS["gw"]]
    tunnels.write_text(json.dumps([spec]))
    code, out, err = _cli(capsys, "tunnels", "apply", str(tunnels), *gw)
    assert 0 == code, err
    assert f"added {SPEC.name}" in out
    tunnels.write_text("[]")  # the APN went away; a new process must still tear it down
    code, out, err = _cli(capsys, "tunnels", "apply", str(tunnels), *gw)
    assert 0 == code, err
    assert f"removed {SPEC.name}" in out
    assert SPEC.name not in swanctl(lab, "gw", "--list-conns")
    tunnels.write_text(json.dumps([{**spec, "apn_pool": ["10.45.0.1/24"]}]))
    code, _, err = _cli(capsys, "tunnels", "apply", str(tunnels), *gw)
    assert (2, 1) == (code, len(err.strip().splitlines())), err
