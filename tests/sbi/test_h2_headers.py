"""The SBI server's one-pass check of request header blocks (RFC 9113 §8.2-8.3).

``simtrust.sbi._h2.malformed`` replaces h2's inbound header validation; h2's own
``validate_headers`` is the reference: on random header blocks both must refuse
the same ones. A malformed request on a live connection is a stream error
(RST_STREAM PROTOCOL_ERROR) and the connection goes on serving.
"""

from __future__ import annotations

import socket

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
from h2.errors import ErrorCodes
from h2.utilities import HeaderValidationFlags, validate_headers
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.sbi._h2 import malformed

from ..subscriber.conftest import imsi
from .conftest import Udm
from .test_h2_server import BODY, _exchange

_REQUEST = HeaderValidationFlags(is_client=False, is_trailer=False, is_response_header=False,
                                 is_push_promise=False)
_TRAILER = HeaderValidationFlags(is_client=False, is_trailer=True, is_response_header=False,
                                 is_push_promise=False)
_GOOD = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/nudm-ueau/v1/x"),
         (b":authority", b"udm.test"), (b"content-type", b"application/json")]


def _h2_refuses(headers: list[tuple[bytes, bytes]], flags: HeaderValidationFlags) -> bool:
    try:
        list(validate_headers(headers, flags))
    except h2.exceptions.ProtocolError:
        return True
    return False


_names = st.sampled_from([b":method", b":scheme", b":path", b":authority", b":status",
                          b":bogus", b"host", b"te", b"connection", b"keep-alive",
                          b"content-type", b"Content-Type", b"x-a", b"x:b", b"", b"a b",
                          b"x\x7f"])
_values = st.sampled_from([b"", b"POST", b"GET", b"CONNECT", b"http", b"/p", b"udm.test",
                           b"other", b"trailers", b"TRAILERS", b"gzip", b" x", b"x ",
                           b"a\tb", b"\tx", b"a\rb", b"a\nb", b"a\x00b", b"\x80\xff"])
_headers = st.lists(st.tuples(_names, _values), max_size=8)


@settings(max_examples=3000, deadline=None)
@given(prefix=st.lists(st.sampled_from(_GOOD), max_size=5), more=_headers)
def test_malformed_refuses_what_h2_refuses(prefix: list[tuple[bytes, bytes]],
                                           more: list[tuple[bytes, bytes]]) -> None:
    headers = prefix + more
    # :status in a request (h2 refuses it as response-only) is refused by both.
    assert (malformed(headers) is not None) == _h2_refuses(headers, _REQUEST)


@settings(max_examples=1000, deadline=None)
@given(headers=_headers)
def test_malformed_trailers_as_h2(headers: list[tuple[bytes, bytes]]) -> None:
    assert (malformed(headers, trailers=True) is not None) == _h2_refuses(headers, _TRAILER)


@pytest.mark.parametrize("bad", [
    [*_GOOD, (b"Upper", b"x")], [*_GOOD, (b"x", b" padded")], [*_GOOD, (b"te", b"gzip")],
    [*_GOOD, (b"connection", b"close")], [*_GOOD[:2], (b":path", b""), *_GOOD[3:]],
    [_GOOD[0], (b"x", b"y"), *_GOOD[1:]], [*_GOOD, (b"host", b"elsewhere")], _GOOD[:3],
])
def test_each_rule(bad: list[tuple[bytes, bytes]]) -> None:
    assert malformed(_GOOD) is None
    assert malformed(bad) is not None
    assert _h2_refuses(bad, _REQUEST)


def test_a_malformed_request_resets_its_stream_only(udm: Udm) -> None:
    port = int(udm.base.rsplit(":", 1)[1])
    path = f"/nudm-ueau/v1/{imsi(1).supi}/security-information/generate-auth-data"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(15)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            validate_outbound_headers=False, normalize_outbound_headers=False))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", path),
                              (":authority", "udm.test"), ("content-type", "application/json"),
                              ("Connection", "keep-alive")], end_stream=True)
        sock.sendall(conn.data_to_send())
        reset = None
        while reset is None:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamReset):
                    reset = event
                assert not isinstance(event, h2.events.ResponseReceived)
            sock.sendall(conn.data_to_send())
        assert 1 == reset.stream_id
        assert ErrorCodes.PROTOCOL_ERROR == reset.error_code
        # The same connection (a new h2 client state on it would differ): a fresh one
        # after it still serves, and the server process is unharmed.
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(15)
        [(status, _, _)] = _exchange(sock, [(path, b"application/json", BODY)])
    assert 200 == status
