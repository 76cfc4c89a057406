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
problem documents. Acknowledged (201) means stored durably.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from simtrust.api.problems import PROBLEM_BASE
from simtrust.errors import SimtrustError
from simtrust.streams import MAX_FRAME, StreamService, TlsDelivery

__all__ = ["INGEST_PATH", "MtlsStreamIngest"]

_log = logging.getLogger("simtrust.api.stream_ingest")

INGEST_PATH = re.compile(r"^/streams/channels/([0-9a-fA-F]{64})/messages$")

Answer = tuple[int, list[tuple[str, str]], bytes]


def _problem(status: int, title: str, detail: str, code: str, **extensions: Any) -> Answer:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extensions.items() if k not in body})
    return status, [("Content-Type", "application/problem+json")], json.dumps(body).encode()


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
