"""The normative MUSTs of the W3C Verifiable Credentials Data Model, v2.0 and v1.1.

One validator for issue and verify, for every securing mechanism. Each
violation raises ``VerificationFailed("malformed", ..., rule=...)`` whose
``rule`` names the section it breaks, so the API can answer an RFC 9457
problem that says which rule was broken.

VC Data Model 2.0 (W3C Recommendation, 2025):

- §4.3 Contexts: ``@context`` present; an ordered set whose first item is
  ``https://www.w3.org/ns/credentials/v2``; later items URLs or objects, each
  processable as a JSON-LD context (simtrust never fetches one: URLs must be
  bundled, objects are processed).
- §4.4 Identifiers: ``id``, where present, is one URL.
- §4.5 Types: credentials and presentations have ``type`` including
  ``VerifiableCredential`` / ``VerifiablePresentation``; every value maps to
  a URL through the context; ``credentialStatus``, ``credentialSchema``,
  ``evidence``, ``termsOfUse``, ``refreshService`` and ``proof`` objects
  have a ``type``.
- §4.6 Names and descriptions: a string or language value objects
  (``@value``, optional ``@language`` and ``@direction``, nothing else).
- §4.7 Issuer: a URL or an object whose ``id`` is a URL.
- §4.8 Credential subject: one or more objects, none empty.
- §4.9 Validity period: ``validFrom``/``validUntil`` are XML Schema
  ``dateTimeStamp`` values (time zone required); validFrom ≤ validUntil.
- §4.10 Status, §4.11 Data schemas (``id`` and ``type``), §4.12 Securing
  mechanisms (a verified document carries a proof), §4.13 Verifiable
  presentations (``holder`` optional, a URL or an object with an ``id``;
  ``verifiableCredential`` values are objects; enveloped credentials have a
  ``data:`` URL ``id`` and type ``EnvelopedVerifiableCredential``).
- §5.2 Extensibility: a context may not redefine a protected term, and (one
  rule for every cryptosuite, not only those that expand JSON-LD) every
  property and type must be defined by the active context; a term no context
  defines would be silently dropped by JSON-LD processing.
- §5.3 Integrity of related resources: ``relatedResource`` objects have a
  URL ``id`` (unique) and ``digestSRI`` and/or ``digestMultibase``; a digest
  of a context simtrust bundles is checked against the bundled bytes.
- §5.4 refreshService, §5.5 termsOfUse, §5.6 evidence: ``type`` required.

VC Data Model 1.1 (W3C Recommendation, 2022), for partners' credentials:
first context ``https://www.w3.org/2018/credentials/v1``, ``issuanceDate``
required and ``expirationDate`` optional (``xsd:dateTime``), no
``validFrom``/``validUntil``, ``credentialStatus`` with ``id`` and ``type``
(§4.9), ``credentialSchema`` with ``id`` and ``type`` (§5.4),
``refreshService`` with ``id`` and ``type`` (§5.6).

Term definitions are checked by a small walker over the bundled contexts when
every context is a bundled URL (the common case, microseconds per
credential) and by pyld's JSON-LD expansion otherwise (inline contexts,
embedded ``@context``, JSON-LD keywords beyond ``@id``/``@type``/value
objects). The walker follows JSON-LD 1.1 scoping (type-scoped contexts do
not propagate into nested nodes, property-scoped contexts do, a ``null``
scoped context resets); a property test checks it against pyld.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from simtrust.errors import DecodeError
from simtrust.identity._contexts import (
    BUNDLED_CONTEXTS,
    CREDENTIALS_V1,
    CREDENTIALS_V2,
    EXAMPLES_V2,
    bundled_context,
    context_bytes,
    document_loader,
)
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._multibase import multibase_decode
from simtrust.identity._time import parse_datetime

__all__ = [
    "CREDENTIALS_V1",
    "check_terms",
    "data_model_version",
    "validate_credential_model",
    "validate_enveloped",
    "validate_presentation_model",
]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+")
_BCP47 = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_SRI = re.compile(r"(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})")
_SRI_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
#: Multihash codes Data Integrity §2.6 lists for resource integrity.
_MULTIHASH = {0x12: hashlib.sha256, 0x20: hashlib.sha384, 0x16: hashlib.sha3_256,
              0x15: hashlib.sha3_384}  # fmt: skip
_LANGUAGE_KEYS = frozenset({"@value", "@language", "@direction"})
_PROOF = frozenset({"proof"})
_PROOF_AND_CREDENTIALS = frozenset({"proof", "verifiableCredential"})
_TYPED_V2 = ("credentialStatus", "termsOfUse", "evidence", "refreshService", "credentialSchema")


def _fail(rule: str, detail: str) -> VerificationFailed:
    return VerificationFailed("malformed", detail, rule=rule)


def _is_url(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 8192 and _URL.fullmatch(value) is not None


def _objects(value: object, name: str, rule: str) -> list[dict[str, Any]]:
    items: list[Any] = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, dict) for item in items):
        raise _fail(rule, f"{name} must be an object or a non-empty list of objects")
    return items


def _check_id(node: dict[str, Any], where: str, rule: str) -> None:
    if "id" in node:
        value = node["id"]
        if isinstance(value, list):
            raise _fail(rule, f"{where}.id must not have more than one value")
        if not _is_url(value):
            raise _fail(rule, f"{where}.id must be a URL")


def _type_values(node: dict[str, Any], where: str, rule: str) -> list[str]:
    value = node.get("type")
    types = [value] if isinstance(value, str) else value
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
        raise _fail(rule, f"{where}.type must be a non-empty string or list of strings")
    return types


def _check_language(value: object, where: str) -> None:
    rule = "VCDM2 §4.6 Names and Descriptions"
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _fail(rule, f"{where} must be a string or language value objects")
    for item in items:
        if isinstance(item, str):
            continue
        if not isinstance(item, dict) or not isinstance(item.get("@value"), str):
            raise _fail(rule, f"{where} must be a string or a language value object")
        extra = set(item) - _LANGUAGE_KEYS
        if extra:
            raise _fail(rule, f"{where} language value object has extra members {sorted(extra)}")
        language = item.get("@language")
        if language is not None and (
            not isinstance(language, str) or not _BCP47.fullmatch(language)
        ):
            raise _fail(rule, f"{where}.@language must be a BCP 47 language tag")
        if "@direction" in item and item["@direction"] not in ("ltr", "rtl"):
            raise _fail(rule, f"{where}.@direction must be ltr or rtl")


def _check_names(node: dict[str, Any], where: str) -> None:
    for name in ("name", "description"):
        if name in node:
            _check_language(node[name], f"{where}.{name}")


def _no_nulls(node: dict[str, Any], where: str) -> None:
    # JSON-LD drops null values, so a property set to null is invisible to an
    # RDF-canonicalized signature; no VCDM property takes null.
    if None in node.values():
        nulls = sorted(k for k, v in node.items() if v is None)
        if nulls == ["id"]:
            raise _fail("VCDM2 §4.4 Identifiers", f"{where}.id must be a URL, not null")
        if "issuer" in nulls and where == "credential":
            raise _fail("VCDM2 §4.7 Issuer", "issuer must be a URL or an object, not null")
        raise _fail("VCDM2 §6.1 JSON-LD", f"{where} properties may not be null: {nulls}")


# -- contexts


def data_model_version(document: dict[str, Any]) -> str:
    """``"2.0"`` or ``"1.1"`` from the first context; raise if it is neither."""
    context = document.get("@context")
    if context is None:
        raise _fail("VCDM2 §4.3 Contexts", "@context is required")
    first = context[0] if isinstance(context, list) and context else context
    if first == CREDENTIALS_V2:
        return "2.0"
    if first == CREDENTIALS_V1:
        return "1.1"
    raise _fail(
        "VCDM2 §4.3 Contexts",
        f"@context must be an ordered set whose first item is {CREDENTIALS_V2}",
    )


def _contexts(document: dict[str, Any], version: str) -> list[object]:
    rule = "VCDM2 §4.3 Contexts" if version == "2.0" else "VCDM1.1 §4.1 Contexts"
    context = document["@context"]
    items = context if isinstance(context, list) else [context]
    seen: set[str] = set()
    for entry in items[1:]:
        if isinstance(entry, str):
            if not _is_url(entry):
                raise _fail(rule, f"@context item {entry!r} is not a URL")
            if entry not in BUNDLED_CONTEXTS:
                raise VerificationFailed(
                    "unknown-context",
                    f"context {entry!r} is not bundled; simtrust never fetches contexts",
                    rule=rule,
                )
            if entry in seen or entry == items[0]:
                raise _fail(rule, f"@context lists {entry} twice (it is an ordered set)")
            seen.add(entry)
        elif not isinstance(entry, dict):
            raise _fail(rule, "@context items after the first are URLs or objects")
    return list(items)


# -- credentials


def validate_credential_model(document: object, *, secured: bool = False) -> dict[str, Any]:
    """Check every data-model MUST of a credential (2.0 or 1.1, from its first context).

    ``secured``: the document must carry a proof (§4.12; verifiers).
    """
    if not isinstance(document, dict):
        raise _fail("VCDM2 §4 Basic Concepts", "a credential is a JSON object")
    version = data_model_version(document)
    _contexts(document, version)
    _no_nulls(document, "credential")
    if version == "2.0":
        _credential_v2(document)
    else:
        _credential_v1(document)
    if secured or "proof" in document:
        _check_proofs(document, version)
    check_terms(document, version, skip=_PROOF)
    return document


def _common_credential(document: dict[str, Any], v: str) -> None:
    s = "VCDM2" if v == "2.0" else "VCDM1.1"
    _check_id(document, "credential", f"{s} §4.4 Identifiers")
    if "type" not in document:
        raise _fail(f"{s} §4.5 Types", "a credential must have a type")
    if "VerifiableCredential" not in _type_values(document, "credential", f"{s} §4.5 Types"):
        raise _fail(f"{s} §4.5 Types", "credential type must include VerifiableCredential")
    issuer = document.get("issuer")
    if issuer is None:
        raise _fail(f"{s} §4.7 Issuer", "a credential must have an issuer")
    if isinstance(issuer, dict):
        if not _is_url(issuer.get("id")):
            raise _fail(f"{s} §4.7 Issuer", "an issuer object must have an id that is a URL")
        _no_nulls(issuer, "issuer")
        if v == "2.0":
            _check_names(issuer, "issuer")
    elif not _is_url(issuer):
        raise _fail(f"{s} §4.7 Issuer", "issuer must be a URL or an object with a URL id")
    if "credentialSubject" not in document:
        raise _fail(f"{s} §4.8 Credential Subject", "a credential must have a credentialSubject")
    rule = f"{s} §4.8 Credential Subject"
    for subject in _objects(document["credentialSubject"], "credentialSubject", rule):
        # An object naming only its subject (an ``id``) is accepted, as the W3C
        # conformance suite's valid inputs do; an empty object states nothing.
        if not subject:
            raise _fail(rule, "each credentialSubject must hold at least one claim")
        _check_id(subject, "credentialSubject", rule)
    for name in _TYPED_V2:
        if name in document:
            section = {
                "credentialStatus": "§4.10 Status",
                "credentialSchema": "§4.11 Data Schemas",
                "refreshService": "§5.4 Refreshing",
                "termsOfUse": "§5.5 Terms of Use",
                "evidence": "§5.6 Evidence",
            }[name]
            rule = f"{s} {section}"
            for item in _objects(document[name], name, rule):
                if "type" not in item:
                    raise _fail(rule, f"each {name} object must have a type")
                _type_values(item, name, rule)
                _check_id(item, name, rule)
                needs_id = name == "credentialSchema" or (
                    v == "1.1" and name in ("credentialStatus", "refreshService")
                )
                if needs_id and "id" not in item:
                    raise _fail(rule, f"each {name} object must have an id")


def _credential_v2(document: dict[str, Any]) -> None:
    _common_credential(document, "2.0")
    _check_names(document, "credential")
    rule = "VCDM2 §4.9 Validity Period"
    start = end = None
    if "validFrom" in document:
        start = _datetime(document["validFrom"], "validFrom", rule)
    if "validUntil" in document:
        end = _datetime(document["validUntil"], "validUntil", rule)
    if start is not None and end is not None and start > end:
        raise _fail(rule, "validFrom must not be later than validUntil")
    if "relatedResource" in document:
        _check_related(document["relatedResource"])


def _credential_v1(document: dict[str, Any]) -> None:
    _common_credential(document, "1.1")
    rule = "VCDM1.1 §4.6 Issuance Date"
    if "issuanceDate" not in document:
        raise _fail(rule, "a 1.1 credential must have an issuanceDate")
    _datetime(document["issuanceDate"], "issuanceDate", rule, stamp=False)
    if "expirationDate" in document:
        _datetime(document["expirationDate"], "expirationDate", "VCDM1.1 §4.7 Expiration",
                  stamp=False)  # fmt: skip
    for name in ("validFrom", "validUntil", "relatedResource"):
        if name in document:
            raise _fail("VCDM1.1 §4 Basic Concepts", f"{name} is a VC Data Model 2.0 property")


_XSD_DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def _datetime(value: object, name: str, rule: str, *, stamp: bool = True) -> Any:
    if not stamp and isinstance(value, str) and _XSD_DATETIME.fullmatch(value):
        # xsd:dateTime (1.1) may omit the zone: read it as UTC for comparisons.
        zoned = value if re.search(r"(Z|[+-]\d{2}:\d{2})$", value) else value + "Z"
        value = zoned
    try:
        return parse_datetime(value, name)
    except VerificationFailed as exc:
        kind = "an XML Schema dateTimeStamp" if stamp else "an XML Schema dateTime"
        raise _fail(rule, f"{name} must be {kind} ({exc.detail})") from exc


def _check_proofs(document: dict[str, Any], version: str) -> None:
    s = "VCDM2 §4.12 Securing Mechanisms" if version == "2.0" else "VCDM1.1 §4.7 Proofs"
    if "proof" not in document:
        raise _fail(s, "a verifiable credential or presentation must be secured by a proof")
    for proof in _objects(document["proof"], "proof", s):
        if "type" not in proof:
            raise _fail(s, "each proof must have a type")
        _type_values(proof, "proof", s)


def _check_related(value: object) -> None:
    rule = "VCDM2 §5.3 Integrity of Related Resources"
    seen: set[str] = set()
    for item in _objects(value, "relatedResource", rule):
        resource = item.get("id")
        if not _is_url(resource):
            raise _fail(rule, "each relatedResource must have an id that is a URL")
        assert isinstance(resource, str)
        if resource in seen:
            raise _fail(rule, f"relatedResource {resource} is listed twice")
        seen.add(resource)
        if "digestSRI" not in item and "digestMultibase" not in item:
            raise _fail(rule, f"relatedResource {resource} needs digestSRI or digestMultibase")
        content = _bundled_bytes(resource)
        if "digestSRI" in item:
            _check_sri(item["digestSRI"], resource, content, rule)
        if "digestMultibase" in item:
            _check_multibase_digest(item["digestMultibase"], resource, content, rule)


def _bundled_bytes(url: str) -> bytes | None:
    # Only the contexts bundled byte for byte as W3C publishes them.
    return context_bytes(url) if url in (CREDENTIALS_V2, EXAMPLES_V2) else None


def _check_sri(value: object, resource: str, content: bytes | None, rule: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(rule, f"digestSRI of {resource} must be an SRI hash expression")
    matched = False
    for expression in value.split():
        found = _SRI.fullmatch(expression)
        if found is None:
            raise _fail(rule, f"digestSRI of {resource} is not an SRI hash expression")
        try:
            digest = base64.b64decode(found.group(2), validate=True)
        except ValueError as exc:
            raise _fail(rule, f"digestSRI of {resource} is not base64") from exc
        algorithm = _SRI_HASHES[found.group(1)]
        if len(digest) != algorithm().digest_size:
            raise _fail(rule, f"digestSRI of {resource} has the wrong length")
        if content is not None and algorithm(content).digest() == digest:
            matched = True
    if content is not None and not matched:
        raise _fail(rule, f"digestSRI of {resource} does not match the bundled context")


def _check_multibase_digest(value: object, resource: str, content: bytes | None, rule: str) -> None:

    values = value if isinstance(value, list) else [value]
    matched = False
    for entry in values:
        try:
            raw = multibase_decode(entry) if isinstance(entry, str) else b""
        except DecodeError as exc:
            raise _fail(rule, f"digestMultibase of {resource} does not decode") from exc
        if len(raw) < 3 or raw[0] not in _MULTIHASH:
            raise _fail(rule, f"digestMultibase of {resource} is not a known multihash")
        algorithm = _MULTIHASH[raw[0]]
        if raw[1] != algorithm().digest_size or len(raw) != 2 + raw[1]:
            raise _fail(rule, f"digestMultibase of {resource} has the wrong length")
        if content is not None and algorithm(content).digest() == raw[2:]:
            matched = True
    if content is not None and not matched:
        raise _fail(rule, f"digestMultibase of {resource} does not match the bundled context")


# -- presentations


def validate_presentation_model(document: object, *, secured: bool = True) -> dict[str, Any]:
    """Check a presentation's data-model MUSTs (§4.13); enclosed credentials separately."""
    if not isinstance(document, dict):
        raise _fail("VCDM2 §4.13 Verifiable Presentations", "a presentation is a JSON object")
    version = data_model_version(document)
    _contexts(document, version)
    _no_nulls(document, "presentation")
    s = "VCDM2" if version == "2.0" else "VCDM1.1"
    rule = f"{s} §4.13 Verifiable Presentations" if version == "2.0" else "VCDM1.1 §4.10"
    _check_id(document, "presentation", f"{s} §4.4 Identifiers")
    if "type" not in document:
        raise _fail(f"{s} §4.5 Types", "a presentation must have a type")
    if "VerifiablePresentation" not in _type_values(document, "presentation", f"{s} §4.5 Types"):
        raise _fail(f"{s} §4.5 Types", "presentation type must include VerifiablePresentation")
    holder = document.get("holder")
    if "holder" in document:
        holder_id = holder.get("id") if isinstance(holder, dict) else holder
        if not _is_url(holder_id):
            raise _fail(rule, "holder must be a URL or an object with a URL id")
    if version == "2.0":
        _check_names(document, "presentation")
    for name in ("termsOfUse",):
        if name in document:
            for item in _objects(document[name], name, f"{s} §5.5 Terms of Use"):
                if "type" not in item:
                    raise _fail(f"{s} §5.5 Terms of Use", "each termsOfUse must have a type")
    if "verifiableCredential" in document:
        for item in _objects(document["verifiableCredential"], "verifiableCredential", rule):
            types = item.get("type")
            listed = [types] if isinstance(types, str) else types
            if isinstance(listed, list) and "EnvelopedVerifiableCredential" in listed:
                _check_enveloped(item)
            elif "type" not in item:
                raise _fail(f"{s} §4.5 Types", "an enclosed credential must have a type")
    if secured or "proof" in document:
        _check_proofs(document, version)
    check_terms(document, version, skip=_PROOF_AND_CREDENTIALS)
    return document


def validate_enveloped(item: object) -> str:
    """An ``EnvelopedVerifiableCredential`` object (§4.13.1) → its ``data:`` URL."""
    if not isinstance(item, dict):
        raise _fail("VCDM2 §4.13.1 Enveloped Verifiable Credentials", "not a JSON object")
    _check_enveloped(item)
    return str(item["id"])


def _check_enveloped(item: dict[str, Any]) -> None:
    rule = "VCDM2 §4.13.1 Enveloped Verifiable Credentials"
    if data_model_version(item) != "2.0":
        raise _fail(rule, "an enveloped credential's @context must start with the v2 context")
    if item.get("type") not in ("EnvelopedVerifiableCredential", ["EnvelopedVerifiableCredential"]):
        raise _fail(rule, "an enveloped credential's type is EnvelopedVerifiableCredential")
    identifier = item.get("id")
    if not isinstance(identifier, str) or not identifier.startswith("data:"):
        raise _fail(rule, "an enveloped credential's id is a data: URL")


# -- term definitions (§5.2)


_NULL: dict[str, Any] = {}


@dataclass(frozen=True, eq=False)
class _Term:
    json: bool = False
    scoped: dict[str, Any] | None = None  # a scoped context, or _NULL for "@context": null


@dataclass(eq=False)
class _State:
    terms: dict[str, _Term] = field(default_factory=dict)
    vocab: bool = False
    previous: _State | None = None
    derived: dict[tuple[int, bool], _State] = field(default_factory=dict)


_EMPTY = _State()


def _apply(state: _State, context: dict[str, Any], propagate: bool) -> _State:
    """JSON-LD 1.1 context processing over bundled contexts (memoised: they are constants).

    A non-propagated (type-scoped) context remembers the context before it as
    ``previous``; a node nested below reverts to it (Expansion §5.1.2 step 7).
    """
    key = (id(context), propagate)
    cached = state.derived.get(key)
    if cached is not None:
        return cached
    if context is _NULL:
        result = _State()
    else:
        terms = dict(state.terms)
        vocab = state.vocab
        for name, definition in context.items():
            if name == "@vocab":
                vocab = definition is not None
            elif name.startswith("@"):
                continue
            elif isinstance(definition, dict):
                scoped: dict[str, Any] | None = None
                if "@context" in definition:
                    scoped = definition["@context"] if definition["@context"] is not None else _NULL
                terms[name] = _Term(json=definition.get("@type") == "@json", scoped=scoped)
            else:
                terms[name] = _Term()
        previous = state.previous
        if not propagate and previous is None:
            previous = state
        result = _State(terms=terms, vocab=vocab, previous=previous)
    state.derived[key] = result
    return result


def _document_context(url: str) -> dict[str, Any]:
    context = bundled_context(url)["@context"]
    assert isinstance(context, dict)
    return context


@cache
def _root(urls: tuple[str, ...]) -> _State:
    state = _EMPTY
    for url in urls:
        state = _apply(state, _document_context(url), True)
    return state


class _SlowPath(Exception):
    """The document needs full JSON-LD processing."""


def _defined(state: _State, key: str) -> bool:
    if key.startswith("_:"):
        raise _SlowPath
    return key in state.terms or state.vocab or ":" in key


_CONTEXT_KEY = frozenset({"@context"})
_SKIP_ALWAYS = frozenset({"id", "type", "@id", "@type"})
_NO_SKIP: frozenset[str] = frozenset()


def _walk(node: dict[str, Any], state: _State, skip: frozenset[str] = _NO_SKIP) -> None:
    if "@context" in node and not skip:
        raise _SlowPath
    # Type-scoped contexts are looked up in the context in force before them.
    types = node.get("type", node.get("@type"))
    if types is not None:
        listed = [types] if isinstance(types, str) else types
        if not isinstance(listed, list):
            raise _SlowPath
        base = state
        for value in sorted(t for t in listed if isinstance(t, str)):
            term = base.terms.get(value)
            if term is None and not base.vocab and ":" not in value:
                raise _fail(
                    "VCDM2 §4.5 Types",
                    f"type {value!r} is not defined by the @context and is not a URL",
                )
            if term is not None and term.scoped is not None:
                state = _apply(state, term.scoped, False)
    for key, value in node.items():
        if key in _SKIP_ALWAYS or key in skip:
            continue
        if key[:1] == "@" or not key:
            raise _SlowPath
        term = state.terms.get(key)
        if term is None and not _defined(state, key):
            raise _fail(
                "VCDM2 §5.2 Extensibility",
                f"property {key!r} is not defined by the @context",
            )
        if term is not None and term.json:
            continue
        child = state.previous or state
        if term is not None and term.scoped is not None:
            child = _apply(child, term.scoped, True)
        _walk_value(value, child)


def _walk_value(value: object, state: _State) -> None:
    if isinstance(value, dict):
        if "@value" in value:
            if set(value) - _LANGUAGE_KEYS:
                raise _SlowPath
            return
        _walk(value, state)
    elif isinstance(value, list):
        for item in value:
            _walk_value(item, state)


def check_terms(
    document: dict[str, Any], version: str = "2.0", *, skip: frozenset[str] = frozenset()
) -> None:
    """§5.2: every property and type is defined by the context; no protected term redefined.

    ``skip``: top-level properties left to their own checks (proofs belong to
    their cryptosuite, enclosed credentials are validated one by one).
    """
    context = document.get("@context")
    urls = tuple(context) if isinstance(context, list) else (context,)
    if all(type(u) is str and u in BUNDLED_CONTEXTS for u in urls):
        try:
            _walk(document, _root(urls), skip | _CONTEXT_KEY)
        except _SlowPath:
            pass
        else:
            return
    _expand_check({k: v for k, v in document.items() if k not in skip}, version)


def _expand_check(document: dict[str, Any], version: str) -> None:
    from pyld import jsonld  # noqa: PLC0415 - heavy optional: JSON-LD processor, only for RDF canonicalisation

    rule = "VCDM2 §5.2 Extensibility" if version == "2.0" else "VCDM1.1 §5.3 Extensibility"

    def dropped(term: object) -> None:
        raise _fail(rule, f"property {term!r} is not defined by the @context")

    try:
        expanded = jsonld.JsonLdProcessor(on_property_dropped=dropped).expand(
            document, {"documentLoader": document_loader, "base": None}
        )
    except jsonld.JsonLdError as exc:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, VerificationFailed):
                raise cause from exc
            nested = getattr(cause, "cause", None)
            cause = nested if isinstance(nested, BaseException) else cause.__cause__
        code = str(getattr(exc, "code", "") or exc.type)
        if "protected" in code:
            raise _fail(rule, "a context redefines a protected term") from exc
        text = str(exc)
        if "not bundled" in text or "unknown-context" in text:
            raise VerificationFailed("unknown-context", "a context is not bundled") from exc
        raise _fail("VCDM2 §4.3 Contexts", f"the @context is not processable ({code})") from exc
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise _fail("VCDM2 §4.3 Contexts", "the document is not valid JSON-LD") from exc
    _check_expanded_types(expanded)


def _check_expanded_types(value: object) -> None:
    if isinstance(value, list):
        for item in value:
            _check_expanded_types(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "@type" and "@value" not in value:
                for t in item if isinstance(item, list) else [item]:
                    if not _is_url(t) or str(t).startswith("_:"):
                        raise _fail(
                            "VCDM2 §4.5 Types",
                            f"type {t!r} does not map to a URL through the @context",
                        )
            elif key != "@value":
                _check_expanded_types(item)
