"""The gateway follows the enterprise APNs: ``TunnelGateway.apply`` with a tunnel brings
it up (charon in the gateway namespace initiates it at load, the guard is installed);
applying again is idempotent (the guard is replaced, not doubled); applying without it
unloads the connection, terminates its IKE SA and drops its guard rules."""

from __future__ import annotations

from pathlib import Path

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
