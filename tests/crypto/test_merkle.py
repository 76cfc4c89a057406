"""Merkle trees (RFC 9162 §2.1): roots and audit paths against a literal reading of the RFC."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.crypto.merkle import (
    InclusionProof,
    MerkleProofError,
    empty_root,
    inclusion_proof,
    merkle_root,
    verify_inclusion,
)
from simtrust.errors import InvalidInput


def mth(d: list[bytes]) -> bytes:
    """MTH as RFC 9162 §2.1.1 writes it (recursive, split at the largest power of 2 < n)."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) as RFC 9162 §2.1.3.1 writes it."""
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


LEAVES = [bytes([i]) * (i % 5 + 1) for i in range(40)]


def test_known_values() -> None:
    assert hashlib.sha256(b"").digest() == empty_root() == merkle_root([])
    assert hashlib.sha256(b"\x00abc").digest() == merkle_root([b"abc"])
    # Certificate Transparency's reference tree over the empty leaf.
    assert "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" == (
        merkle_root([b""]).hex()
    )


@pytest.mark.parametrize("n", range(1, 41))
def test_roots_and_every_path_match_the_rfc(n: int) -> None:
    leaves = LEAVES[:n]
    root = merkle_root(leaves)
    assert mth(leaves) == root
    for m in range(n):
        proof = inclusion_proof(leaves, m)
        assert path(m, leaves) == list(proof.path)
        verify_inclusion(leaves[m], proof, root)


def test_wrong_leaf_index_or_root_fails() -> None:
    leaves = LEAVES[:11]
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, 6)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[5], proof, root)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[6], InclusionProof(5, 11, proof.path), root)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[6], InclusionProof(6, 11, proof.path[:-1]), root)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[6], InclusionProof(6, 11, (*proof.path, root)), root)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[6], InclusionProof(11, 11, proof.path), root)


def test_leaf_cannot_pose_as_node() -> None:
    """Domain separation: an interior node's preimage is not a valid leaf."""
    leaves = LEAVES[:2]
    inner = hashlib.sha256(b"\x00" + leaves[0]).digest() + hashlib.sha256(b"\x00" + leaves[1]).digest()
    assert merkle_root([inner]) != merkle_root(leaves)


def test_json_roundtrip_and_malformed() -> None:
    proof = inclusion_proof(LEAVES[:9], 4)
    assert proof == InclusionProof.from_json(proof.to_json())
    with pytest.raises(InvalidInput):
        InclusionProof.from_json({"leaf_index": 1, "tree_size": 2, "audit_path": ["00"]})
    with pytest.raises(InvalidInput):
        InclusionProof.from_json({"leaf_index": "1", "tree_size": 2, "audit_path": []})
    with pytest.raises(InvalidInput):
        inclusion_proof(LEAVES[:3], 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=16), min_size=1, max_size=70), st.data())
def test_property_any_tree_any_leaf(leaves: list[bytes], data: st.DataObject) -> None:
    m = data.draw(st.integers(0, len(leaves) - 1))
    root = merkle_root(leaves)
    assert mth(leaves) == root
    verify_inclusion(leaves[m], inclusion_proof(leaves, m), root)
