"""Keep-alive HTTP connections to one replica, for the gateway's gevent worker.

geventhttpclient, with two additions the proxy's rerouting needs:

- a failure to connect (refused, timed out) raises ``NotConnected``: the request certainly did
  not reach the replica, so even a non-idempotent one may go to another;
- waiting for a free pooled connection is bounded by the connect timeout, like connecting is,
  and raises ``PoolBusy`` (also never sent, and no fault of the replica's).

The client's objects belong to gevent's hub: the gateway serves with the gevent worker (its live
sockets need it), and every request greenlet of a worker shares them.
"""

from __future__ import annotations

import gevent.socket
from gevent.lock import BoundedSemaphore
from geventhttpclient import HTTPClient
from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.url import URL


class NotConnected(ConnectionError):
    """The request was not sent: no connection to the replica could be had in time."""


class PoolBusy(NotConnected):
    """The request was not sent: every pooled connection to the replica stayed in use.

    Not the replica's failure (its breaker must not count it): this worker has that many
    requests in flight to it.
    """


class _Slots(BoundedSemaphore):
    """The pool's count of connections in use, whose wait for a free one is bounded."""

    def __init__(self, size: int, timeout: float):
        super().__init__(size)
        self.wait_seconds = timeout

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not super().acquire(blocking, self.wait_seconds if timeout is None else timeout):
            raise PoolBusy(f"no free connection within {self.wait_seconds}s")
        return True


class _Connections(ConnectionPool):
    """A connection pool whose connect failures say the request was never sent."""

    def __init__(
        self, host: str, port: int, size: int, connect_timeout: float, read_timeout: float
    ):
        super().__init__(
            host,
            port,
            host,
            port,
            size=size,
            connection_timeout=connect_timeout,
            network_timeout=read_timeout,
        )
        self._semaphore = _Slots(size, connect_timeout)

    def _create_socket(self) -> gevent.socket.socket:
        try:
            return super()._create_socket()
        except OSError as exc:
            raise NotConnected(f"{type(exc).__name__}: {exc}") from exc


class ReplicaClient(HTTPClient):
    """Pooled keep-alive connections to the replica at ``url`` (``http://host:port``).

    ``read_timeout`` bounds each wait on the socket (sending, or each part of the answer).
    """

    def __init__(self, url: str, connect_timeout: float, read_timeout: float, size: int):
        parsed = URL(url)
        port = parsed.port or 80
        super().__init__(
            parsed.host,
            port,
            connection_timeout=connect_timeout,
            network_timeout=read_timeout,
            concurrency=size,
        )
        # HTTPClient builds its pool itself and takes no pool class: ours replaces it (no
        # connection is made before the first request). geventhttpclient is pinned.
        self._connection_pool = _Connections(parsed.host, port, size, connect_timeout, read_timeout)
