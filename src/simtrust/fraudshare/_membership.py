"""One member's consortium membership: the coordinator's rotations, accepted or refused.

A member trusts one coordinator DID (its consortium settings name it) and
applies that coordinator's :mod:`rotation <simtrust.fraudshare._rotation>`
messages in ledger order. A rotation is accepted only if its proof verifies
and is the coordinator's, it was signed within :data:`MAX_SKEW` of its ledger
time, its sequence is above the last accepted one (an equal one is a replay,
a lower one a rollback), its epoch name was never held, and it seals a key to
this member's own key-agreement key that opens. Anything else is refused with
a reason and changes nothing. An accepted rotation makes its epoch current
and its member list the consortium; each epoch it supersedes stays usable
for matching reports made under it for the grace period from the rotation's
ledger time, then is dropped. Everything is decided on ledger times, so a
member that rebuilds from the ledger reaches the same keys
(docs/fraud.md "Consortium membership and key rotation",
docs/decisions/fraud-consortium-keys.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import Conflict, InvalidInput, PermissionDenied, Rejected
from simtrust.fraudshare._intel import MAX_SKEW, ConsortiumKey, ConsortiumKeys, proof_created
from simtrust.fraudshare._rotation import (
    KeyAgreementKey,
    Rotation,
    check_rotation,
    key_agreement_of,
    rotation,
)
from simtrust.identity import (
    DidResolver,
    IdentityService,
    Signer,
    VerificationFailed,
    key_agreement_patch,
    sealed_x25519_key,
    update_operation,
)

__all__ = ["DEFAULT_GRACE", "ConsortiumMembership", "platform_key_agreement"]

_ELEMENT, _LABEL, _FRAGMENT = "fraud-consortium", "key-agreement-1", "key-agreement-1"
#: How long an epoch a rotation superseded still matches reports made under it.
DEFAULT_GRACE = timedelta(days=30)


class ConsortiumMembership:
    """The epochs, members and rotation sequence this member holds (no locking: the
    caller, :class:`~simtrust.fraudshare.FraudIntelligence`, applies under its lock).

    ``members`` and ``keys`` are the hand-configured start (before any rotation):
    they are kept until the first accepted rotation supersedes them.
    """

    def __init__(
        self,
        *,
        key: KeyAgreementKey,
        coordinator: str,
        resolver: DidResolver,
        grace: timedelta = DEFAULT_GRACE,
        members: Iterable[str] = (),
        keys: ConsortiumKeys | None = None,
    ) -> None:
        if grace < timedelta(0):
            raise ValueError("the grace period is not negative")
        self.key = key
        self.me = key.controller
        self.coordinator = coordinator
        self.resolver = resolver
        self.grace = grace
        self.sequence = 0
        self.members = frozenset(members) | {self.me, coordinator}
        self._epochs: dict[str, ConsortiumKey] = {}
        self._expires: dict[str, datetime] = {}
        self._retired: set[str] = set()
        self.current: str | None = None
        if keys is not None:
            self._epochs = {e: keys.get(e) for e in keys.epochs()}
            self.current = keys.current or None
        self.accepted: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return (f"ConsortiumMembership(me={self.me!r}, coordinator={self.coordinator!r},"
                f" sequence={self.sequence}, epochs={sorted(self._epochs)})")

    def bootstrap(self, members: Iterable[str], keys: ConsortiumKeys) -> None:
        """Hand-configured members and keys (the settings changed); ignored once a rotation
        was accepted, since from then on the coordinator's rotations are the membership."""
        if self.sequence == 0:
            self.members = frozenset(members) | {self.me, self.coordinator}
            self._epochs = {e: keys.get(e) for e in keys.epochs()}
            self.current = keys.current or None

    def accept(self, doc: object, at: datetime) -> Rotation:
        """Apply one rotation document that reached the ledger at ``at``, or raise
        :class:`VerificationFailed` with the reason (and change nothing)."""
        found = check_rotation(doc, resolver=self.resolver, now=at)
        if found.coordinator != self.coordinator:
            raise VerificationFailed("not-the-coordinator",
                                     f"{found.coordinator} is not this consortium's coordinator")
        assert isinstance(doc, dict)
        if abs(proof_created(doc) - at) > MAX_SKEW:
            raise VerificationFailed("stale", "signed more than 24 h from when it reached the"
                                     " ledger (a replayed or held-back rotation)")
        if found.sequence == self.sequence:
            raise VerificationFailed("replayed", f"rotation {found.sequence} is already applied")
        if found.sequence < self.sequence:
            raise VerificationFailed("rolled-back", f"rotation {found.sequence} is older than"
                                     f" the applied rotation {self.sequence}")
        if found.epoch in self._epochs or found.epoch in self._retired:
            raise VerificationFailed("epoch-reused", f"epoch {found.epoch} was held before")
        secret = found.open(self.key)
        new = ConsortiumKey(found.epoch, secret)
        until = at + self.grace
        for epoch in self._epochs:
            self._expires.setdefault(epoch, until)
        self._epochs[found.epoch] = new
        self.current = found.epoch
        self.sequence = found.sequence
        self.members = found.members
        self.accepted = [*self.accepted, {**found.to_json(), "at": _iso(at)}][-100:]
        return found

    def next_rotation(self, signer: Signer, *, now: datetime, add: Iterable[str] = (),
                      remove: Iterable[str] = (), epoch: str | None = None) -> dict[str, Any]:
        """The coordinator's next rotation: this membership plus ``add`` minus ``remove``.

        Joining and leaving are the coordinator's decision (the consortium's
        agreement is made outside simtrust); the rotation carries it out.
        """
        if signer.controller != self.coordinator:
            raise PermissionDenied(f"only the coordinator {self.coordinator} rotates the key")
        removed = set(remove)
        if self.coordinator in removed:
            raise InvalidInput("the coordinator cannot remove itself", field="remove")
        sequence = self.sequence + 1
        epoch = epoch or f"{now:%Y%m%d}-r{sequence}"
        if epoch in self._epochs or epoch in self._retired:
            raise Conflict(f"epoch {epoch} was held before: name a new one")
        members = (self.members | set(add)) - removed
        return rotation(signer, self.resolver, epoch=epoch, sequence=sequence, members=members,
                        now=now)

    def expire(self, at: datetime) -> bool:
        """Drop superseded epochs whose grace period is over at ``at``; True if any went."""
        gone = [e for e, until in self._expires.items() if until <= at and e != self.current]
        for epoch in gone:
            del self._epochs[epoch]
            del self._expires[epoch]
            self._retired.add(epoch)
        return bool(gone)

    def keys(self) -> ConsortiumKeys | None:
        """The epochs held now (None before any key, hand-configured or rotated)."""
        if self.current is None:
            return None
        return ConsortiumKeys(self._epochs.values(), self.current)

    def state(self) -> dict[str, Any]:
        """What this member holds, without any key."""
        return {
            "me": self.me, "coordinator": self.coordinator, "sequence": self.sequence,
            "current": self.current, "members": sorted(self.members),
            "key_agreement": self.key.verification_method,
            "grace_days": self.grace / timedelta(days=1),
            "epochs": [{"epoch": e, "expires": _iso(self._expires[e])
                        if e in self._expires else None} for e in sorted(self._epochs)],
            "retired": sorted(self._retired), "rotations": list(self.accepted),
        }  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def platform_key_agreement(identity: IdentityService) -> KeyAgreementKey:
    """The platform issuer DID's X25519 key-agreement key, sealed under the keyring.

    Made on first use and added to the did:simtrust document under
    ``keyAgreement`` (``#key-agreement-1``) by a signed DID update on the ledger,
    so a coordinator finds it by resolving this operator's DID.
    """
    private = sealed_x25519_key(identity.db, identity.keyring, _ELEMENT, _LABEL)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signer = identity.issuer()
    did = signer.controller
    vm = f"{did}#{_FRAGMENT}"
    try:
        listed = key_agreement_of(identity.resolver, did)
    except InvalidInput:
        listed = None
    if listed != (vm, public):
        operation = update_operation(
            signer, did=did, previous_version=identity.registry.current_version(did),
            patches=[key_agreement_patch(did, _FRAGMENT, public)], now=identity.now())
        outcome = identity.submit_operation(operation)
        if outcome.outcome != "applied":
            raise Rejected(outcome.reason or "identity",
                           "the key-agreement key was not added to this operator's DID")
    return KeyAgreementKey(private, vm)
