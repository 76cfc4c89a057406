"""VC Data Model §5.2 Extensibility: every property and type is defined by the active context.

A term no context defines would be silently dropped by JSON-LD processing, so
(one rule for every cryptosuite, not only those that expand JSON-LD) a
credential or presentation whose properties or types are not all defined, or
whose context redefines a protected term, is refused with the rule it breaks
(VCDM 2.0 §5.2; VCDM 1.1 §5.3 for partners' credentials).

Term definitions are checked by a small walker over the bundled contexts when
every context is a bundled URL (the common case, microseconds per
credential) and by pyld's JSON-LD expansion otherwise (inline contexts,
embedded ``@context``, JSON-LD keywords beyond ``@id``/``@type``/value
objects). The walker follows JSON-LD 1.1 scoping (type-scoped contexts do
not propagate into nested nodes, property-scoped contexts do, a ``null``
scoped context resets); a property test checks it against pyld.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from simtrust.identity._contexts import BUNDLED_CONTEXTS, bundled_context, document_loader
from simtrust.identity._errors import VerificationFailed

__all__ = ["LANGUAGE_KEYS", "check_terms", "is_url", "malformed"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+")
#: The members of a language value object (VCDM 2.0 §4.6).
LANGUAGE_KEYS = frozenset({"@value", "@language", "@direction"})


def malformed(rule: str, detail: str) -> VerificationFailed:
    """The error of a document that breaks ``rule`` (its section, for the problem answer)."""
    return VerificationFailed("malformed", detail, rule=rule)


def is_url(value: object) -> bool:
    """Whether ``value`` is a URL as the data model means it (a scheme, then no space)."""
    return isinstance(value, str) and len(value) <= 8192 and _URL.fullmatch(value) is not None


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
                raise malformed(
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
            raise malformed(
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
            if set(value) - LANGUAGE_KEYS:
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
        raise malformed(rule, f"property {term!r} is not defined by the @context")

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
            raise malformed(rule, "a context redefines a protected term") from exc
        text = str(exc)
        if "not bundled" in text or "unknown-context" in text:
            raise VerificationFailed("unknown-context", "a context is not bundled") from exc
        raise malformed("VCDM2 §4.3 Contexts", f"the @context is not processable ({code})") from exc
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise malformed("VCDM2 §4.3 Contexts", "the document is not valid JSON-LD") from exc
    _check_expanded_types(expanded)


def _check_expanded_types(value: object) -> None:
    if isinstance(value, list):
        for item in value:
            _check_expanded_types(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "@type" and "@value" not in value:
                for t in item if isinstance(item, list) else [item]:
                    if not is_url(t) or str(t).startswith("_:"):
                        raise malformed(
                            "VCDM2 §4.5 Types",
                            f"type {t!r} does not map to a URL through the @context",
                        )
            elif key != "@value":
                _check_expanded_types(item)
