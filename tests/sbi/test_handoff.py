"""The SBI master's connection dealer: connections go to the workers in turn over
SOCK_SEQPACKET channels (SCM_RIGHTS), a gone worker is skipped, and a handed-over
connection is served by the receiving process's HTTP/2 server like an accepted one."""

from __future__ import annotations

import queue
import socket
import time

import httpx

from simtrust.handoff import ConnectionReceiver
from simtrust.sbi import ConnectionDealer, SbiServer, create_sbi_app
from simtrust.subscriber import SubscriberServices

from ..subscriber.conftest import imsi


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def test_connections_are_dealt_in_turn_and_a_gone_worker_is_skipped() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    (a, a_worker), (b, b_worker), (c, c_worker) = _pair(), _pair(), _pair()
    c_worker.close()  # this worker is gone
    dealer = ConnectionDealer(listener, [a, None, b, c])
    clients = [socket.create_connection(listener.getsockname()) for _ in range(5)]
    try:
        for _ in clients:
            conn, _ = listener.accept()
            with conn:
                assert dealer.deal(conn)
        received = {"a": 0, "b": 0}
        for name, end in (("a", a_worker), ("b", b_worker)):
            end.setblocking(False)
            while True:
                try:
                    msg, fds, _, _ = socket.recv_fds(end, 16, 1)
                except BlockingIOError:
                    break
                assert 1 == len(fds)
                assert b"c" == msg
                socket.socket(fileno=fds[0]).close()
                received[name] += 1
        assert {"a": 3, "b": 2} == received  # a, b, (c gone), a, b, a
        assert [3, 0, 2, 0] == dealer.dealt
    finally:
        for s in (*clients, a, a_worker, b, b_worker, c, listener):
            s.close()


def test_a_thread_receiver_outlives_idle_spells_and_ends_with_the_master() -> None:
    """The bootstrap workers' receiver: waiting longer than its poll interval is not
    the end of the channel; the master's end closing is."""
    listener = socket.create_server(("127.0.0.1", 0))
    master, worker = _pair()
    got: queue.Queue[socket.socket] = queue.Queue()
    receiver = ConnectionReceiver(worker, got.put).start()
    dealer = ConnectionDealer(listener, [master])
    client = socket.create_connection(listener.getsockname())
    try:
        time.sleep(1.0)  # four of the receiver's 0.25 s polls with nothing to receive
        assert not receiver.ended.is_set()
        conn, _ = listener.accept()
        with conn:
            assert dealer.deal(conn)
        served = got.get(timeout=30)
        served.sendall(b"x")
        assert b"x" == client.recv(1)
        served.close()
        master.close()
        assert receiver.ended.wait(timeout=30)
    finally:
        receiver.stop()
        for s in (client, worker, listener):
            s.close()


def test_a_handed_over_connection_is_served_over_h2(subs: SubscriberServices) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    ours, theirs = _pair()
    server = SbiServer(create_sbi_app(subs.udm, None), "127.0.0.1", 0, lab_mode=True)
    server.start_handed(theirs)
    dealer = ConnectionDealer(listener, [ours]).start()
    port = listener.getsockname()[1]
    try:
        with httpx.Client(http1=False, http2=True, timeout=15) as client:
            r = client.post(f"http://127.0.0.1:{port}/nudm-ueau/v1/{imsi(1).supi}/"
                            "security-information/generate-auth-data",
                            json={"servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",
                                  "ausfInstanceId": "6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"})
        assert 200 == r.status_code, r.text
        assert "HTTP/2" == r.http_version
        assert "5G_AKA" == r.json()["authType"]
        assert [1] == dealer.dealt
    finally:
        dealer.stop()
        server.stop()
        ours.close()
        theirs.close()
