"""Revocation of shared fraud reports with the W3C Bitstring Status List v1.0.

Every report credential carries one ``credentialStatus`` entry (§2.1,
``BitstringStatusListEntry``, ``statusPurpose`` ``revocation``) in a list of
its reporter, allocated at a random unused index (§6.1 herd privacy; the
list storage is identity's :class:`~simtrust.identity.StatusListRegistry`).
The reporter revokes by setting the entry's bit (§3.1) and re-signing the
list. The signed ``BitstringStatusListCredential`` (§2.2) is served at its URL
like every list of the issuer and also travels on the ledger (intel kind
``status-list``), so every member reads the same list in the same order as the
reports it withdraws.

A receiver keeps the newest list of each reporter (:class:`ReceivedStatusLists`)
and reads a report's bit with identity's :class:`~simtrust.identity.StatusListVerifier`
(§3.2: the list's proof, its issuer equal to the report's issuer, its id equal
to ``statusListCredential``, its purpose, then the bit). A report whose list
has not reached the member yet stands (status pending) until one does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simtrust.errors import NotFound
from simtrust.identity import (
    DidResolver,
    Signer,
    StatusListRegistry,
    StatusListVerifier,
    StatusResult,
    VerificationFailed,
    validate_status_entry,
    verify_credential,
)

__all__ = ["LIST_TYPE", "ReceivedStatusLists", "ReportStatusList", "status_entry_of"]

LIST_TYPE = "BitstringStatusListCredential"
_RULE = "Bitstring Status List §2.1"


class ReportStatusList:
    """The reporter's revocation list of its fraud reports (one list, created on first use)."""

    __slots__ = ("_lock", "_registry", "_signer", "list_id")

    def __init__(self, registry: StatusListRegistry, list_id: str,
                 signer: Callable[[], Signer]) -> None:
        """``list_id`` is the list's public URL (served at ``/credentials/status/…``)."""
        self._registry = registry
        self._signer = signer
        self.list_id = list_id
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ReportStatusList({self.list_id!r})"

    def _ensure(self, now: datetime) -> Signer:
        signer = self._signer()
        with self._lock:
            if (self.list_id, "revocation") not in self._registry.lists(signer.controller):
                self._registry.create(self.list_id, issuer=signer.controller,
                                      purpose="revocation", signer=signer, now=now)
        return signer

    def entry(self, report_id: str, now: datetime) -> dict[str, Any]:
        """A fresh ``credentialStatus`` entry for the report ``report_id``."""
        self._ensure(now)
        return self._registry.allocate(self.list_id, credential_id=report_id)

    def revoke(self, report_id: str, now: datetime) -> dict[str, Any]:
        """Set the report's revocation bit; the re-signed list credential."""
        signer = self._ensure(now)
        for list_id, index, _purpose in self._registry.entries_for(report_id):
            if list_id == self.list_id:
                return self._registry.set_status(list_id, index, True, signer=signer, now=now)
        raise NotFound(f"report {report_id} has no entry in {self.list_id}")

    def published(self) -> dict[str, Any]:
        return self._registry.published(self.list_id)


def status_entry_of(credential: dict[str, Any]) -> tuple[str, int]:
    """(list URL, index) of a report's revocation entry; ``malformed`` when it has none."""
    entry = credential.get("credentialStatus")
    try:
        validate_status_entry(entry)
    except VerificationFailed as exc:
        raise VerificationFailed("malformed", exc.detail, rule=_RULE) from exc
    if (not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry"
            or entry.get("statusPurpose") != "revocation" or entry.get("statusSize", 1) != 1):
        raise VerificationFailed("malformed", "a fraud report carries one one-bit"
                                 " BitstringStatusListEntry of purpose revocation", rule=_RULE)
    return str(entry["statusListCredential"]), int(str(entry["statusListIndex"]))


def entry_for(url: str, index: int) -> dict[str, Any]:
    return {"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
            "statusListIndex": str(index), "statusListCredential": url}  # fmt: skip


class ReceivedStatusLists:
    """The reporters' lists this member holds; a ``StatusChecker`` for report credentials."""

    __slots__ = ("_lists", "_lock", "_resolver", "_verifier")

    def __init__(self, resolver: DidResolver) -> None:
        self._resolver = resolver
        self._lists: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._verifier = StatusListVerifier(self._fetch, resolver)

    def __repr__(self) -> str:
        return f"ReceivedStatusLists(lists={len(self._lists)})"

    def _fetch(self, url: str) -> dict[str, Any]:
        with self._lock:
            found = self._lists.get(url)
        if found is None:
            raise NotFound(f"no status list {url}")
        return found

    def accept(self, doc: object, *, now: datetime,
               reporters: Callable[[str], set[str]]) -> tuple[str, str]:
        """Verify a list credential (§2.2) and keep it if newer; (list URL, issuer).

        ``reporters(url)`` names the issuers of the reports that point at ``url``: a
        list is taken only from the one issuer whose reports use it (no one else can
        squat a reporter's list URL or revoke its reports).
        """
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), list) \
                or LIST_TYPE not in doc["type"]:
            raise VerificationFailed("malformed", f"a status list is a {LIST_TYPE}")
        verified = verify_credential(doc, resolver=self._resolver, now=now)
        subject = doc.get("credentialSubject")
        url = doc.get("id")
        if (not isinstance(subject, dict) or subject.get("statusPurpose") != "revocation"
                or not isinstance(url, str)):
            raise VerificationFailed("malformed", "a report status list is a revocation list"
                                     " with an id")
        owners = reporters(url)
        if owners - {verified.issuer}:
            raise VerificationFailed("not-the-reporter",
                                     f"status list {url} belongs to another reporter")
        if not owners:
            raise VerificationFailed("unknown-report", f"no report uses status list {url}")
        with self._lock:
            held = self._lists.get(url)
            if held is not None:
                if held.get("issuer") != verified.issuer:
                    raise VerificationFailed("not-the-reporter",
                                             f"status list {url} belongs to another issuer")
                if str(held.get("validFrom")) >= str(doc.get("validFrom")):
                    raise VerificationFailed("replayed", f"a newer status list {url} is held")
            self._lists[url] = doc
        return url, verified.issuer

    def issuer_of(self, url: str) -> str | None:
        with self._lock:
            held = self._lists.get(url)
        return None if held is None else str(held.get("issuer"))

    def check(self, entry: dict[str, Any], issuer: str, now: datetime) -> StatusResult:
        """§3.2 when the list is held (``revoked`` raised for a set bit); pending otherwise."""
        url, index = status_entry_of({"credentialStatus": entry})
        if self.issuer_of(url) is None:
            return StatusResult("revocation", url, index, False)
        return self._verifier.check(entry, issuer, now)

    def revoked(self, url: str, index: int, issuer: str, now: datetime) -> bool:
        """Whether the held list ``url`` (signed by ``issuer``) has bit ``index`` set."""
        try:
            self.check(entry_for(url, index), issuer, now)
        except VerificationFailed as exc:
            if exc.reason == "revoked":
                return True
            raise
        return False
