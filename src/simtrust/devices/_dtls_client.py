"""The DTLS 1.2 client link (RFC 6347 over python-mbedtls, PSK per RFC 4279 or an X.509
client certificate per RFC 7925 §4.4) for one server: the demo's meter, the benchmarks and
the tests use it; the servers' side is ``devices/_transport.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from mbedtls import pk, tls, x509

from simtrust.devices._coap import MAX_MESSAGE
from simtrust.devices._transport import (
    _OVER,
    CERT_CIPHERS,
    CIPHERS,
    CoapEndpoint,
    Peer,
    _suppress,
)

__all__ = ["DtlsClientLink"]


class DtlsClientLink(asyncio.DatagramProtocol):
    """DTLS 1.2 client for one server (the demo's meter, benchmarks, tests): PSK, or with
    ``cert_chain`` (DER, leaf first) a certificate whose PKCS#8 private key is ``key``;
    ``server_trust`` (DER CA certificates) makes it validate the server's chain."""

    def __init__(self, endpoint: CoapEndpoint, identity: str, key: bytes, *,
                 cert_chain: Sequence[bytes] = (), server_trust: Sequence[bytes] = ()) -> None:
        self._endpoint = endpoint
        versions: dict[str, Any] = {"lowest_supported_version": tls.DTLSVersion.DTLSv1_2,
                                    "highest_supported_version": tls.DTLSVersion.DTLSv1_2}
        if cert_chain:
            conf = tls.DTLSConfiguration(
                certificate_chain=(tuple(x509.CRT.from_DER(d) for d in cert_chain),
                                   pk.ECC.from_buffer(key)),
                validate_certificates=bool(server_trust),
                trust_store=tls.TrustStore([x509.CRT.from_DER(d) for d in server_trust]),
                ciphers=CERT_CIPHERS, **versions)
        else:
            conf = tls.DTLSConfiguration(
                pre_shared_key=(identity, key), validate_certificates=False,
                ciphers=tuple(CIPHERS), **versions)
        self._buffer = tls.ClientContext(conf).wrap_buffers(None)
        self._transport: asyncio.DatagramTransport | None = None
        self._addr: tuple[str, int] | None = None
        self._done: asyncio.Future[None] | None = None
        self._identity = identity
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        addr = transport.get_extra_info("peername")
        self._addr = (addr[0], addr[1])

    def _flush(self) -> None:
        while True:
            out = self._buffer.peek_outgoing(16384)
            if not out:
                return
            self._buffer.consume_outgoing(len(out))
            if self._transport is not None:
                self._transport.sendto(out)

    def _step(self) -> None:
        assert self._done is not None
        while self._buffer._handshake_state is not _OVER:
            try:
                self._buffer.do_handshake()
            except tls.WantWriteError:
                self._flush()
            except tls.WantReadError:
                self._flush()
                return
        self._flush()
        if not self._done.done():
            assert self._addr is not None
            self.peer = Peer(self._addr, self, self._identity)
            self._done.set_result(None)

    async def handshake(self, timeout: float = 30.0) -> Peer:
        self._done = asyncio.get_running_loop().create_future()
        self._step()
        attempt = 1.0
        async with asyncio.timeout(timeout):
            while not self._done.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self._done), attempt)
                except TimeoutError:
                    # The handshake flight was lost: mbed TLS resends on its timer; we
                    # drive it by stepping again.
                    self._step()
                    attempt = min(attempt * 2, 8.0)
        assert self.peer is not None
        return self.peer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._buffer.receive_from_network(data)
            if self._done is not None and not self._done.done():
                self._step()
                if not self._done.done():
                    return
            while True:
                try:
                    plain = self._buffer.read(MAX_MESSAGE + 64)
                except tls.WantReadError:
                    return
                if not plain or self.peer is None:
                    return
                self._endpoint.datagram(self.peer, plain)
        except Exception as exc:  # noqa: BLE001 - a TLS failure fails the handshake
            if self._done is not None and not self._done.done():
                self._done.set_exception(ConnectionError(f"DTLS failed: {type(exc).__name__}"))

    def send(self, peer: Peer, data: bytes) -> None:
        self._buffer.write(data)
        self._flush()

    def close(self) -> None:
        with _suppress():
            self._buffer.shutdown()
            self._flush()
        if self._transport is not None:
            self._transport.close()
