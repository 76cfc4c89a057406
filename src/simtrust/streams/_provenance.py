"""Provenance annotations and the data-confidence score (docs/streams.md "Confidence").

Every component that learns something about a datum signs an
:class:`Annotation` saying whether one property holds: ``signature`` (the
author's proof verifies), ``sim`` (the author's key is held in a SIM whose
attach is bound to its registered device), ``tls`` (it arrived over mTLS with
a valid, unrevoked tier-2 certificate), ``source`` (the source address maps to
that SIM), ``clean`` (no open detection alert or policy violation for that
device in the window), ``anchored`` (its batch root is finalized on the ledger).

The score follows Project Alvarium's method: the sum of the weights of the
satisfied annotations over the sum of the weights of every kind the tenant's
policy names (a kind nobody annotated counts as unsatisfied). A derived datum
(an aggregate of readings) is no more trustworthy than its weakest input: its
score is the lower of its own annotations' score and the lowest input score
(the weakest-link rule, written down in docs/decisions/streams-derived-score.md).

Annotations are signed with Ed25519 over a canonical JSON body (RFC 8785), so
a provenance graph can be checked by anyone holding the annotators' keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from simtrust.errors import InvalidInput, InvalidSignature
from simtrust.identity import Signer, canonicalize, verify_ed25519

__all__ = [
    "ANNOTATION_KINDS",
    "DEFAULT_WEIGHTS",
    "Annotation",
    "ConfidencePolicy",
    "Datum",
    "ProvenanceGraph",
    "sign_annotation",
]

ANNOTATION_KINDS = ("signature", "sim", "tls", "source", "clean", "anchored")
DEFAULT_WEIGHTS: dict[str, int] = {
    "signature": 3, "sim": 3, "tls": 2, "source": 1, "clean": 2, "anchored": 1,
}


@dataclass(frozen=True, slots=True)
class Annotation:
    """One signed statement about one datum."""

    datum: str
    kind: str
    satisfied: bool
    annotator: bytes  # Ed25519 public key of the component that annotated
    evidence: str = ""
    signature: bytes = field(default=b"", repr=False)

    def body(self) -> bytes:
        return canonicalize({
            "datum": self.datum, "kind": self.kind, "satisfied": self.satisfied,
            "annotator": self.annotator.hex(), "evidence": self.evidence,
        })

    def verify(self) -> None:
        """Raise :class:`InvalidSignature` unless the annotator signed exactly this."""
        verify_ed25519(self.annotator, self.signature, self.body())

    def to_json(self) -> dict[str, Any]:
        return {
            "datum": self.datum, "kind": self.kind, "satisfied": self.satisfied,
            "annotator": self.annotator.hex(), "evidence": self.evidence,
            "signature": self.signature.hex(),
        }


def sign_annotation(signer: Signer, datum: str, kind: str, satisfied: bool,
                    evidence: str = "") -> Annotation:
    if kind not in ANNOTATION_KINDS:
        raise InvalidInput(f"unknown annotation kind {kind!r}")
    unsigned = Annotation(datum, kind, satisfied, signer.public_key, evidence)
    return Annotation(datum, kind, satisfied, signer.public_key, evidence,
                      signer.sign(unsigned.body()))


@dataclass(frozen=True, slots=True)
class ConfidencePolicy:
    """A tenant's weights per annotation kind (non-negative integers, not all zero)."""

    weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(ANNOTATION_KINDS)
        if unknown:
            raise InvalidInput(f"unknown annotation kinds {sorted(unknown)}")
        if any(w < 0 for w in self.weights.values()) or not sum(self.weights.values()):
            raise InvalidInput("weights are non-negative and not all zero")

    def score(self, annotations: Iterable[Annotation]) -> Fraction:
        """Σ weights of satisfied kinds / Σ weights (exact). Annotations come in the
        order they were made and the latest of a kind decides: a live event (an
        alert, a revoked certificate) overrides what was true when the datum arrived."""
        latest = {a.kind: a.satisfied for a in annotations}
        satisfied = {k for k, ok in latest.items() if ok}
        total = sum(self.weights.values())
        return Fraction(sum(w for k, w in self.weights.items() if k in satisfied), total)


@dataclass(slots=True)
class Datum:
    """A datum in the graph: a channel message or data derived from others."""

    datum_id: str
    annotations: list[Annotation] = field(default_factory=list)
    inputs: tuple[str, ...] = ()
    proof: dict[str, Any] | None = None  # inclusion proof of its anchored batch


class ProvenanceGraph:
    """Data, their annotations and what each was derived from; scores by policy."""

    def __init__(self, policy: ConfidencePolicy | None = None) -> None:
        self.policy = policy or ConfidencePolicy()
        self._data: dict[str, Datum] = {}

    def add(self, datum_id: str, inputs: Iterable[str] = (),
            proof: dict[str, Any] | None = None) -> Datum:
        inputs = tuple(inputs)
        missing = [i for i in inputs if i not in self._data]
        if missing:
            raise InvalidInput(f"derived from unknown data {missing}")
        if datum_id in self._data:
            raise InvalidInput(f"datum {datum_id} exists already")
        datum = Datum(datum_id, inputs=inputs, proof=proof)
        self._data[datum_id] = datum
        return datum

    def annotate(self, annotation: Annotation) -> None:
        """Add a verified annotation (a forged one raises and is not kept)."""
        if annotation.datum not in self._data:
            raise InvalidInput(f"no datum {annotation.datum}")
        annotation.verify()
        self._data[annotation.datum].annotations.append(annotation)

    def score(self, datum_id: str) -> Fraction:
        """Own score, capped by the lowest input score (weakest link)."""
        memo: dict[str, Fraction] = {}

        def walk(key: str) -> Fraction:
            if key not in memo:
                datum = self._data[key]
                own = self.policy.score(datum.annotations)
                memo[key] = min([own, *(walk(i) for i in datum.inputs)])
            return memo[key]

        if datum_id not in self._data:
            raise InvalidInput(f"no datum {datum_id}")
        return walk(datum_id)

    def provenance(self, datum_id: str) -> dict[str, Any]:
        """The datum's graph: every ancestor with annotations, proof and score."""
        if datum_id not in self._data:
            raise InvalidInput(f"no datum {datum_id}")
        nodes: dict[str, Any] = {}
        edges: list[list[str]] = []
        stack = [datum_id]
        while stack:
            key = stack.pop()
            if key in nodes:
                continue
            datum = self._data[key]
            nodes[key] = {
                "score": str(self.score(key)),
                "annotations": [a.to_json() for a in datum.annotations],
                "proof": datum.proof,
            }
            for source in datum.inputs:
                edges.append([source, key])
                stack.append(source)
        return {"datum": datum_id, "policy": dict(self.policy.weights), "nodes": nodes,
                "edges": sorted(edges)}

    @staticmethod
    def check(graph: dict[str, Any]) -> None:
        """Verify every annotation signature in a provenance document (anyone can)."""
        for node in graph["nodes"].values():
            for item in node["annotations"]:
                annotation = Annotation(
                    item["datum"], item["kind"], bool(item["satisfied"]),
                    bytes.fromhex(item["annotator"]), item["evidence"],
                    bytes.fromhex(item["signature"]),
                )
                try:
                    annotation.verify()
                except InvalidSignature as exc:
                    raise InvalidSignature(
                        f"annotation {item['kind']} of {item['datum']} is forged"
                    ) from exc
