"""Links: mutual authentication with pinned node keys, encryption, tamper detection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError, DecryptionFailed, SimtrustError, UnknownKey
from simtrust.ledger.net import HandshakeFailed, SecureLink, accept_link, open_link
from simtrust.ledger.net import _transport as t

NET = b"testnet!"


def _pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


async def _pair(
    client_key: Ed25519PrivateKey,
    server_key: Ed25519PrivateKey,
    *,
    allowed: Callable[[bytes], bool],
    expected: bytes,
    client_net: bytes = NET,
) -> tuple[SecureLink | BaseException, SecureLink | BaseException]:
    accepted: asyncio.Future[SecureLink | BaseException] = asyncio.get_running_loop().create_future()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            link = await accept_link(reader, writer, network_id=NET, key=server_key,
                                     allowed=allowed)
        except (SimtrustError, asyncio.IncompleteReadError, OSError) as exc:
            writer.close()
            accepted.set_result(exc)
            return
        accepted.set_result(link)

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client: SecureLink | BaseException
        try:
            client = await open_link("127.0.0.1", port, network_id=client_net, key=client_key,
                                     expected_peer=expected, timeout=3)
        except (SimtrustError, asyncio.IncompleteReadError, OSError) as exc:
            client = exc
        return client, await asyncio.wait_for(accepted, 5)
    finally:
        server.close()


def _run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


def test_pinned_peers_exchange_encrypted_frames_both_ways() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(a, b, allowed=lambda k: k == _pub(a), expected=_pub(b))
        assert isinstance(client, SecureLink)
        assert isinstance(server, SecureLink)
        assert _pub(b) == client.peer_key
        assert _pub(a) == server.peer_key
        for size in (0, 1, 70_000):
            await client.send(b"x" * size)
            assert b"x" * size == await server.recv()
            await server.send(b"y" * size)
            assert b"y" * size == await client.recv()
        client.close()
        server.close()

    _run(go())


def test_unpinned_initiator_is_rejected_by_the_responder() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(a, b, allowed=lambda k: False, expected=_pub(b))
        assert isinstance(server, UnknownKey)
        assert not isinstance(client, SecureLink)

    _run(go())


def test_initiator_rejects_a_responder_with_another_key() -> None:
    a, b, pinned = (Ed25519PrivateKey.generate() for _ in range(3))

    async def go() -> None:
        client, server = await _pair(a, b, allowed=lambda k: True, expected=_pub(pinned))
        assert isinstance(client, UnknownKey)
        assert not isinstance(server, SecureLink)

    _run(go())


def test_peer_of_another_network_is_rejected() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(a, b, allowed=lambda k: True, expected=_pub(b),
                                     client_net=b"othernet")
        assert isinstance(server, HandshakeFailed)
        assert not isinstance(client, SecureLink)

    _run(go())


def test_tampered_frame_fails_authentication() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(a, b, allowed=lambda k: True, expected=_pub(b))
        assert isinstance(client, SecureLink)
        assert isinstance(server, SecureLink)
        sealed = client._tx.seal(b"hello")
        tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
        client._writer.write(tampered)
        await client._writer.drain()
        with pytest.raises(DecryptionFailed):
            await server.recv()
        client.close()
        server.close()

    _run(go())


def test_replayed_frame_fails_authentication() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(a, b, allowed=lambda k: True, expected=_pub(b))
        assert isinstance(client, SecureLink)
        assert isinstance(server, SecureLink)
        sealed = client._tx.seal(b"pay 1")
        client._writer.write(sealed + sealed)
        await client._writer.drain()
        assert b"pay 1" == await server.recv()
        with pytest.raises(DecryptionFailed):
            await server.recv()
        client.close()
        server.close()

    _run(go())


def test_an_impostor_cannot_complete_the_handshake_with_a_copied_hello() -> None:
    """A man in the middle who replays a pinned node's hello cannot sign the transcript."""
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    impostor = Ed25519PrivateKey.generate()

    async def go() -> None:
        # The impostor presents node a's public key but signs with its own key.

        real_raw = t._raw

        def lying_raw(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
            if key is impostor:
                return _pub(a)
            return real_raw(key)

        t._raw = lying_raw
        try:
            _client, server = await _pair(impostor, b, allowed=lambda k: k == _pub(a),
                                         expected=_pub(b))
        finally:
            t._raw = real_raw
        assert isinstance(server, HandshakeFailed)

    _run(go())


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_garbage_instead_of_a_hello_is_refused(data: bytes) -> None:
    b = Ed25519PrivateKey.generate()

    async def go() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()

        class _Writer:
            def write(self, _: bytes) -> None:
                return None

            async def drain(self) -> None:
                return None

        with pytest.raises((SimtrustError, asyncio.IncompleteReadError, DecodeError)):
            await accept_link(reader, _Writer(), network_id=NET, key=b,  # type: ignore[arg-type]
                              allowed=lambda k: True, timeout=2)

    asyncio.run(go())
