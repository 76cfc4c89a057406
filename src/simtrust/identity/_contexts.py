"""The JSON-LD contexts simtrust knows, bundled as package data (never fetched).

Served: W3C VC Data Model 2.0 ``https://www.w3.org/ns/credentials/v2`` (which
also defines Data Integrity and Bitstring Status List terms) and the examples
context ``https://www.w3.org/ns/credentials/examples/v2`` the W3C vectors use,
both as published (see /work/shared/contexts/SOURCE_COMMIT), simtrust's own
``https://simtrust.dev/ns/credentials/v1`` (capability and device credential
terms, protected, written for simtrust), the Data Integrity v2 context
``https://w3id.org/security/data-integrity/v2`` as W3C publishes it (the file
of Digital Bazaar's ``@digitalbazaar/data-integrity-context`` 2.0.1 on npm,
SHA-256 0f77743d…), which VCDM 1.1 credentials name to secure themselves with
``DataIntegrityProof`` (VC Data Integrity 1.0 §2.1), and the VC Data
Model 1.1 context ``https://www.w3.org/2018/credentials/v1`` from the copy pyld
ships in its frozen document loader (``pyld.documentloader.frozen``, pyld ≥
3.3), so partners' 1.1 credentials are processed with the published context.
The document loader refuses every other URL, so canonicalization never
touches the network.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from simtrust.identity._errors import VerificationFailed

__all__ = [
    "BUNDLED_CONTEXTS",
    "CREDENTIALS_V1",
    "CREDENTIALS_V2",
    "DATA_INTEGRITY_V2",
    "EXAMPLES_V2",
    "KNOWN_CONTEXTS",
    "SIMTRUST_V1",
    "bundled_context",
    "context_bytes",
    "document_loader",
]

CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"
#: simtrust's own terms: capability credentials and device credentials (written here).
SIMTRUST_V1 = "https://simtrust.dev/ns/credentials/v1"
#: Data Integrity terms for documents whose context does not define them (VCDM 1.1).
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"

BUNDLED_CONTEXTS: dict[str, str] = {
    CREDENTIALS_V2: "credentials-v2.jsonld",
    EXAMPLES_V2: "credentials-examples-v2.jsonld",
    CREDENTIALS_V1: "pyld:credentials-v1.jsonld",
    SIMTRUST_V1: "simtrust-v1.jsonld",
    DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
}

#: Contexts a credential may name. DID-document contexts appear only in DID
#: documents (JCS-signed, never expanded), so they are not needed here.
KNOWN_CONTEXTS = frozenset(BUNDLED_CONTEXTS)


@cache
def bundled_context(url: str) -> dict[str, Any]:
    """The parsed context document for ``url``; ``unknown-context`` if not bundled."""
    name = BUNDLED_CONTEXTS.get(url)
    if name is None:
        raise VerificationFailed(
            "unknown-context", f"context {url!r} is not bundled; simtrust never fetches contexts"
        )
    text = context_bytes(url).decode("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def context_bytes(url: str) -> bytes:
    """The bytes of a bundled context file (what a digest of it covers)."""
    name = BUNDLED_CONTEXTS[url]
    if name.startswith("pyld:"):
        package = resources.files("pyld.documentloader.frozen")
        return package.joinpath("bundled", name.removeprefix("pyld:")).read_bytes()
    return resources.files("simtrust.identity").joinpath("contexts", name).read_bytes()


def document_loader(url: str, options: Any = None) -> dict[str, Any]:
    """A pyld document loader that serves only the bundled contexts."""
    return {"contextUrl": None, "documentUrl": url, "document": bundled_context(url)}
