"""Data frames received over mutually-authenticated TLS: the devices' ingest endpoint.

``POST /streams/channels/<channel id>/messages`` on the tier-2 TLS listener
(the bootstrap listener, ``SIMTRUST_BOOTSTRAP_BIND``), the body one signed
frame as ``application/octet-stream``. The listener verified the client
certificate in the handshake (RFC 8446 §4.4.2 / RFC 5246 §7.4.6) against the
tenant CAs; this handler passes its DER to the streams service, which decides
the datum's ``tls`` annotation from it: a certificate issued here, good, in
its validity and of the channel's SIM (docs/decisions/streams-live-annotations.md).
A connection without a client certificate is refused (403), so everything
this endpoint stores arrived over mTLS. Answers are JSON; errors are RFC 9457
problem documents. Acknowledged (201) means stored durably. The route is
described by an OpenAPI 3.1 document (:func:`openapi_document`), served at
``GET /streams/openapi.json`` on the same listener.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from simtrust.api.problems import PROBLEM_BASE
from simtrust.errors import SimtrustError
from simtrust.streams import MAX_FRAME, StreamService, TlsDelivery

__all__ = ["INGEST_PATH", "MtlsStreamIngest", "openapi_document"]

_log = logging.getLogger("simtrust.api.stream_ingest")

INGEST_PATH = re.compile(r"^/streams/channels/([0-9a-fA-F]{64})/messages$")

Answer = tuple[int, list[tuple[str, str]], bytes]


def _problem(status: int, title: str, detail: str, code: str, **extensions: Any) -> Answer:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extensions.items() if k not in body})
    return status, [("Content-Type", "application/problem+json")], json.dumps(body).encode()


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_STATUSES = {
    "400": "a malformed or forged frame (problem member verdict), or no frame",
    "403": "no client certificate on the connection",
    "404": "no such channel, or no such resource",
    "405": "only POST",
    "409": "a replay or fork (problem member verdict)",
    "415": "the body is not application/octet-stream",
    "422": "the channel's meter is revoked (reason revoked)",
    "503": "the store cannot take the frame now; send it again",
}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the ingest route on the tier-2 TLS listener."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "simtrust frames over mTLS", "version": "1"},
        "paths": {"/streams/channels/{channel}/messages": {"post": {
            "operationId": "postFrameOverMtls",
            "summary": "Store one signed frame received over mutually-authenticated TLS",
            "description": "Present the SIM's tier-2 certificate as TLS client certificate;"
                           " the datum's tls annotation names its SHA-256 fingerprint.",
            "security": [{"mutualTLS": []}],
            "parameters": [{"name": "channel", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}}],
            "requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "contentMediaType": "application/octet-stream",
                           "maxLength": MAX_FRAME}}}},
            "responses": {
                "201": {"description": "stored durably: verdict, message id, score and"
                                       " annotations", "content": {"application/json": {
                                           "schema": {"type": "object"}}}},
                **{code: {"description": text, "content": _PROBLEM}
                   for code, text in _STATUSES.items()},
                # Answered by the listener before the request reaches the route.
                "411": {"description": "send a Content-Length (no chunked bodies)",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                "413": {"description": "the body is larger than a frame",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
            },
        }}},
        "components": {
            "securitySchemes": {"mutualTLS": {"type": "mutualTLS"}},
            "schemas": {"Problem": {"type": "object", "required": ["type", "title", "status"],
                                    "properties": {"type": {"type": "string"},
                                                   "title": {"type": "string"},
                                                   "status": {"type": "integer"},
                                                   "detail": {"type": "string"}}}},
        },
    }


class MtlsStreamIngest:
    """Stores frames posted over mTLS through the streams service, with their certificate."""

    listener_name = "https-ingest"

    def __init__(self, streams: StreamService) -> None:
        self._streams = streams

    def __repr__(self) -> str:
        return "MtlsStreamIngest()"

    @staticmethod
    def matches(path: str) -> bool:
        return path.startswith("/streams/")

    def handle(self, method: str, path: str, content_type: str, body: bytes,
               client_certificate: bytes | None, peer: str) -> Answer:
        if path == "/streams/openapi.json" and method == "GET":
            return 200, [("Content-Type", "application/json")], json.dumps(
                openapi_document()).encode()
        found = INGEST_PATH.match(path)
        if found is None:
            return _problem(404, "Not found", "no such resource", "not-found")
        if method != "POST":
            status, headers, payload = _problem(405, "Method not allowed",
                                                "POST a frame to this resource",
                                                "method-not-allowed")
            return status, [*headers, ("Allow", "POST")], payload
        if client_certificate is None:
            return _problem(403, "Client certificate required",
                            "frames are accepted here only over mutually-authenticated TLS:"
                            " present the SIM's tier-2 certificate", "client-certificate-required")
        if content_type.split(";", 1)[0].strip().lower() != "application/octet-stream":
            return _problem(415, "Unsupported media type",
                            "send the frame as application/octet-stream", "unsupported-media-type")
        if not 0 < len(body) <= MAX_FRAME:
            return _problem(400, "Invalid input", f"a frame is 1 to {MAX_FRAME} bytes",
                            "invalid-input")
        try:
            result = self._streams.publish(
                found.group(1).lower(), body, source=peer,
                tls=TlsDelivery(client_certificate, self.listener_name), actor="mtls-ingest")
        except SimtrustError as exc:
            status = exc.status if exc.status < 500 else 503
            return _problem(status, exc.title, exc.detail, exc.code, **exc.context)
        return 201, [("Content-Type", "application/json")], json.dumps(result).encode()
