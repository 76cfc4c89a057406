"""A member's consortium settings file: members, keys or coordinator, and sharing policy.

The file ``SIMTRUST_FRAUD_CONSORTIUM`` names (docs/fraud.md "HTTP API" and
"Consortium membership and key rotation"): the members' DIDs, hand-set key
epochs or the coordinator whose rotations bring them, the grace period of a
superseded epoch, and what this member does with partners' reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from simtrust.errors import InvalidInput
from simtrust.fraudshare._intel import ConsortiumKeys
from simtrust.fraudshare._membership import DEFAULT_GRACE

__all__ = ["_SEVERITY_RANK", "Consortium", "SharingPolicy", "consortium_from_json"]

_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class SharingPolicy:
    """What this member does with partners' reports.

    ``blocklist``: apply shared equipment reports to the detector's blocklist;
    ``min_reputation`` and ``min_severity``: only from reporters and reports at
    least this trusted and severe (a new reporter starts at 0.5).
    """

    blocklist: bool = True
    min_reputation: float = 0.5
    min_severity: str = "medium"


@dataclass(frozen=True, slots=True)
class Consortium:
    """A member's consortium settings: the other members' DIDs, the keys and the policy.

    With a ``coordinator`` the coordinator's key rotations on the ledger set members
    and keys from then on (``members`` and ``keys`` only start the consortium);
    ``grace`` is how long a superseded epoch still matches reports.
    """

    members: frozenset[str]
    keys: ConsortiumKeys
    policy: SharingPolicy
    coordinator: str | None = None
    grace: timedelta = DEFAULT_GRACE

    def __repr__(self) -> str:
        return (f"Consortium(members={len(self.members)}, keys={self.keys!r},"
                f" coordinator={self.coordinator!r})")


_FILE_KEYS = frozenset({"members", "current", "keys", "policy", "coordinator", "grace_days"})


def _did_or_none(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("did:") or len(value) > 200:
        raise InvalidInput(f"{name} is a DID")
    return value


def consortium_from_json(doc: object) -> Consortium:
    """``{"members": [DID, ...], "current": EPOCH, "keys": {EPOCH: HEX}, "policy": {...}}``.

    ``policy`` is optional: ``blocklist`` (bool), ``min_reputation`` (0-1),
    ``min_severity``. With ``coordinator`` (its DID) the coordinator's rotations
    on the ledger bring the keys, so ``current`` and ``keys`` may be left out;
    ``grace_days`` (0-3650, default 30) keeps superseded epochs for matching.
    The file is secret when it holds keys.
    """
    if not isinstance(doc, dict) or not set(doc) <= _FILE_KEYS:
        raise InvalidInput("a consortium file has members, current, keys and optionally"
                           " policy, coordinator and grace_days")
    members = doc.get("members", [])
    if not isinstance(members, list) or not all(
            isinstance(m, str) and m.startswith("did:") and len(m) <= 200 for m in members):
        raise InvalidInput("members is a list of DIDs")
    coordinator = _did_or_none(doc.get("coordinator"), "coordinator")
    grace_days = doc.get("grace_days", DEFAULT_GRACE / timedelta(days=1))
    if isinstance(grace_days, bool) or not isinstance(grace_days, int | float) \
            or not 0 <= grace_days <= 3650:
        raise InvalidInput("grace_days is a number of days, 0-3650")
    policy = doc.get("policy", {})
    if not isinstance(policy, dict) or not set(policy) <= {"blocklist", "min_reputation",
                                                            "min_severity"}:
        raise InvalidInput("policy has blocklist, min_reputation and min_severity")
    try:
        chosen = SharingPolicy(**policy)
    except TypeError as exc:
        raise InvalidInput("policy has blocklist, min_reputation and min_severity") from exc
    if (not isinstance(chosen.blocklist, bool) or chosen.min_severity not in _SEVERITY_RANK
            or not isinstance(chosen.min_reputation, int | float)
            or not 0 <= chosen.min_reputation <= 1):
        raise InvalidInput("policy: blocklist true/false, min_reputation 0-1, min_severity"
                           " low|medium|high|critical")
    if coordinator is not None and "keys" not in doc and "current" not in doc:
        keys = ConsortiumKeys.none()
    else:
        keys = ConsortiumKeys.from_json({"current": doc.get("current"), "keys": doc.get("keys")})
    return Consortium(frozenset(members), keys, chosen, coordinator,
                      timedelta(days=grace_days))
