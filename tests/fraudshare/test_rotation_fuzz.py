"""Fuzzing the rotation decoder: untrusted bytes and documents fail only with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError
from simtrust.fraudshare import (
    KeyAgreementKey,
    check_rotation,
    decode_rotation_payload,
    key_agreement_of,
    rotation,
    rotation_payload,
)
from simtrust.identity import DidResolver, Ed25519Signer, VerificationFailed

NOW = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
COORDINATOR = Ed25519Signer.from_seed(b"\x61" * 32)
MEMBER = Ed25519Signer.from_seed(b"\x62" * 32)
RESOLVER = DidResolver()
GOOD = rotation(COORDINATOR, RESOLVER, epoch="fuzz-1", sequence=1,
                members=[MEMBER.controller], now=NOW)
MEMBER_KEY = KeyAgreementKey.from_ed25519_seed(
    b"\x62" * 32, key_agreement_of(RESOLVER, MEMBER.controller)[0])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20)


def _decode(data: bytes) -> None:
    try:
        doc = decode_rotation_payload(data)
    except DecodeError:
        return
    with pytest.raises(VerificationFailed) as failed:
        check_rotation(doc, resolver=RESOLVER, now=NOW)
    assert failed.value.reason
    assert failed.value.detail


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_fail_only_as_malformed(data: bytes) -> None:
    _decode(data)


@settings(max_examples=120, deadline=None)
@given(json_values)
def test_random_json_documents_fail_only_with_a_reason(doc: Any) -> None:
    _decode(json.dumps({"v": 1, "kind": "rotation", "rotation": doc}).encode())


_FIELDS = sorted(GOOD)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_FIELDS), json_values, st.booleans())
def test_a_changed_or_missing_member_of_a_good_rotation_is_refused(
        name: str, value: Any, drop: bool) -> None:
    doc = dict(GOOD)
    if drop:
        del doc[name]
    elif doc[name] == value:
        return
    else:
        doc[name] = value
    with pytest.raises(VerificationFailed) as failed:
        check_rotation(json.loads(rotation_payload(doc))["rotation"], resolver=RESOLVER, now=NOW)
    assert failed.value.reason


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_a_flipped_byte_of_a_sealed_key_is_refused(at: int, flip: int) -> None:
    entry = GOOD["keys"][[e["member"] for e in GOOD["keys"]].index(MEMBER.controller)]
    doc = decode_rotation_payload(rotation_payload(GOOD))
    found = check_rotation(doc, resolver=RESOLVER, now=NOW)
    vm, sealed = found.sealed[MEMBER.controller]
    assert entry["keyAgreement"] == vm
    i = at % len(sealed)
    bad = sealed[:i] + bytes([sealed[i] ^ (flip or 1)]) + sealed[i + 1:]
    moved = type(found)(found.coordinator, found.epoch, found.sequence, found.members,
                        {**found.sealed, MEMBER.controller: (vm, bad)})
    with pytest.raises(VerificationFailed) as failed:
        moved.open(MEMBER_KEY)
    assert failed.value.reason == "undecryptable"
