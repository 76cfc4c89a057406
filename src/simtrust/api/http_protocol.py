"""uvicorn's httptools protocol with an answer's head and body sent in one write.

uvicorn writes a response's status line and headers when the application sends
``http.response.start`` and its body on ``http.response.body``: two
``transport.write`` calls, and on an idle socket two ``send`` system calls and two
TCP segments per answer (the peer is woken twice). :class:`OneWriteHttpProtocol`
gives uvicorn's protocol a :class:`HeldWrites` transport instead: a write is held
until the next write on the connection (both go out as one) or until the event
loop's current step ends (``call_soon``), whichever comes first. The bytes on the
connection, and their order, are the same; an answer whose body follows its head
in the same step (every answer made in one go, such as ``JSONResponse``'s) leaves
in one ``send``. Closing, aborting, switching protocols and half-closing send
what is held first. ``simtrust serve``'s API
workers use it (docs/decisions/api-attach-route.md has the figures).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeldWrites", "OneWriteHttpProtocol"]


class HeldWrites:
    """A transport whose writes made in one event-loop step go out as one write.

    Everything else is the wrapped transport's own (``get_extra_info``,
    ``is_closing``, flow control, ...); the calls that end, hand over or pause the
    connection send the held bytes first."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        self._held = None
        self.transport.write(held + bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def flush(self) -> None:
        """Send what is held now."""
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held)

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self.transport.get_write_buffer_size() + (0 if held is None else len(held))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.flush()
        self.transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self.transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol over :class:`HeldWrites` (pass it as
    ``uvicorn.Config(http=...)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held = HeldWrites(transport, self.loop)
        super().connection_made(held)  # type: ignore[arg-type]
