"""The SBI's own HTTP/2 server (RFC 9113) seen from a raw ``h2`` client on a socket.

Many streams on one connection (what an AUSF does), answers and problems per
the TS 29.503 OpenAPI, HTTP/1.1 on the h2c port, TLS that negotiated no ``h2``.
"""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import h2.connection
import h2.events
import httpx
from referencing import Registry

from simtrust.runtime import Runtime
from simtrust.sbi import SbiServer, create_sbi_app
from simtrust.subscriber import SubscriberServices

from ..diameter.reference import check_5g_he_av
from ..subscriber.conftest import imsi
from ..subscriber.test_nudm import check, registry  # noqa: F401 - the fixture is used by name
from .conftest import Udm, make_cert

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
BODY = json.dumps({"servingNetworkName": SNN,
                   "ausfInstanceId": "6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"}).encode()


def _exchange(sock: socket.socket, requests: list[tuple[str, bytes, bytes]],
              ) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Send every (path, content type, body) at once on new streams; (status, headers, body)."""
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    ids = []
    for path, ctype, body in requests:
        sid = conn.get_next_available_stream_id()
        ids.append(sid)
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", path),
                                (":authority", "udm.test"), ("content-type", ctype.decode()),
                                ("content-length", str(len(body)))])
        conn.send_data(sid, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    answers: dict[int, list[object]] = {sid: [0, {}, b""] for sid in ids}
    ended: set[int] = set()
    while len(ended) < len(ids):
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = dict(event.headers)
                answers[event.stream_id][0] = int(headers[b":status"])
                answers[event.stream_id][1] = headers
            elif isinstance(event, h2.events.DataReceived):
                answers[event.stream_id][2] += event.data  # type: ignore[operator]
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                raise AssertionError(f"stream {event.stream_id} reset: {event.error_code}")
        sock.sendall(conn.data_to_send())
    return [(int(a[0]), a[1], bytes(a[2])) for a in (answers[sid] for sid in ids)]  # type: ignore[arg-type, call-overload]


def test_many_streams_on_one_connection_each_get_their_answer(
    udm: Udm, registry: Registry,  # noqa: F811
) -> None:
    good = f"/nudm-ueau/v1/{imsi(1).supi}/security-information/generate-auth-data"
    unknown = f"/nudm-ueau/v1/{imsi(999).supi}/security-information/generate-auth-data"
    requests = [(good, b"application/json", BODY)] * 20 + [
        (unknown, b"application/json", BODY),
        (good, b"text/plain", BODY),
        ("/nudm-ueau/v1/imsi-12/security-information/generate-auth-data",
         b"application/json", BODY),
    ]
    items = udm.subs.auth.group_commit.items
    with socket.create_connection(("127.0.0.1", int(udm.base.rsplit(":", 1)[1]))) as sock:
        sock.settimeout(15)
        answers = _exchange(sock, requests)
    rands = set()
    for status, headers, body in answers[:20]:
        assert 200 == status
        assert b"application/json" == headers[b"content-type"]
        result = json.loads(body)
        check(registry, "TS29503_Nudm_UEAU.yaml", "AuthenticationInfoResult", result)
        av = result["authenticationVector"]
        check_5g_he_av(bytes.fromhex(av["rand"]), bytes.fromhex(av["xresStar"]),
                       bytes.fromhex(av["autn"]), bytes.fromhex(av["kausf"]), SNN)
        rands.add(av["rand"])
    assert 20 == len(rands)
    assert 20 == udm.subs.auth.group_commit.items - items  # one SQN advance each, no more
    for (status, headers, body), (want, cause) in zip(
        answers[20:], [(404, "USER_NOT_FOUND"), (415, "UNSUPPORTED_MEDIA_TYPE"),
                       (400, "MANDATORY_IE_INCORRECT")], strict=True):
        assert want == status
        assert b"application/problem+json" == headers[b"content-type"]
        problem = json.loads(body)
        check(registry, "TS29571_CommonData.yaml", "ProblemDetails", problem)
        assert cause == problem["cause"]


def test_http1_on_the_h2c_port_is_refused_and_the_server_goes_on(udm: Udm) -> None:
    port = int(udm.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(15)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: udm.test\r\n\r\n")
        seen = b""
        while chunk := sock.recv(65536):
            seen += chunk
    assert b"HTTP/1.1 200" not in seen
    assert seen[3:4] in (b"\x04", b"\x07")  # the server's SETTINGS, then GOAWAY; closed
    with httpx.Client(base_url=udm.base, http1=False, http2=True, timeout=15) as client:
        r = client.post(f"/nudm-ueau/v1/{imsi(1).supi}/security-information/"
                        "generate-auth-data", content=BODY,
                        headers={"content-type": "application/json"})
    assert 200 == r.status_code


def test_tls_without_h2_in_alpn_is_closed(sqlite_runtime: Runtime, subs: SubscriberServices,
                                          tmp_path: Path) -> None:
    ca = make_cert(tmp_path, "ca", ca=True)
    make_cert(tmp_path, "udm", ca)
    server = SbiServer(create_sbi_app(subs.udm, None), "127.0.0.1", 0, lab_mode=True,
                       cert=tmp_path / "udm.crt", key=tmp_path / "udm.key")
    _, port = server.start()
    try:
        for offered, served in ((["http/1.1"], False), (["h2", "http/1.1"], True)):
            ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
            ctx.check_hostname = False
            ctx.set_alpn_protocols(offered)
            with (socket.create_connection(("127.0.0.1", port), timeout=15) as raw,
                  ctx.wrap_socket(raw) as tls):
                assert ("h2" if served else None) == tls.selected_alpn_protocol()
                tls.sendall(h2_preface())
                first = tls.recv(65536)
                # h2: the server's SETTINGS frame (type 4); otherwise closed unanswered
                assert (first[3:4] == b"\x04") if served else first == b""
    finally:
        server.stop()


def h2_preface() -> bytes:
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    return conn.data_to_send()
