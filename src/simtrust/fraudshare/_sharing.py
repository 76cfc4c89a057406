"""One consortium member's view of shared fraud intelligence, applied from the ledger.

:class:`FraudIntelligence` is the ledger's ``tagged-data`` handler for
:data:`~simtrust.fraudshare._intel.INTEL_TAG` payloads (docs/fraud.md "Sharing").
It accepts only reports, status lists and confirmations signed by consortium
members, refuses replays, stale and forged documents and a revocation by
anyone but the reporter (a report is withdrawn only by a set bit in the
reporter's own Bitstring Status List, W3C Bitstring Status List v1.0 §3.2,
:mod:`simtrust.fraudshare._status`; a withdrawal is alerted and lowers the
reporter's reputation) (the reason is recorded for this member; the ledger
message stays valid, because acceptance depends on each member's own
consortium settings and must not make validators' ledger states differ),
matches reports against the member's own SIMs by recomputing the keyed
hashes of its IMSIs, and keeps the shared equipment blocklist that the fraud
detector consults. Its state is rebuilt from the ledger at start
(``replay_from=1``), so nothing is kept beside the ledger
(docs/decisions/fraud-sharing.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simtrust.detect import Alert
from simtrust.domain import imsi_digits
from simtrust.errors import Conflict, DecodeError, NotFound, PermissionDenied
from simtrust.fraudshare._intel import (
    EQUIPMENT_INDICATORS,
    INTEL_TAG,
    MAX_SKEW,
    ConsortiumKeys,
    FraudReport,
    check_confirmation,
    check_report,
    check_revocation,
    confirmation,
    decode_intel_payload,
    intel_payload,
    proof_created,
)
from simtrust.fraudshare._membership import ConsortiumMembership
from simtrust.fraudshare._rotation import (
    CONSORTIUM_TAG,
    decode_rotation_payload,
    rotation_payload,
)
from simtrust.fraudshare._settings import _SEVERITY_RANK, SharingPolicy
from simtrust.fraudshare._status import ReceivedStatusLists, ReportStatusList
from simtrust.identity import DidResolver, Signer, VerificationFailed
from simtrust.ledger import FinalizedMessage, LedgerNode, TaggedData, decode_message

__all__ = ["FraudIntelligence"]

Submit = Callable[[bytes, bytes], bytes]
_log = logging.getLogger("simtrust.detect.sharing")


@dataclass(slots=True)
class _Entry:
    report: FraudReport
    message_id: bytes
    revoked: str | None = None
    confirmed_by: frozenset[str] = frozenset()


class FraudIntelligence:
    """Apply, match and publish consortium fraud reports (thread-safe).

    ``me`` is this member's DID; ``members`` the DIDs whose documents count;
    ``own_imsis`` lists this operator's IMSIs (matched by keyed hash, never
    sent); ``deliver`` takes the alerts a match raises (the alert stack).
    """

    def __init__(
        self,
        *,
        me: str,
        members: Iterable[str],
        keys: ConsortiumKeys,
        resolver: DidResolver,
        own_imsis: Callable[[], Iterable[str]] = tuple,
        own_version: Callable[[], object] = lambda: None,
        deliver: Callable[[list[Alert]], object] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy: SharingPolicy | None = None,
        status: ReportStatusList | None = None,
        membership: ConsortiumMembership | None = None,
    ) -> None:
        """``own_version`` changes when the own SIMs change (the hash index is rebuilt);
        ``status`` is this member's revocation list of its own reports; with
        ``membership`` the coordinator's rotations on the ledger set members and
        keys (``members`` and ``keys`` only start it)."""
        self.me = me
        self.members = frozenset(members) | {me}
        self.keys = keys
        self.resolver = resolver
        self.policy = policy or SharingPolicy()
        self.status = status
        self.membership = membership
        if membership is not None:
            membership.bootstrap(members, keys)
            self.members = membership.members | {me}
            self.keys = membership.keys() or ConsortiumKeys.none()
        self._lists = ReceivedStatusLists(resolver)
        self.withdrawn: list[Alert] = []
        self._own_imsis = own_imsis
        self._own_version = own_version
        self._indexed: object = None
        self._deliver = deliver
        self._now = now
        self._lock = threading.RLock()
        self._reports: dict[str, _Entry] = {}
        self._outcomes: dict[bytes, tuple[str, str]] = {}
        self._index: dict[str, dict[str, str]] = {}  # epoch → keyed hash → own IMSI
        self._blocked: dict[str, dict[str, str]] = {}  # epoch → IMEI hash → report id
        self._blocked_tacs: dict[str, str] = {}
        self.matches: list[Alert] = []
        self.refused = 0
        self._order = 0  # finalized order of the last message applied

    def __repr__(self) -> str:
        return f"FraudIntelligence(me={self.me!r}, reports={len(self._reports)})"

    def update_consortium(self, members: Iterable[str], keys: ConsortiumKeys,
                          policy: SharingPolicy | None = None) -> None:
        """New members, keys or policy (the consortium file changed); documents already
        applied or refused keep their outcome, the next ones are judged by these."""
        with self._lock:
            self.policy = policy or SharingPolicy()
            if self.membership is not None:
                self.membership.bootstrap(members, keys)
                self._from_membership()
                return
            self.members = frozenset(members) | {self.me}
            self.keys = keys
            self._index.clear()  # new epochs: rebuild the keyed-hash index

    def _from_membership(self) -> None:
        assert self.membership is not None
        self.members = self.membership.members | {self.me}
        self.keys = self.membership.keys() or ConsortiumKeys.none()
        self._index.clear()

    # -- the ledger handler ---------------------------------------------------------------

    def apply(self, fm: FinalizedMessage) -> None:
        """Apply one finalized tagged-data message; a refusal is recorded, never raised.

        Raising would void the message in this node's ledger state, and members with
        different consortium settings (members, key epochs) would then disagree.
        """
        with self._lock:
            if fm.order <= self._order:
                return  # seen through catch_up or a replay already
            self._order = fm.order
        body = fm.body
        if not isinstance(body, TaggedData):
            body = decode_message(fm.payload).body  # pragma: no cover - nodes always decode
            if not isinstance(body, TaggedData):
                return
        if body.tag == CONSORTIUM_TAG and self.membership is not None:
            self._rotate(body.data, fm.issued_at, bytes(fm.message_id))
            return
        if body.tag != INTEL_TAG:
            return
        try:
            outcome = self._apply(body.data, fm.issued_at, bytes(fm.message_id))
        except VerificationFailed as exc:
            self._refuse(bytes(fm.message_id), exc.reason, exc.detail)
        except DecodeError as exc:
            self._refuse(bytes(fm.message_id), "malformed", exc.detail)
        else:
            with self._lock:
                self._outcomes[bytes(fm.message_id)] = ("applied", outcome)

    def catch_up(self, node: LedgerNode, *, page: int = 500) -> int:
        """Apply tagged-data messages finalized since the last one seen (another process's).

        API workers and the listeners' process share the store, not memory: each
        catches up from the ledger before it reads or acts. Returns how many it applied.
        """
        applied = 0
        while True:
            with self._lock:
                after = self._order
            rows = node.finalized_since(after, page)
            for row in rows:
                if row["payload_type"] != "tagged-data":
                    with self._lock:
                        self._order = max(self._order, int(row["order"]))
                    continue
                raw = node.get_raw(bytes.fromhex(row["message_id"]))
                fm = FinalizedMessage(decode_message(raw), "tagged-data", int(row["order"]),
                                      int(row["round"]))
                self.apply(fm)
                applied += 1
            if len(rows) < page:
                return applied

    def _rotate(self, data: bytes, at: datetime, message_id: bytes) -> None:
        """Apply the coordinator's rotation (``_membership``); a refusal changes nothing."""
        assert self.membership is not None
        try:
            doc = decode_rotation_payload(data)
            with self._lock:
                found = self.membership.accept(doc, at)
                self._from_membership()
                self._outcomes[message_id] = ("applied", "rotation")
        except VerificationFailed as exc:
            self._refuse(message_id, exc.reason, exc.detail)
        except DecodeError as exc:
            self._refuse(message_id, "malformed", exc.detail)
        else:
            _log.info("consortium key rotation %s applied: epoch %s, %d members", found.sequence,
                      found.epoch, len(found.members))

    def _refuse(self, message_id: bytes, reason: str, detail: str) -> None:
        with self._lock:
            self._outcomes[message_id] = ("refused", reason)
            self.refused += 1
        _log.info("fraud intelligence %s refused: %s (%s)", message_id.hex(), reason, detail)

    def outcome(self, message_id: bytes) -> tuple[str, str] | None:
        """("applied", kind) or ("refused", reason) of a message this member saw."""
        with self._lock:
            return self._outcomes.get(message_id)

    def _fresh(self, doc: dict[str, Any], at: datetime) -> None:
        if abs(proof_created(doc) - at) > MAX_SKEW:
            raise VerificationFailed("stale", "signed more than 24 h from when it reached the"
                                     " ledger (a replayed or held-back document)")

    def _member(self, did: str) -> None:
        if did not in self.members:
            raise VerificationFailed("not-a-member", f"{did} is not a consortium member")

    def _apply(self, data: bytes, at: datetime, message_id: bytes) -> str:
        kind, doc = decode_intel_payload(data)
        if kind == "report":
            report = check_report(doc, resolver=self.resolver, now=at, status=self._lists)
            self._member(report.issuer)
            self._fresh(doc, at)
            with self._lock:
                if self.membership is not None and self.membership.expire(at):
                    self._from_membership()
            if report.key_epoch not in self.keys:
                raise VerificationFailed("unknown-key-epoch",
                                         f"no consortium key of epoch {report.key_epoch!r}")
            with self._lock:
                if report.id in self._reports:
                    raise VerificationFailed("replayed", f"report {report.id} is already known")
                self._reports[report.id] = _Entry(report, message_id)
            self._act(report)
            return kind
        if kind == "status-list":
            self._fresh(doc, at)
            url, by = self._lists.accept(doc, now=at, reporters=self._reporters)
            self._member(by)
            self._withdraw(url, by, at)
            return kind
        if kind == "revocation":
            report_id, by = check_revocation(doc, resolver=self.resolver, now=at)
            self._fresh(doc, at)
            with self._lock:
                entry = self._known(report_id)
                if entry.report.issuer != by:
                    raise VerificationFailed("not-the-reporter",
                                             "only the reporter can revoke its report")
                if entry.revoked is not None:
                    raise VerificationFailed("replayed", f"report {report_id} is already revoked")
                entry.revoked = str(doc["reason"])
                self._unblock(entry.report)
            return kind
        report_id, by = check_confirmation(doc, resolver=self.resolver, now=at)
        self._member(by)
        self._fresh(doc, at)
        with self._lock:
            entry = self._known(report_id)
            if by == entry.report.issuer:
                raise VerificationFailed("self-confirmation", "a reporter cannot confirm itself")
            if by in entry.confirmed_by:
                raise VerificationFailed("replayed", f"{by} already confirmed {report_id}")
            entry.confirmed_by |= {by}
        return kind

    def _reporters(self, url: str) -> set[str]:
        with self._lock:
            return {e.report.issuer for e in self._reports.values()
                    if e.report.status_list == url}

    def _withdraw(self, url: str, by: str, at: datetime) -> None:
        """Withdraw every standing report of ``by`` whose bit the new list ``url`` sets."""
        with self._lock:
            standing = [e for e in self._reports.values() if e.revoked is None
                        and e.report.status_list == url and e.report.issuer == by]
        for entry in standing:
            report = entry.report
            try:
                if not self._lists.revoked(url, report.status_index, by, at):
                    continue
            except VerificationFailed as exc:
                _log.info("status of report %s unreadable: %s", report.id, exc.detail)
                continue
            with self._lock:
                entry.revoked = f"status list {url}"
                self._unblock(report)
                reputation = self._reputation(by)
                hits = [] if by == self.me else sorted(
                    imsi for h, imsi in self._own_index(report.key_epoch).items()
                    if h in report.imsi_hashes)
            alerts = [
                Alert(
                    kind="shared-report", imsi=imsi_digits(imsi), at=at.timestamp(),
                    raised_at=at.timestamp(),
                    summary=f"partner {by} withdrew its {report.indicator} report for SIM {imsi}",
                    evidence={"feature": "shared_fraud_report_withdrawn", "report": report.id,
                              "reporter": by, "indicator": report.indicator, "withdrawn": True,
                              "status_list": url, "status_index": report.status_index,
                              "reporter_reputation": reputation, "matched": "imsi"},
                    severity="low",
                )
                for imsi in hits
            ]
            if alerts:
                with self._lock:
                    self.withdrawn = (self.withdrawn + alerts)[-10_000:]
                if self._deliver is not None:
                    self._deliver(alerts)

    def _known(self, report_id: str) -> _Entry:
        entry = self._reports.get(report_id)
        if entry is None:
            raise VerificationFailed("unknown-report", f"no report {report_id}")
        return entry

    # -- acting on reports ----------------------------------------------------------------

    def _own_index(self, epoch: str) -> dict[str, str]:
        version = self._own_version()
        if version != self._indexed:
            self._index.clear()
            self._indexed = version
        index = self._index.get(epoch)
        if index is None:
            key = self.keys.get(epoch)
            index = self._index[epoch] = {key.hash("imsi", i): i for i in self._own_imsis()}
        return index

    def refresh(self) -> None:
        """Forget the own-SIM hash index (SIMs were added); rebuilt at the next report."""
        with self._lock:
            self._index.clear()

    def _act(self, report: FraudReport) -> None:
        if report.issuer == self.me:
            return
        with self._lock:
            index = self._own_index(report.key_epoch)
            hits = sorted(index[h] for h in report.imsi_hashes if h in index)
            reputation = self._reputation(report.issuer)
            if (report.indicator in EQUIPMENT_INDICATORS and self.policy.blocklist
                    and reputation >= self.policy.min_reputation
                    and _SEVERITY_RANK[report.severity]
                    >= _SEVERITY_RANK[self.policy.min_severity]):
                epoch = self._blocked.setdefault(report.key_epoch, {})
                for h in report.imei_hashes:
                    epoch[h] = report.id
                for tac in report.tacs:
                    self._blocked_tacs[tac] = report.id
        alerts = [
            Alert(
                kind="shared-report", imsi=imsi_digits(imsi), at=report_time(report.observed_at),
                raised_at=report_time(report.issued_at),
                summary=f"partner {report.issuer} reports {report.indicator} for SIM {imsi}",
                evidence={"feature": "shared_fraud_report", "report": report.id,
                          "reporter": report.issuer, "indicator": report.indicator,
                          "severity": report.severity, "reporter_reputation": reputation,
                          "evidence_digest": report.evidence_digest, "matched": "imsi",
                          "key_epoch": report.key_epoch},
                severity=report.severity,
            )
            for imsi in hits
        ]
        if alerts:
            with self._lock:
                self.matches = (self.matches + alerts)[-10_000:]
            if self._deliver is not None:
                self._deliver(alerts)

    def _unblock(self, report: FraudReport) -> None:
        epoch = self._blocked.get(report.key_epoch, {})
        for h in report.imei_hashes:
            if epoch.get(h) == report.id:
                del epoch[h]
        for tac in report.tacs:
            if self._blocked_tacs.get(tac) == report.id:
                del self._blocked_tacs[tac]

    def blocked_by(self, imei: str) -> str | None:
        """The id of the partner report that blocklists this IMEI (or its TAC), if any."""
        with self._lock:
            if not self._blocked and not self._blocked_tacs:
                return None
            found = self._blocked_tacs.get(imei[:8])
            if found is not None:
                return found
            for epoch, hashes in self._blocked.items():
                if hashes:
                    found = hashes.get(self.keys.get(epoch).hash("imei", imei))
                    if found is not None:
                        return found
        return None

    # -- reputation and reading -----------------------------------------------------------

    def _reputation(self, did: str) -> float:
        confirmed = revoked = 0
        for e in self._reports.values():
            if e.report.issuer == did:
                revoked += e.revoked is not None
                confirmed += e.revoked is None and bool(e.confirmed_by)
        return round((confirmed + 1) / (confirmed + revoked + 2), 3)

    def reputation(self, did: str) -> dict[str, Any]:
        """Laplace-smoothed share of a reporter's confirmed reports among confirmed and revoked."""
        with self._lock:
            mine = [e for e in self._reports.values() if e.report.issuer == did]
            return {
                "reporter": did, "reports": len(mine),
                "confirmed": sum(e.revoked is None and bool(e.confirmed_by) for e in mine),
                "revoked": sum(e.revoked is not None for e in mine),
                "score": self._reputation(did),
            }  # fmt: skip

    def reports(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._json(e) for e in self._reports.values()]

    def report(self, report_id: str) -> dict[str, Any]:
        with self._lock:
            entry = self._reports.get(report_id)
            if entry is None:
                raise NotFound(f"no fraud report {report_id}")
            return self._json(entry)

    @staticmethod
    def _json(entry: _Entry) -> dict[str, Any]:
        return {**entry.report.to_json(), "message_id": entry.message_id.hex(),
                "revoked": entry.revoked, "confirmed_by": sorted(entry.confirmed_by)}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "reports": len(self._reports),
                "revoked": sum(e.revoked is not None for e in self._reports.values()),
                "matches": len(self.matches), "withdrawn": len(self.withdrawn),
                "refused": self.refused,
                "blocklisted_imeis": sum(len(v) for v in self._blocked.values()),
                "blocklisted_tacs": len(self._blocked_tacs),
                "key_epoch": self.keys.current, "members": len(self.members), "me": self.me,
            }  # fmt: skip

    # -- publishing -----------------------------------------------------------------------

    def publish(self, submit: Submit, credential: dict[str, Any]) -> bytes:
        """Put a signed report on the ledger; return the message id."""
        return submit(INTEL_TAG, intel_payload("report", credential))

    def status_entry(self, report_id: str) -> dict[str, Any]:
        """A revocation entry for a new report of this member (``fraud_report(status_entry=)``)."""
        if self.status is None:
            raise Conflict("this member has no status list for its fraud reports")
        return self.status.entry(report_id, self._now())

    def revoke(self, submit: Submit, signer: Signer, report_id: str, reason: str,
               now: datetime) -> bytes:
        """Set the report's bit in this member's status list and publish the list."""
        with self._lock:
            entry = self._known_or_404(report_id)
            if entry.report.issuer != signer.controller:
                raise PermissionDenied("only the reporter can revoke its report")
            if entry.revoked is not None:
                raise Conflict(f"report {report_id} is already revoked")
        if self.status is None or entry.report.status_list != self.status.list_id:
            raise Conflict(f"report {report_id} is not in this member's status list")
        listed = self.status.revoke(report_id, now)
        _log.info("fraud report %s revoked: %s", report_id, reason)
        return submit(INTEL_TAG, intel_payload("status-list", listed))

    def confirm(self, submit: Submit, signer: Signer, report_id: str, now: datetime) -> bytes:
        with self._lock:
            self._known_or_404(report_id)
        return submit(INTEL_TAG, intel_payload("confirmation",
                                               confirmation(signer, report_id, now)))

    def rotate(self, submit: Submit, signer: Signer, *, now: datetime, add: Iterable[str] = (),
               remove: Iterable[str] = (), epoch: str | None = None) -> tuple[bytes, str]:
        """As the coordinator, put the next key rotation on the ledger: (message id, epoch)."""
        if self.membership is None:
            raise Conflict("this consortium has no coordinator: its keys are set by hand")
        with self._lock:
            doc = self.membership.next_rotation(signer, now=now, add=add, remove=remove,
                                                epoch=epoch)
        return submit(CONSORTIUM_TAG, rotation_payload(doc)), str(doc["epoch"])

    def consortium(self) -> dict[str, Any]:
        """Coordinator, sequence, epochs (with their end of grace) and members; no key."""
        with self._lock:
            if self.membership is None:
                return {"me": self.me, "coordinator": None, "current": self.keys.current,
                        "members": sorted(self.members), "epochs": [
                            {"epoch": e, "expires": None} for e in self.keys.epochs()]}
            return self.membership.state()

    def _known_or_404(self, report_id: str) -> _Entry:
        entry = self._reports.get(report_id)
        if entry is None:
            raise NotFound(f"no fraud report {report_id}")
        return entry


def report_time(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
