"""What attach decisions and the HSS need of a SIM (no secrets), read for one or many IMSIs.

The attach engine caches these views (``simtrust.subscriber._attach``); a burst
of S6a AIRs loads the views of its SIMs not yet cached in one query
(docs/decisions/auc-credential-memo.md, "Views").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simtrust.domain import Plmn
from simtrust.store import Database
from simtrust.subscriber._model import BindingMode, Roaming, SimState

__all__ = ["SimView", "read_views"]

_SELECT = ("SELECT iccid, imsi, tenant_id, state, mnc_length, group_id, apn, static_ip,"
           " binding_mode, roaming FROM sub_sims WHERE imsi")
_CHUNK = 500


class SimView:
    """What a decision needs of a SIM (no secrets)."""

    __slots__ = ("apn", "binding_mode", "group_id", "home", "iccid", "imsi", "roaming",
                 "state", "static_ip", "tenant_id")

    def __init__(self, row: Any) -> None:
        self.iccid = str(row[0])
        self.imsi = str(row[1])
        self.tenant_id = str(row[2])
        self.state = SimState(row[3])
        mnc_length = int(row[4])
        self.home = Plmn(self.imsi[:3], self.imsi[3 : 3 + mnc_length])
        self.group_id = None if row[5] is None else int(row[5])
        self.apn = None if row[6] is None else str(row[6])
        self.static_ip = None if row[7] is None else str(row[7])
        self.binding_mode = None if row[8] is None else BindingMode(row[8])
        self.roaming = Roaming.from_text(row[9])


def read_views(db: Database, imsis: Sequence[str]) -> dict[str, SimView | None]:
    """The view of each of ``imsis`` (None: no such SIM), ``_CHUNK`` IMSIs per query."""
    views: dict[str, SimView | None] = dict.fromkeys(imsis)
    unique = list(views)
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start:start + _CHUNK]
        if len(chunk) == 1:
            rows = db.query(f"{_SELECT} = ?", chunk)
        else:
            rows = db.query(f"{_SELECT} IN ({','.join('?' * len(chunk))})", chunk)
        for row in rows:
            views[str(row[1])] = SimView(row)
    return views
