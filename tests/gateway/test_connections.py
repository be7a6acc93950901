"""The proxy's connections to a replica: what counts as "never sent", and bounded waits.

Rerouting a non-idempotent write is safe only when it certainly did not reach the replica, so
these failures must say so (``NotConnected``), and a read timeout must not.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from gateway import proxy as proxy_module
from gateway.connections import NotConnected, PoolBusy, ReplicaClient
from gateway.proxy import Proxy, Settings
from gateway.upstream import BreakerSettings, Pool, Replica


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answering_server(body: bytes, pause: float = 0.0) -> socket.socket:
    """A replica that answers each request on a connection with ``body`` (keep-alive), the
    body ``pause`` seconds after the head."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                conn.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n")
                time.sleep(pause)
                conn.sendall(body)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server


def test_a_refused_connection_is_never_sent():
    client = ReplicaClient(f"http://127.0.0.1:{_closed_port()}", 0.5, 1.0, size=2)
    with pytest.raises(NotConnected):
        client.request("POST", "/users/register", body=b"{}")


def test_a_read_timeout_is_not_mistaken_for_never_sent():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        client = ReplicaClient(f"http://127.0.0.1:{silent.getsockname()[1]}", 0.5, 0.3, size=2)
        with pytest.raises(TimeoutError) as raised:
            client.request("POST", "/users/register", body=b"{}")
        assert not isinstance(raised.value, NotConnected)
    finally:
        silent.close()


def test_waiting_for_a_free_connection_is_bounded_and_never_sent():
    server = _answering_server(b"{}", pause=1.0)
    try:
        client = ReplicaClient(f"http://127.0.0.1:{server.getsockname()[1]}", 0.3, 2.0, size=1)
        held = client.request("GET", "/a")  # its body not come yet: the connection is in use
        started = time.monotonic()
        with pytest.raises(PoolBusy):
            client.request("GET", "/b")
        assert time.monotonic() - started < 2.0
        assert held.read() == b"{}"  # read in full: the connection is free again
        with client.request("GET", "/c") as answer:
            assert answer.status_code == 200
            assert answer.read() == b"{}"
    finally:
        server.close()


def test_a_write_that_never_reached_a_replica_goes_to_the_next_one():
    server = _answering_server(b'{"ok": true}')
    try:
        urls = [f"http://127.0.0.1:{_closed_port()}", f"http://127.0.0.1:{server.getsockname()[1]}"]
        replicas = [Replica("user_service", url, BreakerSettings()) for url in urls]
        proxy = Proxy({"user_service": Pool("user_service", replicas)}, Settings())
        answers = [
            proxy.forward("user_service", "POST", "/users/register", b"{}", {}) for _ in range(2)
        ]
    finally:
        server.close()
    assert [answer.status for answer in answers] == [200, 200]
    assert all(answer.body == b'{"ok": true}' for answer in answers)


def test_a_busy_pool_sends_the_request_elsewhere_and_does_not_count_against_the_replica(
    monkeypatch,
):
    monkeypatch.setattr(proxy_module, "UPSTREAM_POOL_SIZE", 1)
    slow, quick = _answering_server(b'"slow"', pause=1.0), _answering_server(b'"quick"')
    try:
        urls = [f"http://127.0.0.1:{server.getsockname()[1]}" for server in (slow, quick)]
        busy, other = (Replica("user_service", url, BreakerSettings(failures=1)) for url in urls)
        settings = Settings(upstream_connect_timeout_seconds=0.2)
        proxy = Proxy({"user_service": Pool("user_service", [busy, other])}, settings)
        held = proxy._client(busy.url, settings.upstream_read_timeout_seconds).request("GET", "/a")
        busy.in_flight = -10  # so that the balancer picks the busy replica first
        answer = proxy.forward("user_service", "POST", "/users/register", b"{}", {})
        assert held.read() == b'"slow"'
    finally:
        slow.close()
        quick.close()
    assert (answer.status, answer.body) == (200, b'"quick"')
    assert busy.breaker_state == "closed" and not busy.last_error
