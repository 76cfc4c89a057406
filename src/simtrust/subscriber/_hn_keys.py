"""Home network key pairs for SUCI de-concealment (TS 33.501 Annex C.3, C.3.4).

Profile A uses X25519, profile B secp256r1 (public key stored compressed). Each
pair has the home network public key identifier (1..255) the UE puts in the
SUCI. Private keys are sealed with the runtime keyring (AAD names the key id
and profile) and opened only to de-conceal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.domain import Imsi
from simtrust.errors import Conflict, InvalidIdentifier, InvalidInput, NotFound
from simtrust.store import Database
from simtrust.subscriber.auc.suci import PROFILE_A, PROFILE_B, deconceal, parse_suci
from simtrust.subscriber.auc.suci import HomeNetworkKey as SuciKey

__all__ = ["HomeNetworkKey", "HomeNetworkKeys", "public_key_of"]

PROFILES = ("A", "B")
_SCHEMES = {"A": PROFILE_A, "B": PROFILE_B}


def _aad(key_id: int, profile: str) -> bytes:
    return f"simtrust/subscriber/hn-key/{key_id}/{profile}/private".encode()


@dataclass(frozen=True, slots=True)
class HomeNetworkKey:
    """A home network public key (the private half stays sealed in the store)."""

    key_id: int
    profile: str
    public_key: bytes
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "profile": self.profile,
            "public_key": self.public_key.hex(),
            "created_at": self.created_at.isoformat(),
        }


def _scheme(profile: str) -> int:
    if profile not in _SCHEMES:
        raise InvalidInput("profile must be A or B", field="profile")
    return _SCHEMES[profile]


def public_key_of(profile: str, private: bytes) -> bytes:
    """The public key the UE is provisioned with, from the raw 32-octet private key."""
    return SuciKey.from_private_bytes(_scheme(profile), 1, private).public_bytes


def _generate(profile: str) -> bytes:
    if _scheme(profile) == PROFILE_A:
        return x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    value = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return value.to_bytes(32, "big")


class HomeNetworkKeys:
    """Stored home network key pairs, private halves sealed."""

    __slots__ = ("_audit", "_clock", "_db", "_keyring")

    def __init__(
        self, db: Database, keyring: Keyring, audit: AuditLog, clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock

    def __repr__(self) -> str:
        return f"HomeNetworkKeys({self._db!r})"

    def generate(self, key_id: int, profile: str, *, actor: str) -> HomeNetworkKey:
        """Create a key pair; the private key never leaves the store unsealed."""
        return self.install(key_id, profile, _generate(profile), actor=actor)

    def install(
        self, key_id: int, profile: str, private: bytes, *, actor: str
    ) -> HomeNetworkKey:
        """Store an existing private key (e.g. the one already provisioned on USIMs)."""
        if not 1 <= key_id <= 255:
            raise InvalidInput("home network public key id must be 1..255", field="key_id")
        public = public_key_of(profile, private)
        now = self._clock()
        with self._db.transaction():
            if self._db.query_one("SELECT key_id FROM sub_hn_keys WHERE key_id = ?", (key_id,)):
                raise Conflict(f"home network key {key_id} exists", key_id=key_id)
            self._db.execute(
                "INSERT INTO sub_hn_keys (key_id, profile, public_key, private_sealed,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, profile, public, self._keyring.seal(private, _aad(key_id, profile)),
                 now.isoformat()),
            )
            self._audit.append(
                actor=actor, action="hn-key.install", subject=f"hn-key:{key_id}",
                outcome="success", details={"profile": profile, "public_key": public.hex()},
            )
        return HomeNetworkKey(key_id, profile, public, now)

    def get(self, key_id: int) -> HomeNetworkKey:
        row = self._db.query_one(
            "SELECT key_id, profile, public_key, created_at FROM sub_hn_keys WHERE key_id = ?",
            (key_id,),
        )
        if row is None:
            raise NotFound(f"no home network key {key_id}", key_id=key_id)
        return HomeNetworkKey(int(row[0]), str(row[1]), bytes(row[2]),
                              datetime.fromisoformat(str(row[3])))

    def list(self) -> list[HomeNetworkKey]:
        rows = self._db.query("SELECT key_id FROM sub_hn_keys ORDER BY key_id")
        return [self.get(int(r[0])) for r in rows]

    def private_key(self, key_id: int, profile: str) -> SuciKey:
        """Unseal the private key of ``key_id``; NotFound if absent or of another profile."""
        row = self._db.query_one(
            "SELECT profile, private_sealed FROM sub_hn_keys WHERE key_id = ?", (key_id,)
        )
        if row is None or str(row[0]) != profile:
            raise NotFound(f"no profile {profile} home network key {key_id}", key_id=key_id)
        raw = self._keyring.open(bytes(row[1]), _aad(key_id, profile))
        return SuciKey.from_private_bytes(_scheme(profile), key_id, raw)

    def deconceal(self, suci: str) -> Imsi:
        """The IMSI inside an IMSI-type SUCI (the SIDF of TS 33.501 §6.12.5).

        Raises InvalidIdentifier for a malformed SUCI or a NAI-type SUPI,
        UnknownKey for a key this home network does not hold and
        DecryptionFailed when the SUCI's MAC tag does not verify.
        """
        parsed = parse_suci(suci)
        if parsed.supi_type != 0:
            raise InvalidIdentifier("only IMSI-type SUCIs are served", kind="SUCI",
                                    reason="supi-type")

        def lookup(scheme: int, key_id: int) -> SuciKey | None:
            profile = "A" if scheme == PROFILE_A else "B"
            try:
                return self.private_key(key_id, profile)
            except NotFound:
                return None

        supi = deconceal(parsed, lookup)
        return Imsi(supi.removeprefix("imsi-"), len(parsed.mnc))

    def remove(self, key_id: int, *, actor: str) -> None:
        key = self.get(key_id)
        with self._db.transaction():
            self._db.execute("DELETE FROM sub_hn_keys WHERE key_id = ?", (key_id,))
            self._audit.append(
                actor=actor, action="hn-key.remove", subject=f"hn-key:{key_id}",
                outcome="success", details={"profile": key.profile},
            )
