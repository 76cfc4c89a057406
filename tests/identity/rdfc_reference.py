"""pyld's RDF Dataset Canonicalization of JSON-LD: the independent reference the tests
compare simtrust's native path (``simtrust.identity._rdfc``) against."""

from __future__ import annotations

from typing import Any

from pyld import jsonld

from simtrust.identity import VerificationFailed, document_loader


def reference_rdfc(document: dict[str, Any]) -> bytes:
    """RDFC-1.0 (URDNA2015) of ``document`` by pyld, as N-Quads bytes."""

    def dropped(term: object) -> None:
        # Safe mode (VC-DI 1.0 §4.3 note): a term no context defines would be left
        # out of the canonical form, and so out of what the signature covers.
        raise VerificationFailed("malformed", f"term {term!r} is not defined by the @context")

    try:
        nquads = jsonld.JsonLdProcessor(on_property_dropped=dropped).normalize(
            document,
            {
                "algorithm": "URDNA2015",
                "format": "application/n-quads",
                "documentLoader": document_loader,
            },
        )
    except jsonld.JsonLdError as exc:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, VerificationFailed):
                raise cause from exc
            nested = getattr(cause, "cause", None)
            cause = nested if isinstance(nested, BaseException) else cause.__cause__
        raise VerificationFailed("malformed", f"JSON-LD processing failed: {exc.type}") from exc
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise VerificationFailed("malformed", "document is not valid JSON-LD") from exc
    return str(nquads).encode("utf-8")
