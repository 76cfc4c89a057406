"""PolicyEngine.meter: byte counts a gateway reports (RADIUS accounting) against volume caps
only — destination and rate rules are not judged on counts — and the rule's actions."""

from __future__ import annotations

from simtrust.domain import DeviceContext
from simtrust.policy import (
    ActionDispatcher,
    AddressMap,
    PolicyEngine,
    PolicySet,
    RecordingRemoveAction,
    StaticDirectory,
    policy_from_dict,
)

T = "acme"
IMSI = "001010000000001"


class _Audit:
    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def append(self, **fields: object) -> None:
        self.records.append(fields)


def test_meter_counts_bytes_against_volume_caps_only() -> None:
    policy = policy_from_dict({"tenant_id": T, "scope": "apn:iot.acme", "rules": [
        {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/24"]}]},
        {"kind": "rate", "max_flows": 1, "per_seconds": 60},
        {"kind": "volume", "period": "day", "max_bytes": 1000, "actions": ["remove", "log"]},
    ]})
    remover = RecordingRemoveAction()
    dispatcher = ActionDispatcher(_Audit(), removers=[remover])
    engine = PolicyEngine(PolicySet([policy]), AddressMap(),
                          StaticDirectory([DeviceContext(IMSI, T, apn="iot.acme")]), dispatcher,
                          clock=lambda: 1_700_000_000.0)
    first = engine.meter(IMSI, 600)
    assert first.allowed
    assert () == first.violations
    second = engine.meter(IMSI, 600)
    assert ["volume"] == [v.kind for v in second.violations]
    dispatcher.flush()
    assert [IMSI] == [imsi for imsi, _reason in remover.removed]
    assert "unknown-device" == engine.meter("001010000000099", 10).reason


def test_meter_many_acts_as_meter_does_record_by_record() -> None:
    policy = policy_from_dict({"tenant_id": T, "scope": "apn:iot.acme", "rules": [
        {"kind": "volume", "period": "day", "max_bytes": 1000, "actions": ["remove", "log"]},
    ]})
    other = "001010000000002"
    devices = [DeviceContext(IMSI, T, apn="iot.acme"), DeviceContext(other, T, apn="iot.acme")]
    burst = [(IMSI, 600), (other, 100), (IMSI, 600), ("001010000000099", 10), (IMSI, 50)]
    seen = []
    for batch in (True, False):
        audit = _Audit()
        remover = RecordingRemoveAction()
        dispatcher = ActionDispatcher(audit, removers=[remover])
        policies = PolicySet([policy])
        engine = PolicyEngine(policies, AddressMap(), StaticDirectory(devices), dispatcher,
                              clock=lambda: 1_700_000_000.0)
        if batch:
            engine.meter_many(burst)  # type: ignore[arg-type]
        else:
            for imsi, octets in burst:
                engine.meter(imsi, octets)  # type: ignore[arg-type]
        dispatcher.flush()
        seen.append(([imsi for imsi, _reason in remover.removed], audit.records,
                     dict(policies.usage.volume)))
    assert seen[0] == seen[1]
    assert [IMSI] == seen[0][0]  # the cap crossed acts once
    assert 1250 == next(v for (imsi, _p), (_b, v) in seen[0][2].items() if imsi == IMSI)


def test_meter_many_without_volume_caps_looks_nothing_up() -> None:
    class _Directory(StaticDirectory):
        asked = 0

        def context(self, imsi: str) -> DeviceContext | None:  # type: ignore[override]
            self.asked += 1
            return super().context(imsi)  # type: ignore[arg-type]

    directory = _Directory([DeviceContext(IMSI, T, apn="iot.acme")])
    rate = policy_from_dict({"tenant_id": T, "scope": "apn:iot.acme", "rules": [
        {"kind": "rate", "max_flows": 1, "per_seconds": 60}]})
    engine = PolicyEngine(PolicySet([rate]), AddressMap(), directory)
    engine.meter_many([(IMSI, 600)])  # type: ignore[list-item]
    assert 0 == directory.asked
    engine.install(policy_from_dict({"tenant_id": T, "scope": "apn:iot.acme", "rules": [
        {"kind": "volume", "period": "day", "max_bytes": 1000}]}))
    engine.meter_many([(IMSI, 600)])  # type: ignore[list-item]
    assert 1 == directory.asked
