"""The compiled evaluator: destinations, names, time windows, caps, roaming, precedence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from simtrust.domain import DeviceContext, FlowRecord
from simtrust.errors import InvalidInput
from simtrust.policy import Action, Policy, PolicySet, Scope, ScopeKind, policy_from_dict
from simtrust.policy._nft import utc_segments

T = "acme"
DEV = DeviceContext("001010000000001", T, apn="iot.acme", group="meters", tz="Europe/Berlin")


def pol(scope: str, *rules: Any) -> Policy:
    return policy_from_dict({"tenant_id": T, "scope": scope, "rules": list(rules)})


def flow(dst: str = "192.0.2.10", port: int = 443, proto: int = 6, at: float = 1_700_000_000.0,
         octets: int = 0) -> FlowRecord:
    return FlowRecord(at, at, "10.0.0.2", dst, 40000, port, proto, 1, octets)


DEST: dict[str, Any] = {"kind": "destination", "allow": [
    {"cidrs": ["192.0.2.0/28", "2001:db8::/64"], "ports": [443, "8000-8999"],
     "protocols": ["tcp"]},
    {"names": ["ntp.example.org"], "ports": [123], "protocols": ["udp"]},
]}


def test_destination_allowlist_cidr_port_protocol() -> None:
    ps = PolicySet([pol("tenant", DEST)])
    assert ps.evaluate(flow(), DEV).allowed
    assert ps.evaluate(flow(port=8500), DEV).allowed
    assert ps.evaluate(flow(dst="2001:db8::99"), DEV).allowed
    for bad in (flow(dst="192.0.2.16"), flow(port=80), flow(proto=17), flow(dst="2001:db9::1")):
        d = ps.evaluate(bad, DEV)
        assert not d.allowed
        assert ["destination"] == [v.kind for v in d.violations]
        assert {Action.BLOCK, Action.LOG} == d.actions


def test_dns_names_follow_the_gateway_name_map() -> None:
    ps = PolicySet([pol("tenant", DEST)])
    ntp = flow(dst="198.51.100.7", port=123, proto=17)
    assert not ps.evaluate(ntp, DEV).allowed
    ps.names.report("ntp.example.org.", ["198.51.100.7"])
    assert ps.evaluate(ntp, DEV).allowed
    ps.names.report("ntp.example.org", ["198.51.100.8"])  # answer changed
    assert not ps.evaluate(ntp, DEV).allowed


def test_wildcard_names() -> None:
    ps = PolicySet([pol("tenant", {"kind": "destination", "allow": [{"names": ["*.acme.io"]}]})])
    ps.names.report("api.eu.acme.io", ["203.0.113.5"])
    ps.names.report("acme.io.evil.com", ["203.0.113.6"])
    assert ps.evaluate(flow(dst="203.0.113.5"), DEV).allowed
    assert not ps.evaluate(flow(dst="203.0.113.6"), DEV).allowed


def test_time_window_in_device_zone_across_dst() -> None:
    rule = {"kind": "time", "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                          "start": "08:00", "end": "18:00"}]}
    ps = PolicySet([pol("tenant", rule)])
    # Monday 2024-03-25 (after the EU switch to CEST, UTC+2): 07:30 UTC = 09:30 local
    summer = datetime(2024, 3, 25, 7, 30, tzinfo=UTC).timestamp()
    # Monday 2024-03-18 (CET, UTC+1): 06:30 UTC = 07:30 local -> outside
    winter = datetime(2024, 3, 18, 6, 30, tzinfo=UTC).timestamp()
    saturday = datetime(2024, 3, 23, 10, 0, tzinfo=UTC).timestamp()
    assert ps.evaluate(flow(at=summer), DEV).allowed
    assert "time" == ps.evaluate(flow(at=winter), DEV).reason
    assert "time" == ps.evaluate(flow(at=saturday), DEV).reason
    utc_dev = DeviceContext(DEV.imsi + "9", T, tz="UTC")
    assert ps.evaluate(flow(at=winter), utc_dev).reason == "time"  # 06:30 UTC
    assert ps.evaluate(flow(at=summer), utc_dev).reason == "time"  # 07:30 UTC


def test_overnight_window_wraps_midnight() -> None:
    rule = {"kind": "time", "tz": "UTC", "windows": [{"start": "22:00", "end": "02:00"}]}
    ps = PolicySet([pol("tenant", rule)])
    at = datetime(2024, 1, 3, 1, 0, tzinfo=UTC).timestamp()
    assert ps.evaluate(flow(at=at), DEV).allowed
    assert not ps.evaluate(flow(at=at + 3 * 3600), DEV).allowed


def test_volume_cap_per_local_day_resets_next_day() -> None:
    rule = {"kind": "volume", "period": "day", "max_bytes": 1000, "actions": ["alert", "log"]}
    ps = PolicySet([pol("tenant", rule)])
    day = datetime(2024, 6, 3, 10, 0, tzinfo=UTC).timestamp()
    assert ps.evaluate(flow(at=day, octets=600), DEV, count_bytes=True).allowed
    d = ps.evaluate(flow(at=day + 60, octets=600), DEV, count_bytes=True)
    assert ["volume"] == [v.kind for v in d.violations]
    assert d.allowed, "alert-only cap does not block"
    # the inline path sees the cap already used up
    assert "volume" == ps.evaluate(flow(at=day + 120), DEV).reason
    # 22:30 UTC is 00:30 next day in Berlin (CEST): new bucket
    assert not ps.evaluate(flow(at=day + 12.5 * 3600, octets=10), DEV,
                           count_bytes=True).violations


def test_month_and_hour_caps_both_apply() -> None:
    rules = [{"kind": "volume", "id": "h", "period": "hour", "max_bytes": 100},
             {"kind": "volume", "id": "m", "period": "month", "max_bytes": 150}]
    ps = PolicySet([pol("tenant", *rules)])
    t0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC).timestamp()
    ps.evaluate(flow(at=t0, octets=90), DEV, count_bytes=True)
    d = ps.evaluate(flow(at=t0 + 7200, octets=90), DEV, count_bytes=True)
    assert ["m"] == [v.rule_id for v in d.violations]


def test_rate_cap_counts_flow_starts_per_window() -> None:
    ps = PolicySet([pol("tenant", {"kind": "rate", "max_flows": 3, "per_seconds": 60})])
    t0 = 1_700_000_040.0
    results = [ps.evaluate(flow(at=t0 + i), DEV).allowed for i in range(5)]
    assert [True, True, True, False, False] == results
    assert ps.evaluate(flow(at=t0 + 60), DEV).allowed


def test_roaming_countries() -> None:
    ps = PolicySet([pol("tenant", {"kind": "roaming", "allowed_mcc": ["262", "232"]})])
    home = DeviceContext("001010000000005", T, serving_mcc="262")
    away = DeviceContext("001010000000006", T, serving_mcc="310")
    assert ps.evaluate(flow(), home).allowed
    d = ps.evaluate(flow(), away)
    assert ("roaming", False) == (d.reason, d.allowed)


def test_most_specific_scope_wins_per_rule_kind() -> None:
    tenant = pol("tenant", {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/24"]}]},
                 {"kind": "rate", "max_flows": 2, "per_seconds": 60})  # attempts count
    group = pol("group:meters", {"kind": "destination", "allow": [{"cidrs": ["198.51.100.0/24"]}]})
    device = pol(f"device:{DEV.imsi}", {"kind": "destination",
                                         "allow": [{"cidrs": ["203.0.113.0/24"]}]})
    ps = PolicySet([tenant, group])
    other = DeviceContext("001010000000077", T, group="cameras")
    assert ps.evaluate(flow(dst="192.0.2.1", at=1.0), other).allowed
    assert not ps.evaluate(flow(dst="192.0.2.1", at=2.0), DEV).allowed
    assert ps.evaluate(flow(dst="198.51.100.1", at=3.0), DEV).allowed
    assert "rate" == ps.evaluate(flow(dst="198.51.100.1", at=4.0), DEV).reason  # inherited
    ps.put(device)
    assert "destination" in ps.evaluate(flow(dst="198.51.100.1", at=200.0), DEV).reason
    ps.put(policy_from_dict({**device.to_dict(), "active": False}))
    assert ps.evaluate(flow(dst="198.51.100.1", at=400.0), DEV).allowed


def test_other_tenants_policies_do_not_apply() -> None:
    ps = PolicySet([pol("tenant", DEST)])
    stranger = DeviceContext("001010000000008", "globex")
    assert ps.evaluate(flow(dst="203.0.113.1"), stranger).allowed


@pytest.mark.parametrize("raw", [
    {"tenant_id": T, "scope": "tenant", "rules": [{"kind": "destination", "allow": [
        {"cidrs": ["300.1.1.0/24"]}]}]},
    {"tenant_id": T, "scope": "tenant", "rules": [{"kind": "destination", "allow": [
        {"ports": [70000]}]}]},
    {"tenant_id": T, "scope": "tenant", "rules": [{"kind": "time", "tz": "Mars/Olympus",
                                                    "windows": [{}]}]},
    {"tenant_id": T, "scope": "tenant", "rules": [{"kind": "volume", "period": "week",
                                                    "max_bytes": 1}]},
    {"tenant_id": T, "scope": "tenant", "rules": [{"kind": "roaming", "allowed_mcc": ["26"]}]},
    {"tenant_id": T, "scope": "tenant", "rules": [{"kind": "rate", "max_flows": 1,
                                                    "actions": ["explode"]}]},
    {"tenant_id": T, "scope": "galaxy:x", "rules": []},
    {"tenant_id": T, "scope": "tenant", "rules": [{"kind": "roaming", "allowed_mcc": ["262"]},
                                                   {"kind": "roaming", "allowed_mcc": ["232"]}]},
])
def test_invalid_policies_are_rejected(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        policy_from_dict(raw)


def test_policy_round_trips_through_its_dict_form() -> None:
    p = pol("apn:iot.acme", DEST, {"kind": "time", "windows": [{"start": "08:00", "end": "18:00"}]},
            {"kind": "volume", "period": "month", "max_bytes": 10**9},
            {"kind": "rate", "max_flows": 10}, {"kind": "roaming", "allowed_mcc": ["262"]})
    assert p == policy_from_dict(p.to_dict())
    assert Scope(ScopeKind.APN, "iot.acme") == p.scope


def test_utc_segments_shift_local_windows_into_utc_days() -> None:

    weekdays = [[(480, 1080)]] * 5 + [[], []]  # Mon-Fri 08:00-18:00 local
    winter = datetime(2024, 1, 15, 12, tzinfo=UTC).timestamp()
    summer = datetime(2024, 7, 15, 12, tzinfo=UTC).timestamp()
    assert [(d, 420, 1020) for d in range(5)] == utc_segments(weekdays, "Europe/Berlin", winter)
    assert [(d, 360, 960) for d in range(5)] == utc_segments(weekdays, "Europe/Berlin", summer)
    monday_early = [[(0, 120)]] + [[]] * 6  # Mon 00:00-02:00 in Tokyo = Sun 15:00-17:00 UTC
    assert [(6, 900, 1020)] == utc_segments(monday_early, "Asia/Tokyo", winter)
