"""Score the fraud detectors on generated, labelled scenarios.

The scenarios of all SIMs are merged into one time-ordered stream (what the core
network interfaces deliver) and fed to one :class:`FraudDetector`. A ``clone``
scenario counts as detected by a ``sim-clone`` alert, a ``travel`` scenario by
an ``impossible-travel`` alert, a ``usage`` scenario by a ``usage-fraud`` alert
and an ``equipment`` scenario by an ``equipment`` alert, raised at or after the
scenario's onset (the detector knows each SIM's registered model and the
operator blocklist, :func:`detector_for`), a ``phone`` scenario by a
``usage-fraud`` alert whose feature is ``phone_like_use`` (scored as its own
kind, ``phone-like-use``, in recall, precision and alert counts); every alert
on a ``benign`` SIM is a
false alarm, reported per 1,000 SIM-days of benign traffic. Time to detect is
from onset to the first matching alert. Precision per alert kind is over SIMs:
of the SIMs with an alert of that kind, the share that carry a fraud
(``precision``) and the share whose fraud is the one that kind detects
(``precision_matching``: an ``equipment`` alert on a cloned SIM in another model
is true but not matching).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from simtrust.detect import Alert, FraudDetector, FraudThresholds
from simtrust.testing.fraud.scenarios import Scenario, generate, merged

__all__ = ["FraudScore", "detector_for", "evaluate", "score"]

_MATCH = {"clone": "sim-clone", "travel": "impossible-travel", "usage": "usage-fraud",
          "equipment": "equipment", "phone": "phone-like-use"}


def _kind(a: Alert) -> str:
    """The alert's kind, with the phone-like-use detector told apart from other usage fraud."""
    return "phone-like-use" if a.evidence.get("feature") == "phone_like_use" else a.kind


@dataclass(slots=True)
class FraudScore:
    """Recall per label and sub-type, false alarms, time to detect (seconds)."""

    sims: int
    events: int
    sim_days_benign: float
    recall: dict[str, float] = field(default_factory=dict)
    recall_by_kind: dict[str, float] = field(default_factory=dict)
    false_alarms: int = 0
    false_alarm_kinds: dict[str, int] = field(default_factory=dict)
    time_to_detect_median_s: dict[str, float] = field(default_factory=dict)
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    precision: dict[str, float] = field(default_factory=dict)
    precision_matching: dict[str, float] = field(default_factory=dict)

    @property
    def false_alarms_per_1000_sim_days(self) -> float:
        return 1000.0 * self.false_alarms / self.sim_days_benign if self.sim_days_benign else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "sims": self.sims,
            "events": self.events,
            "sim_days_benign": round(self.sim_days_benign, 1),
            "recall": self.recall,
            "recall_by_kind": self.recall_by_kind,
            "false_alarms": self.false_alarms,
            "false_alarm_kinds": self.false_alarm_kinds,
            "false_alarms_per_1000_sim_days": round(self.false_alarms_per_1000_sim_days, 3),
            "time_to_detect_median_s": self.time_to_detect_median_s,
            "alerts_by_kind": self.alerts_by_kind,
            "precision": self.precision,
            "precision_matching": self.precision_matching,
        }


def score(scenarios: list[Scenario], alerts: list[Alert], events: int) -> FraudScore:
    """Match ``alerts`` against the labels of ``scenarios``."""
    by_imsi: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        by_imsi[a.imsi].append(a)
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    hit_kind: Counter[str] = Counter()
    total_kind: Counter[str] = Counter()
    delays: dict[str, list[float]] = defaultdict(list)
    out = FraudScore(len(scenarios), events, 0.0)
    false_kinds: Counter[str] = Counter()
    for s in scenarios:
        mine = by_imsi.get(s.imsi, [])
        if s.label == "benign":
            out.sim_days_benign += s.days
            out.false_alarms += len(mine)
            false_kinds.update(_kind(a) for a in mine)
            continue
        total[s.label] += 1
        total_kind[s.kind] += 1
        found = [a for a in mine if _kind(a) == _MATCH[s.label] and a.raised_at >= s.onset]
        if found:
            hit[s.label] += 1
            hit_kind[s.kind] += 1
            delays[s.label].append(min(a.raised_at for a in found) - s.onset)
    out.recall = {k: round(hit[k] / total[k], 4) for k in sorted(total)}
    out.recall_by_kind = {k: round(hit_kind[k] / total_kind[k], 4) for k in sorted(total_kind)}
    out.time_to_detect_median_s = {k: round(statistics.median(v), 1)
                                   for k, v in sorted(delays.items())}
    out.false_alarm_kinds = dict(sorted(false_kinds.items()))
    out.alerts_by_kind = dict(sorted(Counter(_kind(a) for a in alerts).items()))
    labels = {s.imsi: s.label for s in scenarios}
    alerted: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        alerted[_kind(a)].add(a.imsi)
    wanted = {v: k for k, v in _MATCH.items()}
    for kind, imsis in sorted(alerted.items()):
        fraud = sum(1 for i in imsis if labels.get(i, "benign") != "benign")
        matching = sum(1 for i in imsis if labels.get(i) == wanted.get(kind))
        out.precision[kind] = round(fraud / len(imsis), 4)
        out.precision_matching[kind] = round(matching / len(imsis), 4)
    return out


def detector_for(scenarios: list[Scenario], thresholds: FraudThresholds | None = None,
                 ) -> FraudDetector:
    """A detector that knows the scenarios' registered models and blocklisted IMEIs."""
    models: dict[str, frozenset[str]] = {}
    shared: dict[str, frozenset[str]] = {}
    for s in scenarios:
        if s.model_tac:
            models[s.imsi] = shared.setdefault(s.model_tac, frozenset((s.model_tac,)))
    return FraudDetector(thresholds, models=models,
                         blocked=[s.blocked for s in scenarios if s.blocked])


def evaluate(seed: int, sims: int, days: float = 7.0, benign_share: float = 0.8,
             thresholds: FraudThresholds | None = None, usage_share: float = 0.0,
             phone_share: float = 0.0) -> FraudScore:
    """Generate ``sims`` scenarios with ``seed``, run the detectors, score them."""
    scenarios = list(generate(seed, sims, days, benign_share, usage_share=usage_share,
                              phone_share=phone_share))
    stream = merged(scenarios)
    detector = detector_for(scenarios, thresholds)
    alerts = detector.observe_many(stream)
    return score(scenarios, alerts, len(stream))
