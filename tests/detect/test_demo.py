"""The demo step: a fleet behaves, one meter scans, exactly that SIM is alerted with evidence."""

from __future__ import annotations

from pathlib import Path

from simtrust.demo import DemoContext, subscriber
from simtrust.demo import detect as step
from simtrust.runtime import Runtime


def test_demo_step_detects_the_scanner(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path)
    said: list[str] = []
    try:
        ctx = DemoContext(rt=rt, home=tmp_path, say=said.append)
        result = step.run(ctx)
        assert step.ORDER == 60
        assert result["alert"]["kind"] == "scan"
        assert result["alert"]["imsi"] == result["infected"]["imsi"]
        assert result["alerts_on_healthy_meters"] == 0
        assert result["alert"]["evidence"]["telnet_targets"] > 0
        assert "audit" in result["delivered_to"]
        actions = [r[0] for r in rt.db.query("SELECT action FROM audit_events")]
        assert "detect.alert.scan" in actions
        assert ctx.data["detect_alert"] == result["alert"]
        assert result["sim_swap_alert"]["kind"] == "sim-swap"
        assert result["sim_swap_alert"]["evidence"]["tac_changed"] is True
        assert result["removal"]["outcome"].startswith("recorded")
        assert any("scan" in line for line in said)
    finally:
        rt.close()


def test_demo_step_removes_an_attached_meter(tmp_path: Path) -> None:
    """After the subscriber step attached its fleet, the scanner's SIM is suspended."""

    rt = Runtime.ephemeral(tmp_path)
    try:
        ctx = DemoContext(rt=rt, home=tmp_path, say=lambda _text: None)
        subscriber.run(ctx)
        result = step.run(ctx)
        assert result["infected"]["imsi"] in ctx.data["subscriber"]["imsis"]
        assert result["removal"]["outcome"] == "removed (SIM suspended)"
        assert result["removal"]["next_attach"].startswith("denied")
    finally:
        rt.close()
