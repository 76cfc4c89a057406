"""Stored data as evidence: confidence policies, derived data and provenance graphs.

A datum's score is its tenant's :class:`ConfidencePolicy` over its latest
annotations, and a derived datum (an aggregate) is scored by its weakest
input (``_provenance.ProvenanceGraph``). The provenance document lists every
ancestor with its annotations, its inclusion proof once anchored, and its
frame as signed, so a reader can check each step itself (``docs/streams.md``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from simtrust.audit import AuditLog
from simtrust.errors import InvalidInput, NotFound
from simtrust.store import Database
from simtrust.streams._common import b64
from simtrust.streams._evidence import Evidence
from simtrust.streams._provenance import (
    ANNOTATION_KINDS,
    DEFAULT_WEIGHTS,
    Annotation,
    ConfidencePolicy,
    ProvenanceGraph,
)

__all__ = ["DataCatalog"]


class DataCatalog:
    """Scores, derived data and provenance of stored data (``StreamService.score`` ...)."""

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime],
                 evidence: Evidence) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._evidence = evidence

    def __repr__(self) -> str:
        return "DataCatalog()"

    def _now(self) -> str:
        return self._clock().isoformat()

    def policy(self, tenant_id: str | None) -> ConfidencePolicy:
        row = None if tenant_id is None else self._db.query_one(
            "SELECT weights FROM stream_policies WHERE tenant_id = ?", (tenant_id,))
        return ConfidencePolicy(json.loads(row[0]) if row else dict(DEFAULT_WEIGHTS))

    def set_policy(self, tenant_id: str, weights: dict[str, int], *, actor: str
                   ) -> ConfidencePolicy:
        policy = ConfidencePolicy(dict(weights))
        with self._db.transaction(durable=True):
            if not self._db.execute("UPDATE stream_policies SET weights = ? WHERE tenant_id = ?",
                                    (json.dumps(weights, sort_keys=True), tenant_id)):
                self._db.execute("INSERT INTO stream_policies (tenant_id, weights) VALUES (?, ?)",
                                 (tenant_id, json.dumps(weights, sort_keys=True)))
            self._audit.append(actor=actor, action="stream.policy", subject=f"tenant:{tenant_id}",
                               outcome="success", tenant_id=tenant_id, details=dict(weights))
        return policy

    def derive(self, tenant_id: str | None, inputs: Sequence[str], *, label: str,
               actor: str) -> dict[str, Any]:
        """A datum derived from stored ones (an aggregate): scored by the weakest input."""
        if not inputs:
            raise InvalidInput("a derived datum has at least one input")
        for datum in inputs:
            if self.datum_tenant(datum) != tenant_id:
                raise NotFound(f"no datum {datum}")
        datum_id = "derived-" + uuid.uuid4().hex
        now = self._now()
        with self._db.transaction(durable=True):
            self._db.execute(
                "INSERT INTO stream_data (datum_id, tenant_id, channel, label, inputs, created_at)"
                " VALUES (?, ?, NULL, ?, ?, ?)",
                (datum_id, tenant_id, label, json.dumps(list(inputs)), now))
            for kind in ANNOTATION_KINDS:
                self._evidence.annotate(datum_id, kind, True,
                               f"computed by the platform from {len(inputs)} inputs", now)
            self._audit.append(actor=actor, action="stream.derive", subject=f"datum:{datum_id}",
                               outcome="success", tenant_id=tenant_id,
                               details={"inputs": len(inputs), "label": label})
        return {"datum": datum_id, "score": str(self.score(datum_id))}

    def datum_tenant(self, datum_id: str) -> str | None:
        row = self._db.query_one("SELECT tenant_id FROM stream_data WHERE datum_id = ?",
                                 (datum_id.lower(),))
        if row is None:
            raise NotFound(f"no datum {datum_id}")
        return None if row[0] is None else str(row[0])

    def _graph(self, datum_id: str) -> tuple[ProvenanceGraph, dict[str, str | None]]:
        tenant = self.datum_tenant(datum_id)
        rows: dict[str, tuple[list[str], dict[str, Any] | None, str | None]] = {}
        stack = [datum_id.lower()]
        while stack:
            key = stack.pop()
            if key in rows:
                continue
            row = self._db.query_one(
                "SELECT inputs, proof, channel FROM stream_data WHERE datum_id = ?", (key,))
            if row is None:
                raise NotFound(f"no datum {key}")
            inputs = list(json.loads(row[0]))
            rows[key] = (inputs, None if row[1] is None else json.loads(row[1]), row[2])
            stack.extend(inputs)
        graph = ProvenanceGraph(self.policy(tenant))
        done: set[str] = set()

        def add(key: str) -> None:
            if key in done:
                return
            inputs, proof, _channel = rows[key]
            for source in inputs:
                add(source)
            graph.add(key, inputs, proof)
            for r in self._db.query(
                    "SELECT kind, satisfied, annotator, evidence, signature FROM"
                    " stream_annotations WHERE datum_id = ? ORDER BY id", (key,)):
                graph.annotate(Annotation(key, str(r[0]), bool(r[1]), bytes(r[2]), str(r[3]),
                                          bytes(r[4])))
            done.add(key)

        add(datum_id.lower())
        return graph, {k: v[2] for k, v in rows.items()}

    def score(self, datum_id: str) -> Fraction:
        graph, _channels = self._graph(datum_id)
        return graph.score(datum_id.lower())

    def provenance(self, datum_id: str) -> dict[str, Any]:
        """The datum's graph: every ancestor with its annotations, proof, score and frame."""
        graph, channels = self._graph(datum_id)
        document = graph.provenance(datum_id.lower())
        for key, node in document["nodes"].items():
            node["channel"] = channels.get(key)
            if channels.get(key) is not None:
                row = self._db.query_one("SELECT frame FROM stream_frames WHERE message_id = ?",
                                         (key,))
                node["frame"] = None if row is None else b64(bytes(row[0]))
                certificate = self._evidence.tls_certificate_of(key)
                node["tls_client_certificate"] = (None if certificate is None
                                                  else b64(certificate))
                status = self._evidence.tls_status_of(key)
                node["tls_ocsp_response"] = None if status is None else b64(status[0])
                node["tls_issuer_certificate"] = None if status is None else b64(status[1])
        document["score"] = document["nodes"][datum_id.lower()]["score"]
        document["annotator"] = self._evidence.annotator.public_key.hex()
        return document
