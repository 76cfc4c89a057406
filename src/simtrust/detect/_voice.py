"""Phone-like use of data-only IoT SIMs: bursts of calls, SMS and voice-like flows.

Two signals reach the detector per SIM:

* **usage records** of the operator's mediation — one ``voice`` or ``sms``
  :class:`~simtrust.detect.SimEvent` per call or message (TS 32.298 §5.1.2:
  MOCall/MTCall with their call duration, MO-SMS/MT-SMS; read by
  :mod:`._records`);
* **flow summaries** counting the SIM's voice-like flows
  (``SimEvent.voice_flows``): SIP signalling on its registered ports 5060
  and 5061 (RFC 3261 §18.1, §26.2, over UDP, TCP, TLS or SCTP) and RTP-like
  media (RFC 3550): UDP between two unprivileged ports, at least
  ``_RTP_MIN_S`` long, 15–65 packets a second (a codec frame every 16–66 ms;
  RFC 3551 §4.2 and §4.5 name 20 ms as the default packetisation, i.e. 50
  packets a second) of at most ``_RTP_MAX_OCTETS`` on average (G.711 at 20 ms
  is 200 octets with its IPv4, UDP and RTP headers; video and bulk transfer
  use full-size packets), seen in both directions within the batch
  (:class:`VoiceTally`: a conversation talks both ways; a one-way stream is
  telemetry or video).

Per SIM and UTC day the detector counts *contacts*: calls (either
direction: nobody calls a meter) + mobile-originated SMS + voice-like flows.
Mobile-terminated SMS are counted apart and do not make a burst: the network
and the platform send them to data-only SIMs too (SIM OTA over SMS-PP, TS
31.115; device triggers, TS 23.682 §5.2), sometimes several a day.

A day is a burst when the SIM is **data-only** — its cohort (tenant and APN)
has voice or SMS on at most ``voice_cohort_share`` of its SIM-days, once the
cohort has ``cohort_min_days`` SIM-days; or, for a SIM without a judged
cohort, its own ``voice_min_days`` days of data use and all its earlier
days had none — and its
contacts exceed ``voice_floor`` and ``voice_factor`` × both its own baseline
(EWMA of its past days) and its cohort's contacts per SIM-day. A day that
raised an alert is kept out of the cohort's figures, so fraud cannot teach
the cohort that voice is normal. Pure logic on the events' own time; state
only for SIMs with voice signals (docs/decisions/fraud-phone-like-use.md).
"""

from __future__ import annotations

from typing import Any

from simtrust.detect._usage import sim_day
from simtrust.domain import FlowRecord

__all__ = ["RTP", "SIP", "VoiceBaselines", "VoiceTally", "voice_flow_kind"]

SIP = 1
RTP = 2
_SIP_PORTS = frozenset((5060, 5061))
_SIP_PROTOCOLS = frozenset((6, 17, 132))
_RTP_MIN_S = 10.0
_RTP_PPS = (15.0, 65.0)
_RTP_MAX_OCTETS = 400
_RTP_MIN_PACKETS = int(_RTP_MIN_S * _RTP_PPS[0])
_DAY = 86_400.0
_ALPHA = 0.3


def voice_flow_kind(flow: FlowRecord) -> int:
    """:data:`SIP`, :data:`RTP` or 0 for a flow record (cheap: most flows fail the first test)."""
    sp, dp = flow.src_port, flow.dst_port
    if sp in _SIP_PORTS or dp in _SIP_PORTS:
        return SIP if flow.protocol in _SIP_PROTOCOLS else 0
    packets = flow.packets
    if flow.protocol != 17 or packets < _RTP_MIN_PACKETS or sp < 1024 or dp < 1024:
        return 0
    span = flow.end - flow.start
    if span < _RTP_MIN_S or flow.octets > _RTP_MAX_OCTETS * packets:
        return 0
    return RTP if _RTP_PPS[0] <= packets / span <= _RTP_PPS[1] else 0


class VoiceTally:
    """Voice-like flows per SIM within one batch: SIP flows + RTP-like flows paired by direction."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}

    def add(self, imsi: str, flow: FlowRecord, uplink: bool) -> None:
        kind = voice_flow_kind(flow)
        if not kind:
            return
        c = self._counts.get(imsi)
        if c is None:
            c = self._counts[imsi] = [0, 0, 0]  # SIP, RTP up, RTP down
        c[0 if kind == SIP else (1 if uplink else 2)] += 1

    def count(self, imsi: str) -> int:
        """SIP flows plus the RTP-like flows that have a counterpart in the other direction."""
        c = self._counts.get(imsi)
        return 0 if c is None else c[0] + min(c[1], c[2])


class _Voice:
    __slots__ = ("alerted", "base", "calls", "cohort", "day", "days", "flows", "mo", "mt_sms",
                 "past", "sms", "talk_s")

    def __init__(self, day: int, cohort: str) -> None:
        self.day = day
        self.cohort = cohort
        self.calls = 0
        self.sms = 0  # mobile originated
        self.mt_sms = 0
        self.flows = 0
        self.mo = 0
        self.talk_s = 0.0
        self.base = 0.0
        self.days = 0
        self.past = 0  # contacts on the SIM's earlier days
        self.alerted = False

    @property
    def contacts(self) -> int:
        return self.calls + self.sms + self.flows


#: (cooldown key, summary, evidence), as :data:`simtrust.detect._usage.UsageFinding`.
VoiceFinding = tuple[str, str, dict[str, Any]]


class VoiceBaselines:
    """Calls, SMS and voice-like flows per SIM and day against its own and its cohort's past.

    ``history`` answers, for an IMSI and a time, (days of data use known, cohort) from the
    usage baselines, and ``cohort_days`` a cohort's SIM-days with data traffic:
    the denominators that say whether a cohort is data-only.
    """

    __slots__ = ("_cohorts", "_sims", "cohort_days", "history", "th")

    def __init__(self, thresholds: Any, history: Any, cohort_days: Any) -> None:
        self.th = thresholds
        self.history = history
        self.cohort_days = cohort_days
        self._sims: dict[str, _Voice] = {}
        #: cohort → [SIM-days with voice or SMS, their contacts]
        self._cohorts: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._sims)

    def cohort(self, name: str) -> tuple[int, int] | None:
        """(SIM-days with voice or SMS, their contacts) of a cohort, or None."""
        c = self._cohorts.get(name)
        return None if c is None else (c[0], c[1])

    def _roll(self, v: _Voice, day: int) -> None:
        n = v.contacts
        v.past += n
        if n and v.cohort and not v.alerted:
            c = self._cohorts.get(v.cohort)
            if c is None:
                c = self._cohorts[v.cohort] = [0, 0]
            c[0] += 1
            c[1] += n
        for k in range(min(day - v.day, 30)):
            x = n if k == 0 else 0
            # from zero: the SIM's days before its first call were days without any
            v.base = _ALPHA * x + (1 - _ALPHA) * v.base
            v.days += 1
        v.day, v.calls, v.sms, v.mt_sms, v.flows, v.mo = day, 0, 0, 0, 0, 0
        v.talk_s, v.alerted = 0.0, False

    def observe(self, imsi: str, kind: str, at: float, cohort: str, *, direction: str = "",
                duration: float = 0.0, flows: int = 0) -> list[VoiceFinding]:
        """A call (``kind`` ``voice``), an SMS (``sms``) or ``flows`` voice-like flows."""
        day = int(at // _DAY)
        known = self.history(imsi, at)
        if known is not None and known[1]:
            cohort = known[1]
        v = sim_day(self._sims, imsi, day, cohort, _Voice, self._roll)
        if v is None:
            return []  # a late record of a day already judged
        if kind == "voice":
            v.calls += 1
            v.talk_s += duration
        elif kind == "sms":
            if direction == "mt":
                v.mt_sms += 1
                return []  # never a burst on its own (OTA, device triggers)
            v.sms += 1
        else:
            v.flows += flows
        if direction == "mo":
            v.mo += 1
        if v.alerted:
            return []
        return self._judge(imsi, v, known)

    def _judge(self, imsi: str, v: _Voice, known: tuple[int, str] | None) -> list[VoiceFinding]:
        th = self.th
        contacts = v.contacts
        if contacts <= th.voice_floor:
            return []
        sim_days = self.cohort_days(v.cohort) if v.cohort else 0
        c = self._cohorts.get(v.cohort)
        voice_days, voice_contacts = (c[0], c[1]) if c is not None else (0, 0)
        if sim_days >= th.cohort_min_days:
            share = voice_days / max(sim_days, voice_days)
            if share > th.voice_cohort_share:
                return []  # a cohort that calls (alarm phones, eCall): not data-only
            per_day = voice_contacts / max(sim_days, voice_days)
            judged = "cohort"
        elif known is not None and known[0] >= th.voice_min_days and v.past == 0:
            share, per_day, judged = 0.0, 0.0, "own-history"
        else:
            return []  # nothing says this SIM is data-only
        limit = max(float(th.voice_floor), th.voice_factor * v.base, th.voice_factor * per_day)
        if contacts <= limit:
            return []
        v.alerted = True
        return [(f"phone:{v.day}",
                 f"data-only SIM {imsi} made {v.calls} calls, sent {v.sms} SMS and had "
                 f"{v.flows} voice-like flows today (its own baseline {v.base:.1f} a day)",
                 {"feature": "phone_like_use", "observed": contacts, "calls": v.calls,
                  "sms_mo": v.sms, "sms_mt": v.mt_sms, "voice_flows": v.flows,
                  "mobile_originated": v.mo,
                  "talk_s": round(v.talk_s, 1), "baseline": round(v.base, 2),
                  "days_of_history": v.days, "cohort": v.cohort, "cohort_sim_days": sim_days,
                  "cohort_voice_share": round(share, 4),
                  "cohort_contacts_per_sim_day": round(per_day, 4), "data_only_by": judged,
                  "threshold": round(limit, 2), "floor": th.voice_floor,
                  "factor": th.voice_factor, "max_cohort_share": th.voice_cohort_share,
                  "reason": "phone-like-use"})]
