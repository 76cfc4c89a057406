"""Merkle trees with inclusion proofs, as in RFC 9162 §2.1 (Certificate Transparency v2).

Leaves hash as ``SHA-256(0x00 ‖ data)`` and interior nodes as
``SHA-256(0x01 ‖ left ‖ right)`` (RFC 9162 §2.1.1, the domain separation that
stops a leaf from posing as a node); the tree over ``n`` leaves splits at the
largest power of two below ``n``. Inclusion proofs follow §2.1.3.1 (generation)
and §2.1.3.2 (verification). Written by hand: the algorithm is a few lines and
no maintained library offers it with these exact hashing rules.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from simtrust.errors import InvalidInput, InvalidSignature

__all__ = [
    "HASH_SIZE",
    "InclusionProof",
    "MerkleProofError",
    "empty_root",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "verify_inclusion",
]

HASH_SIZE = 32
_LEAF = b"\x00"
_NODE = b"\x01"


class MerkleProofError(InvalidSignature):
    """An inclusion proof does not lead to the expected root."""

    code = "merkle-proof-invalid"
    title = "Merkle proof invalid"


def leaf_hash(data: bytes) -> bytes:
    """``MTH({d}) = SHA-256(0x00 ‖ d)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE + left + right).digest()


def empty_root() -> bytes:
    """The hash of an empty tree: ``SHA-256()`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"").digest()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    # Iterative level-by-level build gives the same tree as the recursive
    # split at the largest power of two: an odd node is carried up unpaired.
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the tree over the raw leaf data ``leaves``."""
    if not leaves:
        return empty_root()
    return _root_of_hashes([leaf_hash(d) for d in leaves])


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Audit path of leaf ``index`` in a tree of ``tree_size`` leaves (RFC 9162 §2.1.3)."""

    index: int
    tree_size: int
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "leaf_index": self.index,
            "tree_size": self.tree_size,
            "audit_path": [h.hex() for h in self.path],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> InclusionProof:
        try:
            index = data["leaf_index"]
            size = data["tree_size"]
            path = data["audit_path"]
            if not isinstance(index, int) or not isinstance(size, int):
                raise InvalidInput("leaf_index and tree_size must be integers")
            if not isinstance(path, list):
                raise InvalidInput("audit_path must be a list")
            hashes = tuple(bytes.fromhex(str(h)) for h in path)
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"malformed inclusion proof: {exc}") from exc
        if any(len(h) != HASH_SIZE for h in hashes):
            raise InvalidInput("audit path hashes must be 32 bytes")
        return cls(index=index, tree_size=size, path=hashes)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> InclusionProof:
    """The audit path ``PATH(m, D[n])`` of RFC 9162 §2.1.3.1 for leaf ``index``."""
    n = len(leaves)
    if not 0 <= index < n:
        raise InvalidInput(f"leaf index {index} outside tree of size {n}")
    hashes = [leaf_hash(d) for d in leaves]
    path: list[bytes] = []
    lo, hi, m = 0, n, index
    # Walk down from the root, collecting the sibling subtree root at each
    # split; the path is listed leaf-upwards, so reverse at the end.
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if m - lo < k:
            path.append(_root_of_hashes(hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_root_of_hashes(hashes[lo : lo + k]))
            lo = lo + k
    path.reverse()
    return InclusionProof(index=index, tree_size=n, path=tuple(path))


def root_from_inclusion_proof(leaf_data: bytes, proof: InclusionProof) -> bytes:
    """Recompute the root from a leaf and its audit path (RFC 9162 §2.1.3.2)."""
    if not 0 <= proof.index < proof.tree_size:
        raise MerkleProofError("leaf index outside the tree")
    fn, sn = proof.index, proof.tree_size - 1
    r = leaf_hash(leaf_data)
    for p in proof.path:
        if sn == 0:
            raise MerkleProofError("audit path longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError("audit path shorter than the tree is deep")
    return r


def verify_inclusion(leaf_data: bytes, proof: InclusionProof, root: bytes) -> None:
    """Raise :class:`MerkleProofError` unless ``leaf_data`` is in the tree with ``root``."""
    if not hmac.compare_digest(root_from_inclusion_proof(leaf_data, proof), root):
        raise MerkleProofError("inclusion proof does not lead to the anchored root")
