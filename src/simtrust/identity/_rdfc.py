"""RDF Dataset Canonicalization (W3C RDFC-1.0) and JSON-LD to RDF at native speed.

Two libraries do the heavy lifting (docs/decisions/identity-rdfc-native.md):

- **JSON-LD to RDF** (JSON-LD 1.1 Processing Algorithms §8): pyoxigraph's
  Rust JSON-LD parser, fed the bundled contexts inline (it has no document
  loader in Python, and simtrust never fetches contexts anyway).
- **Canonicalization** (RDFC-1.0 §4.4): pyoxigraph's RDFC-1.0 when every blank
  node's first-degree quads (§4.6) are distinct, which is the case for
  credentials and proof configurations; when two or more blank nodes look
  alike, the N-degree search (§4.8) can blow up on poison graphs and
  pyoxigraph offers no bound, so those datasets go to pyld's RDFC-1.0
  (URDNA2015) under a work limit: at most :data:`MAX_NDEGREE_CALLS` calls of
  Hash N-Degree Quads (§4.8, the guard the Recommendation's §4.4 "Dataset
  Poisoning" asks for), beyond which the dataset is refused.

Written here by hand, and why:

- The canonical N-Quads terms (RDFC-1.0 §4.4.3 step 7, the canonical form of
  RDF 1.1 N-Quads: ``ECHAR`` for ``\\b \\t \\n \\f \\r \\" \\\\``, ``\\u`` and
  four hex digits for the other controls), a dozen lines, for the datasets
  pyld labels and for the shape cache's text; pyoxigraph's own serializer
  writes the same form (W3C test060) but unsorted, so its lines are sorted.
- A **shape cache** for JSON-LD to RDF: pyoxigraph processes the large VC 2.0
  context again for every document (about 0.5 ms), while the RDF a document
  yields depends on its values only in known places. For one *shape* (the
  document with every plain string value replaced by a marker, contexts,
  keys, types, keyword values, numbers and booleans kept) the parser runs once
  with unique sentinel values; a later document of that shape is mapped by
  putting its strings where the sentinels came out. A string is put back only
  where that is provably what the parser would do: where its sentinel came
  out exactly once as a literal's lexical form (the literal keeps its
  datatype or language), or exactly once as an IRI and the value is an
  absolute IRI whose scheme is no term of the document's contexts (so no
  compact-IRI or vocabulary expansion could apply). Any other place keeps its
  value verbatim in the cache key. The pyld path stays as the independent
  reference in the tests (hypothesis compares both on generated credentials).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import pyoxigraph as ox
from pyld.canon import URDNA2015

from simtrust.identity._contexts import bundled_context
from simtrust.identity._errors import VerificationFailed

__all__ = [
    "MAX_NDEGREE_CALLS",
    "canonical_labels",
    "canonical_nquads",
    "jsonld_to_quads",
    "rdfc_canonicalize",
]

#: Calls of Hash N-Degree Quads (RDFC-1.0 §4.8) one canonicalization may make.
#: The most any test of the W3C RDFC-1.0 suite needs is 468 (test044–046); the
#: 10-node clique of its poison test (test074) is refused after about 0.8 s.
MAX_NDEGREE_CALLS = 1_000

_SENTINEL = "urn:x-simtrust-sentinel:"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
_CACHE_SIZE = 512

# --- canonical N-Quads ------------------------------------------------------

_ECHAR = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
_ESCAPE = {chr(c): f"\\u{c:04X}" for c in (*range(0x20), 0x7F)} | _ECHAR
_NEEDS_ESCAPE = re.compile('[\\x00-\\x1f\\x7f"\\\\]')


def _literal(value: str) -> str:
    if _NEEDS_ESCAPE.search(value) is None:
        return f'"{value}"'
    return '"' + "".join(_ESCAPE.get(ch, ch) for ch in value) + '"'


def _term(term: Any, labels: dict[str, str]) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<{term.value}>"
    if isinstance(term, ox.BlankNode):
        return f"_:{labels[term.value]}"
    if isinstance(term, ox.Literal):
        text = _literal(term.value)
        if term.language is not None:
            return f"{text}@{term.language}"
        datatype = term.datatype.value
        return text if datatype == _XSD_STRING else f"{text}^^<{datatype}>"
    raise VerificationFailed("malformed", "RDF-star terms are not canonicalizable")


def _line(quad: ox.Quad, labels: dict[str, str]) -> str:
    graph = quad.graph_name
    tail = "" if isinstance(graph, ox.DefaultGraph) else " " + _term(graph, labels)
    return (
        f"{_term(quad.subject, labels)} {_term(quad.predicate, labels)} "
        f"{_term(quad.object, labels)}{tail} .\n"
    )


def _blank_nodes(quad: ox.Quad) -> Iterator[str]:
    for term in (quad.subject, quad.object, quad.graph_name):
        if isinstance(term, ox.BlankNode):
            yield term.value


def _first_degree_distinct(quads: list[ox.Quad]) -> bool:
    """True when no two blank nodes have the same first-degree quads (RDFC-1.0 §4.6)."""
    mentions: dict[str, list[ox.Quad]] = {}
    for quad in quads:
        for label in _blank_nodes(quad):
            mentions.setdefault(label, []).append(quad)
    if len(mentions) < 2:
        return True
    seen: set[tuple[str, ...]] = set()
    for label, own in mentions.items():
        marks = {other: "_:z" for q in own for other in _blank_nodes(q)}
        marks[label] = "_:a"
        shape = tuple(sorted(_line(q, marks) for q in own))
        if shape in seen:
            return False
        seen.add(shape)
    return True


_HASHES = {"SHA-256": hashlib.sha256, "SHA-384": hashlib.sha384}
_OXIGRAPH = {
    "SHA-256": ox.CanonicalizationAlgorithm.RDFC_1_0_SHA_256,
    "SHA-384": ox.CanonicalizationAlgorithm.RDFC_1_0_SHA_384,
}


class _BoundedUrdna2015(URDNA2015):  # type: ignore[misc]  # pyld ships no type hints
    """pyld's RDFC-1.0 (URDNA2015) with a bound on Hash N-Degree Quads calls."""

    def __init__(self, hash_algorithm: str) -> None:
        super().__init__()
        self.calls = 0
        self._hash = _HASHES[hash_algorithm]

    def create_hash(self) -> Any:
        return self._hash()

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
        self.calls += 1
        if self.calls > MAX_NDEGREE_CALLS:
            raise VerificationFailed(
                "malformed",
                f"canonicalization needs more than {MAX_NDEGREE_CALLS} N-degree hashes "
                "(RDFC-1.0 §4.4 dataset poisoning guard)",
            )
        return super().hash_n_degree_quads(id_, issuer)


def _pyld_term(term: Any) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "IRI", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "blank node", "value": "_:" + term.value}
    out = {"type": "literal", "value": term.value, "datatype": term.datatype.value}
    if term.language is not None:
        out["language"] = term.language
        out["datatype"] = _RDF_LANG_STRING
    return out


def _bounded_labels(quads: list[ox.Quad], hash_algorithm: str) -> dict[str, str]:
    """Canonical labels from pyld's algorithm (with the work bound) for look-alike nodes."""
    dataset: dict[str, list[dict[str, Any]]] = {}
    for quad in quads:
        graph = quad.graph_name
        name = (
            "@default"
            if isinstance(graph, ox.DefaultGraph)
            else ("_:" + graph.value if isinstance(graph, ox.BlankNode) else graph.value)
        )
        dataset.setdefault(name, []).append(
            {
                "subject": _pyld_term(quad.subject),
                "predicate": _pyld_term(quad.predicate),
                "object": _pyld_term(quad.object),
            }
        )
    algorithm = _BoundedUrdna2015(hash_algorithm)
    algorithm.main(dataset, {"format": "application/n-quads"})
    issued: dict[str, str] = algorithm.canonical_issuer.existing
    return {old.removeprefix("_:"): new.removeprefix("_:") for old, new in issued.items()}


def canonical_nquads(quads: Iterable[ox.Quad], hash_algorithm: str = "SHA-256") -> bytes:
    """The RDFC-1.0 canonical N-Quads document of ``quads`` (sorted, one line each).

    ``hash_algorithm`` is RDFC-1.0's parameter (§4.4): SHA-256 by default, or SHA-384.
    """
    if hash_algorithm not in _HASHES:
        raise ValueError(f"RDFC-1.0 hash algorithm {hash_algorithm!r} is not supported")
    quads = list(dict.fromkeys(quads))  # a dataset is a set of quads
    return _canonical(quads, hash_algorithm, None)


def _canonical(quads: list[ox.Quad], hash_algorithm: str, blank_nodes: int | None) -> bytes:
    if (blank_nodes is not None and blank_nodes < 2) or _first_degree_distinct(quads):
        dataset = ox.Dataset(quads)
        dataset.canonicalize(_OXIGRAPH[hash_algorithm])
        # pyoxigraph writes canonical N-Quads (RDFC-1.0 §4.4.3 step 7; W3C test060
        # checks the escaping); a raw newline never occurs inside a term.
        text = (ox.serialize(dataset, format=ox.RdfFormat.N_QUADS) or b"").decode("utf-8")
        lines = sorted(line + "\n" for line in text.split("\n") if line)
    else:
        labels = _bounded_labels(quads, hash_algorithm)
        lines = sorted(_line(q, labels) for q in quads)
    return "".join(lines).encode("utf-8")


def canonical_labels(quads: Iterable[ox.Quad], hash_algorithm: str = "SHA-256") -> dict[str, str]:
    """The issued identifiers map of RDFC-1.0 (§4.4.3): input blank node label → ``c14nN``.

    Computed by the bounded pyld path, the same one that canonicalizes look-alike nodes.
    """
    if hash_algorithm not in _HASHES:
        raise ValueError(f"RDFC-1.0 hash algorithm {hash_algorithm!r} is not supported")
    return _bounded_labels(list(dict.fromkeys(quads)), hash_algorithm)


class _Identity(dict[str, str]):
    """Blank node labels already canonical (``c14nN``): each maps to itself."""

    def __missing__(self, key: str) -> str:
        return key


# --- JSON-LD to RDF ---------------------------------------------------------

_KEYWORD_ALIASES_OK = frozenset({"@id"})


def _context_terms(context: Any, terms: set[str], aliases: set[str]) -> None:
    """Every term any (scoped) context defines, and every keyword alias but @id's."""
    if isinstance(context, list):
        for item in context:
            _context_terms(item, terms, aliases)
        return
    if not isinstance(context, dict):
        return
    for key, definition in context.items():
        if key.startswith("@"):
            continue
        terms.add(key)
        target = definition.get("@id") if isinstance(definition, dict) else definition
        if (
            isinstance(target, str)
            and target.startswith("@")
            and target not in (_KEYWORD_ALIASES_OK)
        ):
            aliases.add(key)
        if isinstance(definition, dict) and "@context" in definition:
            _context_terms(definition["@context"], terms, aliases)


class _Contexts:
    """The document's contexts inlined, and what the shape cache must know of them."""

    __slots__ = ("aliases", "inline", "terms")

    def __init__(self, raw: Any) -> None:
        items = raw if isinstance(raw, list) else [raw]
        inline: list[Any] = []
        for item in items:
            if isinstance(item, str):
                inline.append(bundled_context(item)["@context"])
            else:
                inline.append(item)
        self.inline = inline
        self.terms: set[str] = set()
        self.aliases: set[str] = set()
        _context_terms(inline, self.terms, self.aliases)


@functools.lru_cache(maxsize=64)
def _bundled_contexts(urls: tuple[str, ...]) -> _Contexts:
    return _Contexts(list(urls))


def _contexts(raw: Any) -> _Contexts:
    """The contexts of a document; those naming bundled contexts only are built once."""
    if isinstance(raw, str):
        return _bundled_contexts((raw,))
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return _bundled_contexts(tuple(raw))
    return _Contexts(raw)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return ("{", tuple((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[", tuple(_freeze(v) for v in value))
    return ("=", type(value).__name__, value)


class _Shape:
    """One walk of a document: its shape key, its string values, a sentinel template."""

    __slots__ = ("contexts", "key", "nested", "values")

    def __init__(self, document: dict[str, Any], contexts: _Contexts) -> None:
        self.contexts = contexts
        self.values: list[str] = []
        self.nested = False  # an embedded context below the top: not cached
        self.key = self._walk(document, verbatim=False, top=True)

    def _walk(self, node: Any, *, verbatim: bool, top: bool = False) -> Any:
        if isinstance(node, dict):
            parts = []
            for key, value in node.items():
                if key == "@context":
                    self.nested = self.nested or not top
                    parts.append((key, _freeze(value)))
                    continue
                keep = (
                    verbatim
                    or (key.startswith("@") and key not in _KEYWORD_ALIASES_OK)
                    or key in self.contexts.aliases
                )
                parts.append((key, self._walk(value, verbatim=keep)))
            return ("{", tuple(parts))
        if isinstance(node, list):
            return ("[", tuple(self._walk(v, verbatim=verbatim) for v in node))
        if isinstance(node, str) and not verbatim and not node.startswith("@"):
            self.values.append(node)
            return ("s", len(self.values) - 1)
        return ("=", type(node).__name__, node)

    def template(self, document: dict[str, Any], pinned: dict[int, str]) -> dict[str, Any]:
        """``document`` with each free string replaced by its sentinel, pinned ones kept."""
        counter = iter(range(len(self.values)))

        def rebuild(node: Any, *, verbatim: bool) -> Any:
            if isinstance(node, dict):
                out = {}
                for key, value in node.items():
                    if key == "@context":  # only at the top: nested ones are not cached
                        out[key] = self.contexts.inline
                        continue
                    keep = (
                        verbatim
                        or (key.startswith("@") and key not in _KEYWORD_ALIASES_OK)
                        or key in self.contexts.aliases
                    )
                    out[key] = rebuild(value, verbatim=keep)
                return out
            if isinstance(node, list):
                return [rebuild(v, verbatim=verbatim) for v in node]
            if isinstance(node, str) and not verbatim and not node.startswith("@"):
                index = next(counter)
                return pinned.get(index, f"{_SENTINEL}{index}")
            return node

        rebuilt: dict[str, Any] = rebuild(document, verbatim=False)
        return rebuilt


def _parse(document: dict[str, Any]) -> list[ox.Quad]:
    """pyoxigraph's JSON-LD to RDF; an undefined term is refused, never dropped."""
    try:
        data = json.dumps(document, ensure_ascii=False).encode("utf-8")
        quads = list(ox.parse(data, ox.RdfFormat.JSON_LD, lenient=True))
    except (SyntaxError, ValueError) as exc:
        raise VerificationFailed("malformed", f"document is not valid JSON-LD: {exc}") from exc
    for quad in quads:
        for term in (quad.subject, quad.predicate, quad.object, quad.graph_name):
            # A term no context defines comes out as a relative IRI: the strict
            # parser would drop it, and with it what the signature covers.
            if not isinstance(term, ox.NamedNode):
                continue
            if _SCHEME.match(term.value) is None:
                raise VerificationFailed(
                    "malformed", f"term {term.value!r} is not defined by the @context"
                )
            try:  # the lenient parser let it through; RDF does not
                ox.NamedNode(term.value)
            except ValueError as exc:
                raise VerificationFailed("malformed", f"{term.value!r} is not an IRI") from exc
    return quads


class _Template:
    """The N-Quads text of one shape, with where each free string value goes."""

    __slots__ = ("blank_nodes", "kinds", "pieces", "slots", "text")

    def __init__(self, quads: list[ox.Quad], free: int) -> None:
        found: dict[int, list[str]] = {}
        pieces: list[str | tuple[int, str]] = []
        blanks: set[str] = set()
        for quad in quads:
            for term in (quad.subject, quad.predicate, quad.object, quad.graph_name):
                if isinstance(term, ox.DefaultGraph):
                    continue
                if isinstance(term, ox.BlankNode):
                    blanks.add(term.value)
                    pieces.append(f"_:{term.value} ")
                    continue
                value = getattr(term, "value", None)
                if not isinstance(value, str) or _SENTINEL not in value:
                    pieces.append(_term(term, _Identity()) + " ")
                    continue
                tail = value[len(_SENTINEL) :]
                index = int(tail) if value.startswith(_SENTINEL) and tail.isdigit() else -1
                if isinstance(term, ox.NamedNode) and index >= 0:
                    found.setdefault(index, []).append("iri")
                    pieces.extend(("<", (index, "iri"), "> "))
                elif isinstance(term, ox.Literal) and index >= 0:
                    found.setdefault(index, []).append("lit")
                    suffix = _term(term, _Identity()).removeprefix(_literal(value))
                    pieces.extend(('"', (index, "lit"), f'"{suffix} '))
                else:
                    found.setdefault(index, []).append("bad")
            pieces.append(".\n")
        self.kinds: dict[int, str] = {}
        for index in range(free):
            kinds = found.get(index, [])
            # A literal comes from one JSON value, so exactly once; an IRI names a
            # node, which may stand in many quads (every one of its properties).
            ok = set(kinds) == {"iri"} or kinds == ["lit"]
            self.kinds[index] = kinds[0] if ok else "bad"
        if -1 in found:
            self.kinds[-1] = "bad"
        self.pieces = pieces
        self.blank_nodes = len(blanks)
        # One format string for the whole document: fixed text with braces doubled,
        # a numbered field per slot; ``slots`` says which value (and how) fills each.
        fields: list[str] = []
        self.slots: list[tuple[int, bool]] = []
        for piece in pieces:
            if isinstance(piece, str):
                fields.append(piece.replace("{", "{{").replace("}", "}}"))
            else:
                fields.append("{%d}" % len(self.slots))  # noqa: UP031 - builds a format string
                self.slots.append((piece[0], piece[1] == "iri"))
        self.text = "".join(fields)

    def usable(self) -> bool:
        return "bad" not in self.kinds.values()

    def fill(self, values: list[str]) -> list[ox.Quad]:
        text = self.text.format(*[
            values[index] if iri else _literal(values[index])[1:-1]
            for index, iri in self.slots
        ])
        try:
            return list(ox.parse(text.encode("utf-8"), ox.RdfFormat.N_QUADS))
        except SyntaxError as exc:  # only values checked before go in; a last guard
            raise VerificationFailed("malformed", "document is not valid JSON-LD") from exc


class _ShapeCache:
    """Shape → where its strings go, and (shape, pinned values) → template."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._kinds: OrderedDict[Any, dict[int, str]] = OrderedDict()
        self._templates: OrderedDict[Any, _Template] = OrderedDict()
        self._size = size

    @staticmethod
    def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
        cache[key] = value
        if len(cache) > size:
            cache.popitem(last=False)

    def quads(self, document: dict[str, Any]) -> tuple[list[ox.Quad], int | None]:
        """The document's quads, and how many blank nodes they hold when known."""
        contexts = _contexts(document.get("@context"))
        shape = _Shape(document, contexts)
        if shape.nested:
            return _parse(_inline(document)), None
        free = len(shape.values)
        kinds = self._kinds.get(shape.key)
        if kinds is None:
            probe = _Template(_parse(shape.template(document, {})), free)
            kinds = probe.kinds
            self._remember(self._kinds, shape.key, kinds, self._size)
        pinned = {
            i: v
            for i, v in enumerate(shape.values)
            if kinds.get(i) == "bad" or (kinds.get(i) == "iri" and not _safe_iri(v, contexts))
        }
        if kinds.get(-1) == "bad" or (pinned and len(pinned) == free):
            return _parse(_inline(document)), None
        key = (shape.key, tuple(sorted(pinned.items())))
        template = self._templates.get(key)
        if template is None:
            template = _Template(_parse(shape.template(document, pinned)), free)
            for index in pinned:
                template.kinds.pop(index, None)
            if not template.usable():
                return _parse(_inline(document)), None
            self._remember(self._templates, key, template, self._size)
        return template.fill(shape.values), template.blank_nodes


def _inline(node: Any) -> Any:
    """``node`` with every bundled context URL replaced by the context it names."""
    if isinstance(node, list):
        return [_inline(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "@context":
            items = value if isinstance(value, list) else [value]
            out[key] = [
                bundled_context(item)["@context"] if isinstance(item, str) else _inline(item)
                for item in items
            ]
        else:
            out[key] = _inline(value)
    return out


@functools.lru_cache(maxsize=8192)
def _safe_iri(value: str, contexts: _Contexts) -> bool:
    """True when JSON-LD would keep ``value`` as this very absolute IRI (§5.2.2 IRI Expansion).

    Cached per value and contexts object (contexts naming bundled URLs are built once).
    """
    match = _SCHEME.match(value)
    if match is None or value.startswith("_:") or value in contexts.terms:
        return False
    if match.group(0)[:-1] in contexts.terms:
        return False
    try:
        ox.NamedNode(value)
    except ValueError:
        return False
    return True


_CACHE = _ShapeCache()


def jsonld_to_quads(document: dict[str, Any]) -> list[ox.Quad]:
    """The RDF dataset of a JSON-LD document whose contexts are bundled."""
    if not isinstance(document, dict):
        raise VerificationFailed("malformed", "a JSON-LD document must be an object")
    return _CACHE.quads(document)[0]


def rdfc_canonicalize(document: dict[str, Any]) -> bytes:
    """RDF Dataset Canonicalization (RDFC-1.0) of a JSON-LD document, as N-Quads bytes."""
    if not isinstance(document, dict):
        raise VerificationFailed("malformed", "a JSON-LD document must be an object")
    quads, blank_nodes = _CACHE.quads(document)
    return _canonical(list(dict.fromkeys(quads)), "SHA-256", blank_nodes)
