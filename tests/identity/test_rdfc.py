"""RDFC-1.0 and JSON-LD to RDF on the native path (``simtrust.identity._rdfc``).

The W3C RDF Dataset Canonicalization test suite (``vectors/rdfc10``: every
evaluation test, every issued-identifiers map test, the poison-graph negative
test), and pyld's canonicalization of JSON-LD as the independent reference for
generated credentials, including many of one shape (the shape cache's case).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.identity import (
    VerificationFailed,
    canonical_labels,
    canonical_nquads,
    rdfc_canonicalize,
)
from tests.conftest import shared_path
from tests.identity.rdfc_reference import reference_rdfc

HASHES = {None: "SHA-256", "SHA256": "SHA-256", "SHA384": "SHA-384"}


def _suite(shared_dir: Path) -> tuple[Path, list[dict[str, Any]]]:
    folder = shared_dir / "vectors" / "rdfc10"
    manifest = json.loads((folder / "manifest.jsonld").read_text("utf-8"))
    return folder, manifest["entries"]


def _entries(kind: str) -> list[str]:
    """Test ids of one kind, read when collecting (none when the vectors are absent,
    which ``test_suite_is_complete`` then reports through the ``shared_dir`` fixture)."""
    manifest = shared_path() / "vectors" / "rdfc10" / "manifest.jsonld"
    if not manifest.is_file():
        return []
    entries = json.loads(manifest.read_text("utf-8"))["entries"]
    return [e["id"] for e in entries if e["type"] == kind]


def _entry(shared_dir: Path, test_id: str) -> tuple[Path, dict[str, Any]]:
    folder, entries = _suite(shared_dir)
    return folder, next(e for e in entries if e["id"] == test_id)


def _quads(path: Path) -> list[ox.Quad]:
    return list(ox.parse(path.read_bytes(), ox.RdfFormat.N_QUADS))


@pytest.mark.parametrize("test_id", _entries("rdfc:RDFC10EvalTest"))
def test_w3c_evaluation_test(shared_dir: Path, test_id: str) -> None:
    folder, entry = _entry(shared_dir, test_id)
    expected = (folder / entry["result"]).read_text("utf-8")
    hash_algorithm = HASHES[entry.get("hashAlgorithm")]
    assert expected == canonical_nquads(_quads(folder / entry["action"]), hash_algorithm).decode()


@pytest.mark.parametrize("test_id", _entries("rdfc:RDFC10MapTest"))
def test_w3c_issued_identifiers_map(shared_dir: Path, test_id: str) -> None:
    folder, entry = _entry(shared_dir, test_id)
    expected = json.loads((folder / entry["result"]).read_text("utf-8"))
    hash_algorithm = HASHES[entry.get("hashAlgorithm")]
    assert expected == canonical_labels(_quads(folder / entry["action"]), hash_algorithm)


@pytest.mark.parametrize("test_id", _entries("rdfc:RDFC10NegativeEvalTest"))
def test_w3c_poison_graph_is_refused_by_the_work_limit(shared_dir: Path, test_id: str) -> None:
    folder, entry = _entry(shared_dir, test_id)
    with pytest.raises(VerificationFailed) as failure:
        canonical_nquads(_quads(folder / entry["action"]))
    assert "malformed" == failure.value.reason
    assert "poisoning" in failure.value.detail


def test_suite_is_complete(shared_dir: Path) -> None:
    """Every entry of the manifest is one of the three kinds run above."""
    _, entries = _suite(shared_dir)
    kinds = {"rdfc:RDFC10EvalTest", "rdfc:RDFC10MapTest", "rdfc:RDFC10NegativeEvalTest"}
    assert set() == {e["type"] for e in entries} - kinds
    assert 86 == len(entries)


def test_unknown_hash_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="MD5"):
        canonical_nquads([], "MD5")


# --- JSON-LD: the native path equals pyld's ---------------------------------

CONTEXTS = [
    "https://www.w3.org/ns/credentials/v2",
    "https://www.w3.org/ns/credentials/examples/v2",
]

# Control characters are left out: pyld escapes them as URDNA2015 did, while
# RDFC-1.0 (and this implementation) writes \\uXXXX, as W3C test060 checks above.
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x2FF),
    max_size=12,
).filter(lambda s: not s.startswith("@"))
_iri = st.builds(
    lambda scheme, rest: f"{scheme}:{rest}",
    st.sampled_from(["did:example", "urn:uuid", "https://vc.example/x", "did:key"]),
    st.text(alphabet="abcdefghij0123456789-._~", min_size=1, max_size=10),
)
_value = st.one_of(_text, _iri, st.integers(-5, 5), st.booleans())


@st.composite
def credentials(draw: st.DrawFn) -> dict[str, Any]:
    subject: dict[str, Any] = {"id": draw(_iri)}
    for name in draw(
        st.lists(st.sampled_from(["alumniOf", "name", "description"]), max_size=3, unique=True)
    ):
        subject[name] = draw(_value)
    credential: dict[str, Any] = {
        "@context": CONTEXTS,
        "type": [
            "VerifiableCredential",
            draw(st.sampled_from(["ExampleDegreeCredential", "ExampleAlumniCredential"])),
        ],
        "issuer": draw(st.one_of(_iri, st.builds(lambda i: {"id": i}, _iri))),
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": draw(st.one_of(st.just(subject), st.just([subject, subject]))),
    }
    if draw(st.booleans()):
        credential["id"] = draw(_iri)
    if draw(st.booleans()):
        credential["name"] = draw(
            st.one_of(_text, st.builds(lambda v: {"@value": v, "@language": "en"}, _text))
        )
    return credential


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(credentials())
def test_native_path_equals_pyld(credential: dict[str, Any]) -> None:
    try:
        expected: bytes | str = reference_rdfc(credential)
    except VerificationFailed as exc:
        expected = exc.reason
    try:
        actual: bytes | str = rdfc_canonicalize(credential)
    except VerificationFailed as exc:
        actual = exc.reason
    assert expected == actual


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_iri, _text, _iri), min_size=2, max_size=6))
def test_one_shape_many_values_equals_pyld(values: list[tuple[str, str, str]]) -> None:
    """Documents of one shape (the shape cache's hits) canonicalize as pyld does."""
    base = {
        "@context": CONTEXTS,
        "id": "urn:uuid:0",
        "type": ["VerifiableCredential", "ExampleAlumniCredential"],
        "issuer": "https://vc.example/issuers/1",
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:1", "alumniOf": "x"},
    }
    for credential_id, school, subject in values:
        document = copy.deepcopy(base)
        document["id"] = credential_id
        document["credentialSubject"] = {"id": subject, "alumniOf": school}
        assert reference_rdfc(document) == rdfc_canonicalize(document)


def test_a_term_used_as_iri_and_as_value_is_not_substituted() -> None:
    """A value that is a defined term (or uses one as a prefix) keeps its expansion."""
    context = {"ex": "https://example.org/vocab#", "knows": {"@id": "ex:knows", "@type": "@id"}}
    for friend in ("ex:alice", "https://example.org/bob", "ex:carol"):
        document = {"@context": context, "@id": "https://example.org/me", "knows": friend}
        assert reference_rdfc(document) == rdfc_canonicalize(document)


def test_vocab_typed_values_follow_the_vocabulary() -> None:
    """proofPurpose is @vocab-typed: a term expands, an absolute IRI stays."""
    for purpose in ("assertionMethod", "authentication", "https://example.org/purpose"):
        document = {
            "@context": CONTEXTS[:1],
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-rdfc-2022",
            "created": "2026-01-01T00:00:00Z",
            "verificationMethod": "did:key:z6Mk#z6Mk",
            "proofPurpose": purpose,
        }
        assert reference_rdfc(document) == rdfc_canonicalize(document)


def test_embedded_contexts_are_honoured() -> None:
    document = {
        "@context": CONTEXTS[:1],
        "type": "VerifiableCredential",
        "issuer": "did:example:1",
        "credentialSubject": {
            "@context": {"shoeSize": "https://example.org/shoeSize"},
            "id": "did:example:2",
            "shoeSize": "42",
        },
    }
    assert reference_rdfc(document) == rdfc_canonicalize(document)
    assert b"https://example.org/shoeSize" in rdfc_canonicalize(document)


def test_undefined_terms_and_types_are_refused() -> None:
    for document in (
        {"@context": {"name": "https://schema.org/name"}, "name": "a", "undefined": "b"},
        {"@context": {"name": "https://schema.org/name"}, "@type": "Undefined", "name": "a"},
    ):
        with pytest.raises(VerificationFailed) as failure:
            rdfc_canonicalize(document)
        assert "malformed" == failure.value.reason
        assert "not defined" in failure.value.detail


@settings(max_examples=80, deadline=None)
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_arbitrary_json_never_escapes_as_another_error(body: Any) -> None:
    document = {"@context": CONTEXTS, "credentialSubject": body, "type": "VerifiableCredential"}
    reason = "none"
    try:
        rdfc_canonicalize(document)
    except VerificationFailed as exc:
        reason = exc.reason
    assert reason in ("none", "malformed", "unknown-context")
