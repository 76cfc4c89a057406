"""The consortium genesis file and node key files (``docs/network.md``, "Genesis").

A genesis file is one JSON document every validator holds: the network name,
the committee of epoch 0 (validator id, Ed25519 block-signing key, transport
node key, weight, P2P address), the initial supply allocation and the
network-wide ledger and consensus parameters. Its id is BLAKE2b-256 of its
RFC 8785 canonical form, so two operators compare one hash. A node key file
holds one validator's two Ed25519 seeds (block signing, transport) and is
written with mode 0600; seeds never appear in reprs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import InvalidInput
from simtrust.ledger import Ed25519Signer, Genesis, LedgerConfig, Output, network_id_from_name
from simtrust.ledger.consensus import Committee

__all__ = [
    "GENESIS_FORMAT",
    "KEY_FORMAT",
    "ConsensusParams",
    "NetworkGenesis",
    "NodeKeys",
    "ValidatorEntry",
    "apply_peer_overrides",
    "free_ports",
    "generate_local_network",
]

GENESIS_FORMAT = "simtrust-genesis/1"
KEY_FORMAT = "simtrust-node-key/1"
DEFAULT_SUPPLY = 10**15


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} is not hex") from exc
    if len(raw) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return raw


def _int(value: Any, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{what} must be an integer in {low}..{high}")
    return value


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` with a literal IPv4 host (the P2P address of a validator)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise InvalidInput(f"address {text!r} is not host:port")
    try:
        socket.inet_aton(host)
        number = int(port)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"address {text!r} needs an IPv4 host and a port") from exc
    if not 1 <= number <= 65535:
        raise InvalidInput(f"port of {text!r} out of range")
    return host, number


@dataclass(frozen=True, slots=True)
class ValidatorEntry:
    """One committee member as genesis pins it."""

    id: int
    name: str
    public_key: bytes
    node_key: bytes
    weight: int
    p2p: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "public_key": self.public_key.hex(),
            "node_key": self.node_key.hex(),
            "weight": self.weight,
            "p2p": self.p2p,
        }

    @classmethod
    def from_json(cls, data: Any, index: int) -> ValidatorEntry:
        if not isinstance(data, dict):
            raise InvalidInput(f"validator {index} must be an object")
        entry = cls(
            id=_int(data.get("id"), "validator id", 0, 1023),
            name=str(data.get("name", f"validator-{index}")),
            public_key=_hex32(data.get("public_key"), "validator public_key"),
            node_key=_hex32(data.get("node_key"), "validator node_key"),
            weight=_int(data.get("weight"), "validator weight", 1, 2**48),
            p2p=str(data.get("p2p", "")),
        )
        if entry.id != index:
            raise InvalidInput("validator ids must be 0..n-1 in file order")
        parse_address(entry.p2p)
        return entry


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """Network-wide timing of block production (``docs/network.md``, "Parameters")."""

    leader_timeout_ms: int = 1000
    min_round_interval_ms: int = 50
    max_ids_per_block: int = 8192
    #: Rounds of DAG a core keeps below its last committed leader (0: keep all).
    gc_depth: int = 1000
    #: Commits between two checkpoints the validators sign ("Snapshot sync").
    checkpoint_interval: int = 50

    def to_json(self) -> dict[str, int]:
        return {
            "leader_timeout_ms": self.leader_timeout_ms,
            "min_round_interval_ms": self.min_round_interval_ms,
            "max_ids_per_block": self.max_ids_per_block,
            "gc_depth": self.gc_depth,
            "checkpoint_interval": self.checkpoint_interval,
        }

    @classmethod
    def from_json(cls, data: Any) -> ConsensusParams:
        data = data or {}
        if not isinstance(data, dict):
            raise InvalidInput("consensus parameters must be an object")
        if 0 < data.get("gc_depth", 1000) < 20:  # type checked below; 1..19 is too shallow
            raise InvalidInput("gc_depth must be 0 (keep every round) or at least 20")
        return cls(
            leader_timeout_ms=_int(data.get("leader_timeout_ms", 1000), "leader_timeout_ms",
                                   10, 60_000),
            min_round_interval_ms=_int(data.get("min_round_interval_ms", 50),
                                       "min_round_interval_ms", 0, 10_000),
            max_ids_per_block=_int(data.get("max_ids_per_block", 8192), "max_ids_per_block",
                                   1, 8192),
            gc_depth=_int(data.get("gc_depth", 1000), "gc_depth", 0, 1_000_000),
            checkpoint_interval=_int(data.get("checkpoint_interval", 50), "checkpoint_interval",
                                     1, 1_000_000),
        )


@dataclass(frozen=True, slots=True)
class NetworkGenesis:
    """A parsed genesis file. ``id`` is the hash every operator compares."""

    network: str
    time_ms: int
    validators: tuple[ValidatorEntry, ...]
    allocations: tuple[tuple[bytes, int], ...]
    quota_rate: float = 5000.0
    quota_burst: int = 20000
    consensus: ConsensusParams = field(default_factory=ConsensusParams)
    #: Keys that may create token foundries (empty: any key holding base units).
    token_issuers: tuple[bytes, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body = {
            "format": GENESIS_FORMAT,
            "network": self.network,
            "time_ms": self.time_ms,
            "epoch": 0,
            "validators": [v.to_json() for v in self.validators],
            "allocations": [{"owner": o.hex(), "amount": a} for o, a in self.allocations],
            "ledger": {"quota_rate": self.quota_rate, "quota_burst": self.quota_burst},
            "consensus": self.consensus.to_json(),
        }
        if self.token_issuers:  # absent when empty, so older files keep their id
            body["token_issuers"] = [key.hex() for key in self.token_issuers]
        return body

    @property
    def id(self) -> bytes:
        return hashlib.blake2b(rfc8785.dumps(self.to_json()), digest_size=32).digest()

    @classmethod
    def from_json(cls, data: Any) -> NetworkGenesis:
        if not isinstance(data, dict) or data.get("format") != GENESIS_FORMAT:
            raise InvalidInput(f"not a genesis file (format must be {GENESIS_FORMAT!r})")
        network = data.get("network")
        if not isinstance(network, str) or not 1 <= len(network) <= 64:
            raise InvalidInput("network must be a name of 1..64 characters")
        if data.get("epoch", 0) != 0:
            raise InvalidInput("a genesis file describes epoch 0")
        raw_validators = data.get("validators")
        if not isinstance(raw_validators, list) or not raw_validators:
            raise InvalidInput("validators must be a non-empty list")
        validators = tuple(ValidatorEntry.from_json(v, i) for i, v in enumerate(raw_validators))
        for attr in ("public_key", "node_key", "p2p"):
            values = [getattr(v, attr) for v in validators]
            if len(set(values)) != len(values):
                raise InvalidInput(f"duplicate validator {attr}")
        raw_alloc = data.get("allocations")
        if not isinstance(raw_alloc, list) or not raw_alloc:
            raise InvalidInput("allocations must be a non-empty list")
        allocations = []
        for item in raw_alloc:
            if not isinstance(item, dict):
                raise InvalidInput("an allocation is an object")
            allocations.append((_hex32(item.get("owner"), "allocation owner"),
                                _int(item.get("amount"), "allocation amount", 1, 2**63 - 1)))
        ledger = data.get("ledger") or {}
        if not isinstance(ledger, dict):
            raise InvalidInput("ledger parameters must be an object")
        rate = ledger.get("quota_rate", 5000.0)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
            raise InvalidInput("quota_rate must be a positive number")
        raw_issuers = data.get("token_issuers", [])
        if not isinstance(raw_issuers, list):
            raise InvalidInput("token_issuers must be a list of public keys (hex)")
        issuers = tuple(_hex32(k, "token issuer") for k in raw_issuers)
        if len(set(issuers)) != len(issuers) or len(issuers) > 1024:
            raise InvalidInput("token_issuers must be distinct (at most 1,024)")
        genesis = cls(
            network=network,
            time_ms=_int(data.get("time_ms"), "time_ms", 0, 2**63 - 1),
            validators=validators,
            allocations=tuple(allocations),
            quota_rate=float(rate),
            quota_burst=_int(ledger.get("quota_burst", 20000), "quota_burst", 1, 10**9),
            consensus=ConsensusParams.from_json(data.get("consensus")),
            token_issuers=issuers,
        )
        genesis.committee()  # weights, key uniqueness
        return genesis

    @classmethod
    def load(cls, path: Path) -> NetworkGenesis:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read genesis file {path}: {exc}") from exc
        return cls.from_json(data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def committee(self) -> Committee:
        return Committee.from_keys(0, [(v.public_key, v.weight) for v in self.validators])

    def ledger_genesis(self) -> Genesis:
        """The ledger's supply allocation (``docs/ledger.md``, "Genesis")."""
        outputs = tuple(Output(owner, amount) for owner, amount in self.allocations)
        return Genesis(
            network_id_from_name(self.network), self.time_ms, outputs, self.token_issuers
        )

    def ledger_config(self, **overrides: Any) -> LedgerConfig:
        return LedgerConfig(
            network=self.network,
            quota_rate=self.quota_rate,
            quota_burst=self.quota_burst,
            **overrides,
        )

    def validator_by_node_key(self, node_key: bytes) -> ValidatorEntry | None:
        for v in self.validators:
            if v.node_key == node_key:
                return v
        return None


def apply_peer_overrides(genesis: NetworkGenesis, peers: list[str]) -> NetworkGenesis:
    """Replace P2P addresses: each override is ``ID=HOST:PORT`` (the keys stay pinned)."""
    if not peers:
        return genesis
    entries = list(genesis.validators)
    for item in peers:
        ident, sep, address = item.partition("=")
        if not sep or not (ident.isascii() and ident.isdigit()) or int(ident) >= len(entries):
            raise InvalidInput(f"peer override {item!r} is not ID=HOST:PORT for a validator id")
        parse_address(address)
        entry = entries[int(ident)]
        entries[int(ident)] = dataclasses.replace(entry, p2p=address)
    return dataclasses.replace(genesis, validators=tuple(entries))


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class NodeKeys:
    """One validator's secrets: the block-signing seed and the transport (node) seed."""

    __slots__ = ("_node_seed", "_validator_seed", "node_key", "public_key", "validator_id")

    def __init__(self, validator_id: int, validator_seed: bytes, node_seed: bytes) -> None:
        if len(validator_seed) != 32 or len(node_seed) != 32:
            raise InvalidInput("seeds are 32 bytes")
        self.validator_id = validator_id
        self._validator_seed = validator_seed
        self._node_seed = node_seed
        self.public_key = _raw_public(self.block_key())
        self.node_key = _raw_public(self.transport_key())

    @classmethod
    def generate(cls, validator_id: int) -> NodeKeys:
        return cls(validator_id, secrets.token_bytes(32), secrets.token_bytes(32))

    def block_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._validator_seed)

    def transport_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._node_seed)

    def ledger_signer(self) -> Ed25519Signer:
        """The validator key as the ledger node's own signer (anchors it issues)."""
        return Ed25519Signer(self._validator_seed)

    def __repr__(self) -> str:
        return f"NodeKeys(validator={self.validator_id}, node_key={self.node_key.hex()[:16]}…)"

    def save(self, path: Path) -> None:
        data = {
            "format": KEY_FORMAT,
            "validator_id": self.validator_id,
            "validator_seed": self._validator_seed.hex(),
            "node_seed": self._node_seed.hex(),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data) + "\n")

    @classmethod
    def load(cls, path: Path) -> NodeKeys:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read node key file {path}") from exc
        if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
            raise InvalidInput(f"not a node key file (format must be {KEY_FORMAT!r})")
        return cls(
            _int(data.get("validator_id"), "validator_id", 0, 1023),
            _hex32(data.get("validator_seed"), "validator_seed"),
            _hex32(data.get("node_seed"), "node_seed"),
        )

    def check_against(self, genesis: NetworkGenesis) -> ValidatorEntry:
        """The genesis entry of these keys; raise unless genesis pins exactly them."""
        if self.validator_id >= len(genesis.validators):
            raise InvalidInput("the key file names a validator genesis does not have")
        entry = genesis.validators[self.validator_id]
        if entry.public_key != self.public_key or entry.node_key != self.node_key:
            raise InvalidInput("the key file does not match the keys genesis pins")
        return entry


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` right now (held open together while chosen)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def generate_local_network(
    count: int,
    directory: Path,
    *,
    network: str | None = None,
    host: str = "127.0.0.1",
    ports: list[int] | None = None,
    funded: list[bytes] | None = None,
    consensus: ConsensusParams | None = None,
    token_issuers: list[bytes] | None = None,
) -> tuple[NetworkGenesis, list[Path]]:
    """Write ``genesis.json`` and ``node-<i>/key.json`` for ``count`` validators on ``host``.

    The supply goes to ``funded`` owners in equal parts (default: the
    validators' own keys); ``token_issuers`` are the keys that may create
    token foundries (default: any). Returns the genesis and the key file paths.
    """
    if not 1 <= count <= 64:
        raise InvalidInput("a local network has 1..64 validators")
    directory.mkdir(parents=True, exist_ok=True)
    ports = ports or free_ports(count, host)
    if len(ports) != count:
        raise InvalidInput("one port per validator")
    keys = [NodeKeys.generate(i) for i in range(count)]
    owners = funded or [k.public_key for k in keys]
    share = DEFAULT_SUPPLY // len(owners)
    genesis = NetworkGenesis(
        network=network or f"simtrust-testnet-{secrets.token_hex(4)}",
        time_ms=int(time.time() * 1000),
        validators=tuple(
            ValidatorEntry(i, f"validator-{i}", k.public_key, k.node_key, 1, f"{host}:{p}")
            for i, (k, p) in enumerate(zip(keys, ports, strict=True))
        ),
        allocations=tuple((o, share) for o in owners),
        consensus=consensus or ConsensusParams(),
        token_issuers=tuple(token_issuers or ()),
    )
    genesis.save(directory / "genesis.json")
    paths = []
    for k in keys:
        node_dir = directory / f"node-{k.validator_id}"
        node_dir.mkdir(exist_ok=True)
        path = node_dir / "key.json"
        k.save(path)
        paths.append(path)
    return genesis, paths
