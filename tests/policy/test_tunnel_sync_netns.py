"""``simtrust serve`` applying stored tunnels (TunnelSync): against the lab's real charon
(gateway and enterprise network namespaces), a tunnel stored is loaded and comes up, an
unchanged store is not applied again, a changed tunnel is reloaded, a removed one is
unloaded and its SA torn down; an unreachable charon is an alert per tunnel, not a crash."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from simtrust.policy import (
    TunnelAlert,
    TunnelChange,
    TunnelGateway,
    TunnelSync,
    parse_list_sas,
    render_swanctl,
)
from simtrust.runtime import Runtime

from .conftest import require_binaries
from .test_tunnels_netns import NS, SPEC, lab, swanctl  # noqa: F401 - lab is a fixture


def _sas(lab: Path) -> dict[str, dict[str, str]]:  # noqa: F811
    return parse_list_sas(swanctl(lab, "gw", "--list-sas"))


def _until_established(lab: Path) -> None:  # noqa: F811
    for _ in range(400):  # bounded by count, not by time
        if _sas(lab).get(SPEC.name, {}).get("ike") == "ESTABLISHED":
            return
        time.sleep(0.02)
    raise AssertionError(f"the tunnel did not come up: {_sas(lab)}")


def test_stored_tunnels_are_loaded_changed_and_unloaded(lab: Path,  # noqa: F811
                                                        sqlite_runtime: Runtime) -> None:
    (lab / "ent.conf").write_text(render_swanctl([SPEC.mirrored()], start=False))
    swanctl(lab, "ent", "--load-all", "--file", str(lab / "ent.conf"))
    rt = sqlite_runtime
    sync = rt.tunnel_sync(str(lab / "gw" / "charon.vici"), str(lab / "swanctl-gw"), NS["gw"])
    assert sync.check() is not None  # nothing stored yet: an empty configuration applied
    rt.tunnels.put(SPEC, actor="op")
    change = sync.check()
    assert change is not None
    assert (SPEC.name,) == change.added
    _until_established(lab)
    assert SPEC.name in swanctl(lab, "gw", "--list-conns")
    assert sync.check() is None  # unchanged: not applied again
    assert 2 == sync.applies

    rt.tunnels.put(dataclasses.replace(SPEC, dpd_delay_s=SPEC.dpd_delay_s + 7), actor="op")
    change = sync.check()
    assert change is not None
    assert (SPEC.name,) == change.kept
    assert f"dpd_delay = {SPEC.dpd_delay_s + 7}s" in (lab / "swanctl-gw" / "swanctl.conf"
                                                      ).read_text()

    rt.tunnels.delete(SPEC.tenant_id, SPEC.apn, actor="op")
    change = sync.check()
    assert change is not None
    assert (SPEC.name,) == change.removed
    assert SPEC.name not in swanctl(lab, "gw", "--list-conns")
    assert SPEC.name not in _sas(lab)
    assert 0 == sync.failures


def test_unreachable_charon_is_an_alert_and_retried(sqlite_runtime: Runtime,
                                                    tmp_path: Path) -> None:
    require_binaries("swanctl")
    alerts: list[TunnelAlert] = []
    now = [0.0]
    gateway = TunnelGateway(tmp_path / "swanctl", vici_uri=f"unix://{tmp_path}/absent.vici")
    sync = TunnelSync(sqlite_runtime.tunnels, gateway.apply, on_alert=alerts.append,
                      clock=sqlite_runtime.clock, retry_s=5.0, monotonic=lambda: now[0])
    sqlite_runtime.tunnels.put(SPEC, actor="op")
    assert sync.check() is None
    [alert] = alerts
    assert ("tunnel-apply-failed", SPEC.name, SPEC.tenant_id) == (alert.kind, alert.tunnel,
                                                                   alert.tenant_id)
    assert "not applied" in alert.summary
    assert SPEC.psk is not None
    assert SPEC.psk.hex() not in repr(alert.document())
    now[0] = 1.0
    assert sync.check() is None
    assert 1 == sync.failures
    now[0] = 6.0
    assert sync.check() is None
    assert 2 == sync.failures
    assert 1 == len(alerts)  # one alert per configuration, not per retry


def test_a_failed_removal_alerts_even_when_the_store_is_empty(sqlite_runtime: Runtime,
                                                              tmp_path: Path) -> None:
    """The last tunnel deleted and charon refusing the unload: the gateway may still carry
    the tunnel's traffic, so the alert names it although the store no longer does."""
    require_binaries("swanctl")
    alerts: list[TunnelAlert] = []
    working = [True]
    absent = TunnelGateway(tmp_path / "swanctl", vici_uri=f"unix://{tmp_path}/absent.vici")

    def apply(specs: object) -> object:
        if working[0]:
            names = tuple(s.name for s in specs)  # type: ignore[attr-defined]
            return TunnelChange(names, (), ())
        return absent.apply(specs)  # type: ignore[arg-type]

    sync = TunnelSync(sqlite_runtime.tunnels, apply,  # type: ignore[arg-type]
                      on_alert=alerts.append, clock=sqlite_runtime.clock)
    sqlite_runtime.tunnels.put(SPEC, actor="op")
    assert sync.check() is not None
    working[0] = False
    sqlite_runtime.tunnels.delete(SPEC.tenant_id, SPEC.apn, actor="op")
    assert sync.check() is None
    [alert] = alerts
    assert ("tunnel-apply-failed", SPEC.name, SPEC.tenant_id, SPEC.apn) == (
        alert.kind, alert.tunnel, alert.tenant_id, alert.apn)
    assert "not removed" in alert.summary
    assert "failed" == alert.document()["state"]["removal"]


def test_a_failed_first_apply_with_nothing_stored_is_one_gateway_alert(
        sqlite_runtime: Runtime, tmp_path: Path) -> None:
    require_binaries("swanctl")
    alerts: list[TunnelAlert] = []
    gateway = TunnelGateway(tmp_path / "swanctl", vici_uri=f"unix://{tmp_path}/absent.vici")
    sync = TunnelSync(sqlite_runtime.tunnels, gateway.apply, on_alert=alerts.append,
                      clock=sqlite_runtime.clock)
    assert sync.check() is None
    [alert] = alerts
    assert ("*", "") == (alert.tunnel, alert.tenant_id)
    assert alert.summary.startswith("the gateway's tunnel configuration was not applied")
