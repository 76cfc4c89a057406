"""python-mbedtls's listing of compiled-in cipher suites is made once per process
(``devices/_transport.py``): the same suites, contexts still refuse a suite the library
does not have, and an in-memory DTLS-PSK handshake still agrees on a suite both offered."""

from __future__ import annotations

from typing import Any

import pytest
from mbedtls import _tls, tls

from simtrust.devices._transport import _OVER, CIPHERS

_V12: dict[str, Any] = {"lowest_supported_version": tls.DTLSVersion.DTLSv1_2,
                        "highest_supported_version": tls.DTLSVersion.DTLSv1_2}


def test_the_listing_is_memoised_and_unchanged() -> None:
    listing: Any = _tls.ciphers_available
    assert hasattr(listing, "cache_info")
    assert listing.__wrapped__() == listing() == tls.ciphers_available()
    misses = listing.cache_info().misses
    for _ in range(3):
        tls.ClientContext(tls.DTLSConfiguration(pre_shared_key=("id", b"k" * 16),
                                                ciphers=CIPHERS, **_V12))
    assert misses == listing.cache_info().misses


def test_a_suite_the_library_lacks_is_still_refused() -> None:
    with pytest.raises(NotImplementedError):
        tls.ClientContext(tls.DTLSConfiguration(pre_shared_key=("id", b"k" * 16),
                                                ciphers=("TLS-PSK-WITH-NO-SUCH-SUITE",), **_V12))


def _pump(src: Any, dst: Any) -> None:
    while out := src.peek_outgoing(16384):
        src.consume_outgoing(len(out))
        dst.receive_from_network(out)


def _steps(buffer: Any) -> None:
    while buffer._handshake_state is not _OVER:
        try:
            buffer.do_handshake()
        except tls.WantWriteError:
            continue
        except tls.WantReadError:
            return
        except tls.HelloVerifyRequest:  # the library reset the buffer: a new client id
            buffer.setcookieparam(b"127.0.0.1:5684")
            return


def test_psk_handshake_agrees_on_the_one_suite_both_offer() -> None:
    server = tls.ServerContext(tls.DTLSConfiguration(
        pre_shared_key_store={"dev": b"k" * 16}, validate_certificates=False,
        ciphers=CIPHERS, **_V12)).wrap_buffers()
    server.setcookieparam(b"127.0.0.1:5684")
    client = tls.ClientContext(tls.DTLSConfiguration(
        pre_shared_key=("dev", b"k" * 16), validate_certificates=False,
        ciphers=(CIPHERS[1],), **_V12)).wrap_buffers(None)
    for _ in range(20):  # the cookie exchange, then the four flights
        _steps(client)
        _pump(client, server)
        _steps(server)
        _pump(server, client)
        if client._handshake_state is _OVER and server._handshake_state is _OVER:
            break
    assert (_OVER, _OVER) == (client._handshake_state, server._handshake_state)
    assert CIPHERS[1] == server.cipher() == client.cipher()
