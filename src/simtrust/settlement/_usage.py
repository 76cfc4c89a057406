"""Usage records from the operator's own RADIUS accounting (issue 15 item 3).

A visited network's usage file comes from its gateways; when those gateways
send RADIUS accounting to simtrust (``docs/private-apn.md``), every closed
session in a visited network is one data record of the reconciliation format
(``docs/settlement.md``, "The usage record files"):

- ``charging_id`` is the session's Acct-Session-Id (RFC 2866 §5.5), unique per
  gateway and session, so both sides name the session alike;
- ``imsi`` and ``visited_plmn`` are what the gateway reported (3GPP-IMSI and
  3GPP-SGSN-MCC-MNC, TS 29.061 §16.4.7);
- ``start`` is when the session started, ``duration_s`` its Acct-Session-Time;
- ``bytes_up`` are Acct-Input-Octets (from the device) and ``bytes_down``
  Acct-Output-Octets, Gigawords included (RFC 2869 §5.1, §5.2).

The home PLMN is the agreement's: the caller names it, since an IMSI's MNC
length cannot be told from the digits alone.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from simtrust.aaa import Session
from simtrust.errors import InvalidInput
from simtrust.settlement._agreement import parse_utc_micros
from simtrust.settlement._reconcile import USAGE_COLUMNS

__all__ = ["export_session_usage"]

#: Fetches one page of closed roaming sessions after a ``(started_at, session_key)`` cursor.
SessionPages = Callable[[tuple[str, str] | None], list[Session]]


def export_session_usage(
    pages: SessionPages, out: Path, *, home_plmn: str,
    since_us: int | None = None, until_us: int | None = None,
) -> int:
    """Write every closed roaming session as a usage record to ``out``; the record count.

    ``since_us``/``until_us`` bound the sessions' start (half-open, microseconds
    since the epoch). The file is written to a temporary name and renamed when
    complete, so a failure leaves no partial file.
    """
    if not home_plmn.isdigit() or len(home_plmn) not in (5, 6):
        raise InvalidInput("the home PLMN is MCC+MNC, 5 or 6 digits")
    folder = out.parent if str(out.parent) else Path(".")
    handle, temp = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    count = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as sink:
            writer = csv.writer(sink, lineterminator="\n")
            writer.writerow(USAGE_COLUMNS)
            cursor: tuple[str, str] | None = None
            while page := pages(cursor):
                for session in page:
                    started = parse_utc_micros(session.started_at)
                    if (since_us is None or started >= since_us) and (
                        until_us is None or started < until_us
                    ) and session.imsi and session.visited_plmn:
                        writer.writerow([
                            session.acct_session_id, session.imsi, session.visited_plmn,
                            home_plmn, "data", session.started_at, session.session_time,
                            session.in_octets, session.out_octets, 0,
                        ])
                        count += 1
                cursor = (page[-1].started_at, page[-1].session_key)
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return count
