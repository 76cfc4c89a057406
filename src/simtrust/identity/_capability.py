"""Capability credentials and the policy enforcement point in front of a dataset.

A capability is a W3C verifiable credential (VCDM 2.0, type
``CapabilityCredential``) whose subject is the grantee's DID and whose
claims name a ``resource`` (a URL or URN of a dataset: a stream channel, a
flow-record export, an HTTP dataset), the ``actions`` it allows, its
``caveats`` (``ratePerMinute``; the time window is the credential's
``validFrom``/``validUntil``) and how many more times it may be delegated
(``delegationDepth``). Delegation follows the ZCAP-LD idea of a chain: the
grantee issues a new capability to a third party whose ``parentCapability``
is the parent's ``id``, never wider than the parent (same or narrower
resource, fewer actions, shorter window, lower rate, smaller depth). The
chain is presented root first, either as a bearer token (base64url JSON
array of credentials) or inside a holder-signed presentation whose
``domain`` is the enforcement point. Revocation goes through each
credential's Bitstring Status List entry.

The enforcement point caches a verified chain under the SHA-256 of the
presented token: a cached decision is reused while the issuer's status lists
are unchanged in this process (``status_epoch``) and at most ``max_age``
(status lists changed by another process are seen within that time); the
time window, action, resource and rate are checked on every access.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from simtrust.errors import DecodeError, SimtrustError
from simtrust.identity._contexts import CREDENTIALS_V2, SIMTRUST_V1
from simtrust.identity._credentials import (
    VerifiedCredential,
    VerifiedPresentation,
    issue_credential,
)
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import b64url_decode, b64url_encode
from simtrust.identity._time import format_datetime, parse_datetime

__all__ = [
    "CAPABILITY_TYPE",
    "CapabilityEnforcer",
    "Decision",
    "capability_token",
    "grant_capability",
]

CAPABILITY_TYPE = "CapabilityCredential"
_MAX_CHAIN = 8
_MAX_TOKEN = 256 * 1024
_CACHE_LIMIT = 100_000


def grant_capability(
    signer: Signer,
    *,
    grantee: str,
    resource: str,
    actions: list[str],
    now: datetime,
    valid_until: datetime | None = None,
    delegation_depth: int = 0,
    rate_per_minute: int | None = None,
    parent: dict[str, Any] | None = None,
    credential_status: dict[str, Any] | None = None,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """Issue (or, with ``parent``, delegate) a capability; the signer is the granter."""
    if not actions or not all(isinstance(a, str) and a for a in actions):
        raise DecodeError("a capability names at least one action")
    if delegation_depth < 0 or delegation_depth > _MAX_CHAIN:
        raise DecodeError(f"delegationDepth is 0..{_MAX_CHAIN}")
    subject: dict[str, Any] = {
        "id": grantee,
        "resource": resource,
        "actions": sorted(set(actions)),
        "delegationDepth": delegation_depth,
    }
    if rate_per_minute is not None:
        subject["ratePerMinute"] = rate_per_minute
    if parent is not None:
        subject["parentCapability"] = parent["id"]
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2, SIMTRUST_V1],
        "id": credential_id or f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", CAPABILITY_TYPE],
        "issuer": signer.controller,
        "validFrom": format_datetime(now),
        "credentialSubject": subject,
    }
    if valid_until is not None:
        credential["validUntil"] = format_datetime(valid_until)
    if credential_status is not None:
        credential["credentialStatus"] = credential_status
    if parent is not None:
        # Refuse a delegation the enforcement point would refuse anyway.
        _link(_Link.of(parent), _Link.of(credential))
    return issue_credential(credential, signer, now=now)


def capability_token(chain: list[dict[str, Any]] | dict[str, Any]) -> str:
    """A chain (root first) or a presentation of it, as base64url JSON."""
    return b64url_encode(json.dumps(chain, separators=(",", ":")).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class _Link:
    id: str
    issuer: str
    holder: str
    resource: str
    actions: frozenset[str]
    depth: int
    rate: int | None
    parent: str | None
    not_before: float
    not_after: float | None

    @classmethod
    def of(cls, credential: dict[str, Any]) -> _Link:
        types = credential.get("type", [])
        if not isinstance(types, list) or CAPABILITY_TYPE not in types:
            raise VerificationFailed("malformed", f"a capability has type {CAPABILITY_TYPE}")
        subject = credential.get("credentialSubject")
        if not isinstance(subject, dict):
            raise VerificationFailed("malformed", "a capability has one credentialSubject")
        holder, resource = subject.get("id"), subject.get("resource")
        actions, depth = subject.get("actions"), subject.get("delegationDepth", 0)
        rate, parent = subject.get("ratePerMinute"), subject.get("parentCapability")
        issuer = credential.get("issuer")
        issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
        if not (
            isinstance(holder, str) and isinstance(resource, str) and resource
            and isinstance(actions, list) and actions
            and all(isinstance(a, str) for a in actions)
            and type(depth) is int and 0 <= depth <= _MAX_CHAIN
            and (rate is None or (type(rate) is int and rate > 0))
            and (parent is None or isinstance(parent, str))
            and isinstance(credential.get("id"), str) and isinstance(issuer, str)
        ):  # fmt: skip
            raise VerificationFailed(
                "malformed",
                "a capability subject has id, resource, actions, delegationDepth 0..8 and"
                " optionally ratePerMinute > 0 and parentCapability",
            )
        until = credential.get("validUntil")
        return cls(
            id=str(credential["id"]),
            issuer=issuer,
            holder=holder,
            resource=resource,
            actions=frozenset(actions),
            depth=depth,
            rate=rate,
            parent=parent,
            not_before=parse_datetime(credential.get("validFrom"), "validFrom").timestamp()
            if "validFrom" in credential
            else 0.0,
            not_after=None if until is None else parse_datetime(until, "validUntil").timestamp(),
        )


def _covers(parent: str, child: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


def _link(parent: _Link, child: _Link) -> None:
    """The delegation rules: a child is never wider than its parent."""
    rule = "capability delegation"
    if child.parent != parent.id:
        raise VerificationFailed("malformed", "parentCapability must name the previous link",
                                 rule=rule)  # fmt: skip
    if child.issuer != parent.holder:
        raise VerificationFailed("key-not-authorized",
                                 "a capability is delegated by its holder", rule=rule)  # fmt: skip
    if parent.depth < 1 or child.depth > parent.depth - 1:
        raise VerificationFailed("malformed", "the delegation depth is exhausted", rule=rule)
    if not _covers(parent.resource, child.resource):
        raise VerificationFailed("malformed", "a delegation cannot widen the resource", rule=rule)
    if not child.actions <= parent.actions:
        raise VerificationFailed("malformed", "a delegation cannot add actions", rule=rule)
    if parent.rate is not None and (child.rate is None or child.rate > parent.rate):
        raise VerificationFailed("malformed", "a delegation cannot raise the rate", rule=rule)
    if parent.not_after is not None and (
        child.not_after is None or child.not_after > parent.not_after
    ):
        raise VerificationFailed("malformed", "a delegation cannot outlive its parent", rule=rule)


@dataclass(frozen=True, slots=True)
class Decision:
    """One access decision of the enforcement point (what the audit log records)."""

    permit: bool
    reason: str
    holder: str | None = None
    root: str | None = None
    chain: tuple[str, ...] = ()
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": "permit" if self.permit else "deny",
            "reason": self.reason,
            "holder": self.holder,
            "root": self.root,
            "chain": list(self.chain),
            "cached": self.cached,
        }


@dataclass(frozen=True, slots=True)
class _Grant:
    holder: str
    root: str
    chain: tuple[str, ...]
    resource: str
    actions: frozenset[str]
    not_before: float
    not_after: float | None
    rate: int | None
    epoch: int
    verified: float


class CapabilityEnforcer:
    """The policy enforcement point: verify (or reuse) a chain, then decide one access."""

    __slots__ = (
        "_buckets", "_cache", "_epoch", "_lock", "_max_age", "_owner_of",
        "_verify_credential", "_verify_presentation", "audience",
    )  # fmt: skip

    def __init__(
        self,
        *,
        audience: str,
        owner_of: Callable[[str], str | None],
        verify_credential: Callable[[dict[str, Any]], VerifiedCredential],
        verify_presentation: Callable[[dict[str, Any], str], VerifiedPresentation],
        status_epoch: Callable[[], int],
        max_age: float = 30.0,
    ) -> None:
        self.audience = audience
        self._owner_of = owner_of
        self._verify_credential = verify_credential
        self._verify_presentation = verify_presentation
        self._epoch = status_epoch
        self._max_age = max_age
        self._cache: dict[str, _Grant] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, token: str, *, action: str, resource: str, now: datetime) -> Decision:
        """Decide whether ``token``'s holder may do ``action`` on ``resource`` now."""
        if not isinstance(token, str) or len(token) > _MAX_TOKEN:
            return Decision(False, "malformed: a capability token is a string up to 256 KiB")
        key = hashlib.sha256(token.encode("ascii", "replace")).hexdigest()
        epoch = self._epoch()
        grant = self._cache.get(key)
        cached = grant is not None and grant.epoch == epoch and (
            time.monotonic() - grant.verified < self._max_age
        )
        if not cached:
            try:
                grant = self._verify(token, epoch)
            except VerificationFailed as exc:
                self._cache.pop(key, None)
                return Decision(False, f"{exc.reason}: {exc.detail}")
            except SimtrustError as exc:  # e.g. an unresolvable DID, a malformed identifier
                self._cache.pop(key, None)
                return Decision(False, f"unresolvable: {exc.detail}")
            with self._lock:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = grant
        assert grant is not None
        stamp = now.timestamp()

        def deny(reason: str) -> Decision:
            return Decision(False, reason, grant.holder, grant.root, grant.chain, cached)

        if action not in grant.actions:
            return deny(f"action {action!r} is not granted")
        if not _covers(grant.resource, resource):
            return deny(f"resource {resource!r} is not granted")
        if stamp < grant.not_before:
            return deny("not-yet-valid: the capability's window has not begun")
        if grant.not_after is not None and stamp > grant.not_after:
            return deny("expired: the capability's window has ended")
        if grant.rate is not None and not self._take(grant, stamp):
            return deny(f"rate: more than {grant.rate} accesses per minute")
        return Decision(True, "granted", grant.holder, grant.root, grant.chain, cached)

    def _take(self, grant: _Grant, stamp: float) -> bool:
        assert grant.rate is not None
        rate = grant.rate / 60.0
        with self._lock:
            tokens, last = self._buckets.get((grant.root, grant.holder), (float(grant.rate), stamp))
            tokens = min(float(grant.rate), tokens + max(0.0, stamp - last) * rate)
            if tokens < 1.0:
                self._buckets[(grant.root, grant.holder)] = (tokens, stamp)
                return False
            self._buckets[(grant.root, grant.holder)] = (tokens - 1.0, stamp)
            return True

    def _verify(self, token: str, epoch: int) -> _Grant:
        try:
            document = json.loads(b64url_decode(token).decode("utf-8"))
        except (DecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise VerificationFailed("malformed", "a capability token is base64url JSON") from exc
        holder_signed: str | None = None
        if isinstance(document, dict):
            # A holder-signed presentation of the chain (domain = this enforcement point).
            presented = self._verify_presentation(document, self.audience)
            holder_signed = presented.holder
            chain = [vc.credential for vc in presented.credentials]
        elif isinstance(document, list):
            chain = document
            for credential in chain:
                if not isinstance(credential, dict):
                    raise VerificationFailed("malformed", "a capability chain holds credentials")
                self._verify_credential(credential)
        else:
            raise VerificationFailed("malformed", "a capability token is a chain or presentation")
        if not chain or len(chain) > _MAX_CHAIN:
            raise VerificationFailed("malformed", f"a capability chain has 1..{_MAX_CHAIN} links")
        links = [_Link.of(credential) for credential in chain]
        owner = self._owner_of(links[0].resource)
        if owner is None or links[0].issuer != owner:
            raise VerificationFailed(
                "key-not-authorized", "the root capability is not issued by the resource's owner"
            )
        for parent, child in pairwise(links):
            _link(parent, child)
        leaf = links[-1]
        if holder_signed is not None and holder_signed != leaf.holder:
            raise VerificationFailed("holder-binding", "the presentation is not by the holder")
        rates = [link.rate for link in links if link.rate is not None]
        ends = [link.not_after for link in links if link.not_after is not None]
        return _Grant(
            holder=leaf.holder,
            root=links[0].id,
            chain=tuple(link.id for link in links),
            resource=leaf.resource,
            actions=leaf.actions,
            not_before=max(link.not_before for link in links),
            not_after=min(ends) if ends else None,
            rate=min(rates) if rates else None,
            epoch=epoch,
            verified=time.monotonic(),
        )
