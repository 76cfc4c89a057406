"""VC Data Model 2.0 and 1.1 MUSTs, section by section, on issue and on verify.

Each case is written from the Recommendation's text (W3C VC Data Model v2.0,
§4 Basic Concepts, §5 Advanced Concepts, §7 presentations in §4.13) and names
the section whose MUST it exercises. A forbidden credential is refused by the
issuer and by the verifier with the same rule, under both cryptosuites.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.identity import (
    DidResolver,
    Ed25519Signer,
    VerificationFailed,
    add_proof,
    create_presentation,
    issue_credential,
    verify_credential,
    verify_presentation,
)
from simtrust.identity._contexts import context_bytes
from simtrust.identity._vcterms import _expand_check, check_terms

from .conftest import NOW

V2 = "https://www.w3.org/ns/credentials/v2"
EX = "https://www.w3.org/ns/credentials/examples/v2"
V1 = "https://www.w3.org/2018/credentials/v1"
SIGNER = Ed25519Signer.from_seed(bytes(range(32)))


def base(**changes: Any) -> dict[str, Any]:
    credential: dict[str, Any] = {
        "@context": [V2, EX],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", "ExampleAlumniCredential"],
        "issuer": SIGNER.controller,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School"},
    }
    for key, value in changes.items():
        if value is ...:
            credential.pop(key, None)
        else:
            credential[key] = value
    return credential


def refused(credential: dict[str, Any]) -> VerificationFailed:
    """The issuer refuses; a verifier refuses the same document signed anyway."""
    with pytest.raises(VerificationFailed) as at_issue:
        issue_credential(credential, SIGNER, now=NOW)
    unsigned = {k: v for k, v in credential.items() if k != "proof"}
    forced = add_proof(unsigned, SIGNER, created=NOW)  # sign without the data-model check
    with pytest.raises(VerificationFailed) as at_verify:
        verify_credential(forced, resolver=DidResolver(), now=NOW)
    assert at_issue.value.reason == at_verify.value.reason
    assert at_issue.value.context.get("rule") == at_verify.value.context.get("rule")
    return at_issue.value


def accepted(credential: dict[str, Any], suite: str = "eddsa-jcs-2022") -> dict[str, Any]:
    signed = issue_credential(credential, SIGNER, now=NOW, cryptosuite=suite)
    verify_credential(signed, resolver=DidResolver(), now=NOW)
    return signed


# §4.3 Contexts


@pytest.mark.parametrize(
    "context",
    [
        ...,
        [EX, V2],
        [EX],
        "https://www.w3.org/2018/credentials/v2",
        [V2, 5],
        [V2, EX, EX],
    ],
)
def test_4_3_contexts_refused(context: Any) -> None:
    failure = refused(base(**{"@context": context}))
    assert "§4.3" in failure.context["rule"]


def test_4_3_contexts_urls_and_objects() -> None:
    accepted(
        base(
            **{"@context": [V2, {"alumniOf": "https://schema.org/alumniOf"}]},
            type=["VerifiableCredential"],
        )
    )
    accepted(base(**{"@context": [V2, EX, {"@vocab": "https://example.org/vocab#"}]}))
    with pytest.raises(VerificationFailed) as failure:
        issue_credential(base(**{"@context": [V2, "https://evil.example/ctx"]}), SIGNER, now=NOW)
    assert "unknown-context" == failure.value.reason


# §4.4 Identifiers


@pytest.mark.parametrize(
    "change",
    [
        {"id": ["urn:uuid:1", "urn:uuid:2"]},
        {"id": "not a url"},
        {"id": 1234},
        {"credentialSubject": {"id": ["did:example:a", "did:example:b"], "alumniOf": "x"}},
        {"credentialSubject": {"id": "no-scheme", "alumniOf": "x"}},
    ],
)
def test_4_4_identifiers(change: dict[str, Any]) -> None:
    assert (
        "§4.4" in refused(base(**change)).context["rule"]
        or "§4.8" in refused(base(**change)).context["rule"]
    )


def test_4_4_identifiers_any_url() -> None:
    accepted(base(id="https://example.edu/credentials/3732"))
    accepted(base(id=...))


# §4.5 Types


@pytest.mark.parametrize(
    "change",
    [
        {"type": ...},
        {"type": ["ExampleAlumniCredential"]},
        {"type": []},
        {"type": [5]},
        {"credentialStatus": {"id": "https://example.com/status/1"}},
        {"termsOfUse": {"id": "https://example.com/tou/1"}},
        {"evidence": [{"id": "https://example.com/evidence/1"}]},
        {"refreshService": {"id": "https://example.com/refresh"}},
    ],
)
def test_4_5_types_required(change: dict[str, Any]) -> None:
    refused(base(**change))


def test_4_5_type_must_map_to_a_url_under_every_suite() -> None:
    # Only the base context: ExampleAlumniCredential is defined by nothing.
    undefined = base(**{"@context": [V2]})
    failure = refused(undefined)
    assert "§4.5" in failure.context["rule"]
    mapped = base(
        **{"@context": [V2, {"ExampleAlumniCredential": "https://example.org/Alumni"}]},
        credentialSubject={"id": "did:example:abc", "https://schema.org/alumniOf": "x"},
    )
    for suite in ("eddsa-jcs-2022", "eddsa-rdfc-2022"):
        accepted(mapped, suite)
    not_url = base(**{"@context": [V2, {"ExampleAlumniCredential": "alumni"}]})
    refused(not_url)
    as_url = base(type=["VerifiableCredential", "https://example.org/Alumni"])
    accepted(as_url)


def test_5_2_undefined_property_refused_under_every_suite() -> None:
    credential = base(
        **{"@context": [V2]},
        type=["VerifiableCredential"],
        credentialSubject={"id": "did:example:abc", "alumniOf": "x"},
    )
    with pytest.raises(VerificationFailed) as failure:
        issue_credential(credential, SIGNER, now=NOW, cryptosuite="eddsa-jcs-2022")
    assert "§5.2" in failure.value.context["rule"]
    with pytest.raises(VerificationFailed):
        issue_credential(credential, SIGNER, now=NOW, cryptosuite="eddsa-rdfc-2022")


def test_5_2_protected_terms_may_not_be_redefined() -> None:
    for redefinition in (
        {"type": "https://example.org/myType"},
        {"VerifiableCredential": "https://example.org/VC"},
    ):
        failure = refused(base(**{"@context": [V2, redefinition]}))
        assert "§5.2" in failure.context["rule"]


# §4.6 Names and descriptions


@pytest.mark.parametrize(
    "value",
    [
        "Alumni credential",
        {"@value": "Alumni", "@language": "en"},
        {"@value": "Alumni", "@language": "ar-EG", "@direction": "rtl"},
        [{"@value": "Alumni", "@language": "en"}, {"@value": "Anciens", "@language": "fr"}],
    ],
)
def test_4_6_names_ok(value: Any) -> None:
    accepted(base(name=value, description=value))
    accepted(base(issuer={"id": SIGNER.controller, "name": value, "description": value}))


@pytest.mark.parametrize(
    "value",
    [
        5,
        {"@value": "Alumni", "@language": "en", "extra": 1},
        {"@language": "en"},
        {"@value": "Alumni", "@direction": "up"},
        {"@value": "Alumni", "@language": "not a tag"},
    ],
)
def test_4_6_names_refused(value: Any) -> None:
    assert "§4.6" in refused(base(name=value)).context["rule"]
    assert (
        "§4.6"
        in refused(base(issuer={"id": SIGNER.controller, "description": value})).context["rule"]
    )


# §4.7 Issuer


@pytest.mark.parametrize(
    "issuer", [..., "not-a-url", {"name": "x"}, {"id": "not a url"}, ["did:example:a"]]
)
def test_4_7_issuer(issuer: Any) -> None:
    assert "§4.7" in refused(base(issuer=issuer)).context["rule"]


def test_4_7_issuer_null_is_not_repaired() -> None:
    with pytest.raises(VerificationFailed):
        issue_credential(base(issuer=None), SIGNER, now=NOW)


# §4.8 Credential subject


@pytest.mark.parametrize(
    "subject", [..., {}, [{}, {}], [{"id": "did:example:abc"}, {}], "did:example:abc", []]
)
def test_4_8_credential_subject(subject: Any) -> None:
    assert "§4.8" in refused(base(credentialSubject=subject)).context["rule"]


def test_4_8_several_subjects() -> None:
    accepted(base(credentialSubject=[{"alumniOf": "a"}, {"id": "did:example:b", "alumniOf": "b"}]))
    accepted(base(credentialSubject={"id": "did:example:subject"}))


# §4.9 Validity period


@pytest.mark.parametrize(
    "change",
    [
        {"validFrom": "2026-01-01T00:00:00"},
        {"validFrom": "2026-01-01"},
        {"validUntil": "tomorrow"},
        {"validFrom": "2027-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z"},
    ],
)
def test_4_9_validity_period(change: dict[str, Any]) -> None:
    assert "§4.9" in refused(base(**change)).context["rule"]


def test_4_9_validity_period_forms() -> None:
    accepted(base(validFrom="2026-01-01T00:00:00.123Z"))
    accepted(base(validFrom="2026-01-01T01:00:00+01:00", validUntil="2027-01-01T00:00:00-05:00"))
    signed = issue_credential(base(validUntil="2026-02-01T00:00:00Z"), SIGNER, now=NOW)
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(signed, resolver=DidResolver(), now=NOW)
    assert "expired" == failure.value.reason


# §4.10 Status, §4.11 Data schemas, §5.4-5.6


def test_4_10_status_entries() -> None:
    entry = {
        "id": "https://example.com/credentials/status/3#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": "https://example.com/credentials/status/3",
    }
    signed = issue_credential(base(credentialStatus=entry), SIGNER, now=NOW)
    assert entry == signed["credentialStatus"]
    for bad in (
        {**entry, "id": ["https://a.example/1", "https://a.example/2"]},
        {**entry, "id": "not a url"},
        {k: v for k, v in entry.items() if k != "type"},
    ):
        refused(base(credentialStatus=bad))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "JsonSchema"},
        {"id": "https://example.org/schema.json"},
        {"id": "not a url", "type": "JsonSchema"},
    ],
)
def test_4_11_credential_schema(schema: dict[str, Any]) -> None:
    assert "§4.11" in refused(base(credentialSchema=schema)).context["rule"]


def test_4_11_and_5_x_typed_objects_ok() -> None:
    accepted(
        base(
            credentialSchema=[
                {"id": "https://example.org/a.json", "type": "JsonSchema"},
                {"id": "https://example.org/b.json", "type": "JsonSchema"},
            ],
            termsOfUse={"id": "https://example.org/tou/1", "type": "IssuerPolicy"},
            evidence=[{"type": ["Evidence"], "id": "https://example.org/evidence/1"}],
            refreshService={"type": "ExampleRefresh", "url": "https://example.org/refresh"},
        )
    )


# §4.12 Securing mechanisms


def test_4_12_a_verified_credential_is_secured() -> None:
    with pytest.raises(VerificationFailed) as failure:
        verify_credential(base(), resolver=DidResolver(), now=NOW)
    assert "§4.12" in failure.value.context["rule"]
    signed = accepted(base())
    untyped = copy.deepcopy(signed)
    del untyped["proof"]["type"]
    with pytest.raises(VerificationFailed):
        verify_credential(untyped, resolver=DidResolver(), now=NOW)


def test_4_12_issuer_adds_to_an_existing_proof_set() -> None:
    other = Ed25519Signer.generate()
    first = add_proof(base(), other, created=NOW)
    signed = issue_credential(first, SIGNER, now=NOW)
    assert 2 == len(signed["proof"])


# §5.3 Integrity of related resources


def _sri(url: str) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(context_bytes(url)).digest()).decode()


def _multihash(url: str) -> str:
    digest = hashlib.sha256(context_bytes(url)).digest()
    return "u" + base64.urlsafe_b64encode(bytes([0x12, 32]) + digest).rstrip(b"=").decode()


def test_5_3_related_resources() -> None:
    accepted(
        base(
            relatedResource=[
                {"id": V2, "digestSRI": _sri(V2)},
                {"id": EX, "digestMultibase": _multihash(EX)},
                {"id": "https://example.org/logo.png", "digestSRI": "sha256-" + "A" * 43 + "="},
            ]
        )
    )
    wrong = "sha384-" + base64.b64encode(bytes(48)).decode()
    for related in (
        {"id": V2},
        {"digestSRI": _sri(V2)},
        {"id": V2, "digestSRI": wrong},
        {"id": V2, "digestMultibase": _multihash(EX)},
        {"id": V2, "digestSRI": "md5-abc"},
        [{"id": V2, "digestSRI": _sri(V2)}, {"id": V2, "digestSRI": _sri(V2)}],
    ):
        assert "§5.3" in refused(base(relatedResource=related)).context["rule"]


# §4.13 Verifiable presentations


def _vp(signer: Ed25519Signer, **changes: Any) -> dict[str, Any]:
    vc = issue_credential(base(), SIGNER, now=NOW)
    vp = create_presentation([vc], signer, now=NOW, challenge="c")
    unsigned = {k: v for k, v in vp.items() if k != "proof"}
    for key, value in changes.items():
        if value is ...:
            unsigned.pop(key, None)
        else:
            unsigned[key] = value
    return add_proof(unsigned, signer, created=NOW, proof_purpose="authentication", challenge="c")


def test_4_13_holder_is_optional() -> None:
    holder = Ed25519Signer.generate()
    result = verify_presentation(_vp(holder, holder=...), resolver=DidResolver(), now=NOW)
    assert result.holder is None
    with pytest.raises(VerificationFailed) as failure:
        verify_presentation(
            _vp(holder, holder=...), resolver=DidResolver(), now=NOW, require_holder_binding=True
        )
    assert "holder-binding" == failure.value.reason


@pytest.mark.parametrize(
    "change",
    [
        {"type": ...},
        {"type": ["Presentation"]},
        {"@context": ...},
        {"@context": [EX, V2]},
        {"holder": "not a url"},
        {"holder": {"name": "x"}},
        {"verifiableCredential": ["https://example.org/vc/1"]},
        {"id": ["urn:uuid:1", "urn:uuid:2"]},
    ],
)
def test_4_13_presentation_refused(change: dict[str, Any]) -> None:
    holder = Ed25519Signer.generate()
    with pytest.raises(VerificationFailed) as failure:
        verify_presentation(_vp(holder, **change), resolver=DidResolver(), now=NOW)
    assert failure.value.reason == "malformed"


def test_4_13_enclosed_credential_without_type() -> None:
    holder = Ed25519Signer.generate()
    vc = issue_credential(base(), SIGNER, now=NOW)
    broken = {k: v for k, v in vc.items() if k != "type"}
    vp = create_presentation([broken], holder, now=NOW)
    with pytest.raises(VerificationFailed):
        verify_presentation(vp, resolver=DidResolver(), now=NOW)


def test_4_13_1_enveloped_credentials() -> None:
    holder = Ed25519Signer.generate()
    enveloped = {"@context": V2, "id": "data:application/vc+jwt,eyJ", "type": "Enveloped"}
    with pytest.raises(VerificationFailed):
        verify_presentation(
            _vp(holder, verifiableCredential=[enveloped]), resolver=DidResolver(), now=NOW
        )
    good = {**enveloped, "type": "EnvelopedVerifiableCredential"}
    with pytest.raises(VerificationFailed) as failure:
        verify_presentation(
            _vp(holder, verifiableCredential=[good]), resolver=DidResolver(), now=NOW
        )
    assert "unsupported-envelope" == failure.value.reason


# VC Data Model 1.1


def v1(**changes: Any) -> dict[str, Any]:
    credential = base(**{"@context": [V1, EX]}, validFrom=..., issuanceDate="2026-01-01T00:00:00Z")
    credential.update(changes)
    return credential


def test_v1_1_credentials_issue_and_verify_under_their_rules() -> None:
    with pytest.raises(VerificationFailed) as failure:
        issue_credential(base(**{"@context": [V1, EX]}), SIGNER, now=NOW)
    assert "VCDM1.1" in failure.value.context["rule"]
    signed = issue_credential(v1(expirationDate="2027-01-01T00:00:00Z"), SIGNER, now=NOW)
    verify_credential(signed, resolver=DidResolver(), now=NOW)
    expired = issue_credential(v1(expirationDate="2026-02-01T00:00:00Z"), SIGNER, now=NOW)
    with pytest.raises(VerificationFailed) as late:
        verify_credential(expired, resolver=DidResolver(), now=NOW)
    assert "expired" == late.value.reason
    for bad in (
        v1(issuanceDate=...),
        v1(credentialStatus={"type": "StatusList2021Entry"}),
        v1(validUntil="2027-01-01T00:00:00Z"),
    ):
        cleaned = {k: v for k, v in bad.items() if v is not ...}
        with pytest.raises(VerificationFailed):
            issue_credential(cleaned, SIGNER, now=NOW)


# The fast term walker agrees with full JSON-LD expansion (pyld).

_TERMS = st.sampled_from(
    ["alumniOf", "name", "description", "id", "type", "foo", "https://ex.org/p", "statusPurpose"]
)
_TYPES = st.sampled_from(
    ["VerifiableCredential", "BitstringStatusListEntry", "Foo", "https://ex.org/T"]
)
_values: st.SearchStrategy[Any] = st.recursive(
    st.sampled_from(["x", "https://ex.org/v"]),
    lambda inner: (
        st.dictionaries(_TERMS, inner, max_size=3).map(
            lambda d: {k: v for k, v in d.items() if k not in ("id", "type")}
        )
        | st.lists(inner, max_size=2)
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    contexts=st.sampled_from([[V2], [V2, EX]]),
    types=st.lists(_TYPES, min_size=1, max_size=2),
    subject=st.dictionaries(_TERMS, _values, max_size=3),
    subject_type=st.none() | _TYPES,
)
def test_term_walker_agrees_with_pyld(
    contexts: list[str], types: list[str], subject: dict[str, Any], subject_type: str | None
) -> None:
    node = {k: v for k, v in subject.items() if k not in ("id", "type")}
    if subject_type is not None:
        node["type"] = subject_type
    document = {
        "@context": contexts,
        "type": types,
        "issuer": "did:example:i",
        "credentialSubject": node,
    }

    def verdict(check: Any) -> bool:
        try:
            check()
        except VerificationFailed:
            return False
        return True

    fast = verdict(lambda: check_terms(document))
    full = verdict(lambda: _expand_check(document, "2.0"))
    assert fast == full
