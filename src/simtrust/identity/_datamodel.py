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

Term definitions (§5.2) are checked by :func:`._vcterms.check_terms`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from simtrust.errors import DecodeError
from simtrust.identity._contexts import (
    BUNDLED_CONTEXTS,
    CREDENTIALS_V1,
    CREDENTIALS_V2,
    EXAMPLES_V2,
    context_bytes,
)
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._multibase import multibase_decode
from simtrust.identity._time import parse_datetime
from simtrust.identity._vcterms import LANGUAGE_KEYS as _LANGUAGE_KEYS
from simtrust.identity._vcterms import check_terms
from simtrust.identity._vcterms import is_url as _is_url
from simtrust.identity._vcterms import malformed as _fail

__all__ = [
    "CREDENTIALS_V1",
    "check_terms",
    "data_model_version",
    "validate_credential_model",
    "validate_enveloped",
    "validate_presentation_model",
]

_BCP47 = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_SRI = re.compile(r"(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})")
_SRI_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
#: Multihash codes Data Integrity §2.6 lists for resource integrity.
_MULTIHASH = {0x12: hashlib.sha256, 0x20: hashlib.sha384, 0x16: hashlib.sha3_256,
              0x15: hashlib.sha3_384}  # fmt: skip
_PROOF = frozenset({"proof"})
_PROOF_AND_CREDENTIALS = frozenset({"proof", "verifiableCredential"})
_TYPED_V2 = ("credentialStatus", "termsOfUse", "evidence", "refreshService", "credentialSchema")


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
