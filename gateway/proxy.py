"""Forward a request to one replica of a service, rerouting failures when that is safe."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from geventhttpclient.response import HTTPParseError

from fitness import config
from fitness.config import split_targets
from fitness.errors import Unavailable
from gateway.connections import NotConnected, PoolBusy, ReplicaClient
from gateway.uploads import SpooledBody
from gateway.upstream import BreakerSettings, Pool, Replica, UpstreamFailure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings(config.Settings):
    """The proxy's settings: which replicas, how long to wait, when a breaker opens."""

    user_http_replicas: str = "http://127.0.0.1:5000,http://127.0.0.1:5010"
    activity_http_replicas: str = "http://127.0.0.1:5001,http://127.0.0.1:5011"
    upstream_connect_timeout_seconds: float = 1.0
    upstream_read_timeout_seconds: float = 10.0
    # All attempts of one request together: with reroutes, three read timeouts would keep a
    # client waiting 30 s; past this the gateway answers 504 instead of trying another replica.
    upstream_deadline_seconds: float = 15.0
    upstream_max_attempts: int = 3
    health_interval_seconds: float = 2.0
    health_timeout_seconds: float = 1.0
    breaker_failures: int = 5
    breaker_window_seconds: float = 10.0
    breaker_reset_seconds: float = 5.0
    retry_after_seconds: int = 5


# Hop-by-hop and framing headers are the proxy's own business (RFC 9110, section 7.6.1).
_DROPPED_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "content-length",
    "host",
}
_IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
# POSTs that change nothing in the service: a login only checks a password and signs a token,
# so sending it again to another replica is as safe as a GET.
_SAFE_POSTS = {"/users/login"}
# A service's 503 with this header was refused before any work (user_service/passwords.py).
LOAD_SHED_HEADER = "X-Load-Shed"


# Connections to one replica that a gateway worker's requests share (kept alive when idle):
# past this many in flight, a request waits up to the connect timeout for one, then tries
# another replica. Well under a service worker's 1,000 connections, with two gateways.
UPSTREAM_POOL_SIZE = 256


@dataclass
class UpstreamResponse:
    status: int
    body: bytes
    headers: dict[str, str]


class NoReplicaAvailable(Unavailable):
    """Every replica of a service is down, open-circuited or already failed this request."""

    code = "service_unavailable"

    def __init__(self, service: str, retry_after: int):
        super().__init__(f"No {service} replica is available right now; retry in {retry_after}s.")
        self.service = service
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Proxy:
    """Pooled keep-alive connections to every replica, with timeouts on every call.

    The client is geventhttpclient (``gateway.connections``): the gateway's worker is gevent,
    and its C response parser costs a fourth of urllib3's CPU per request, which was a fourth
    of the gateway's.
    """

    def __init__(self, pools: dict[str, Pool], settings: Settings):
        self.pools = pools
        self.settings = settings
        self._clients: dict[tuple[str, float], ReplicaClient] = {}

    def forward(
        self,
        service: str,
        method: str,
        path: str,
        body: bytes | SpooledBody,
        headers: dict[str, str],
    ) -> UpstreamResponse:
        """Send the request to a replica of ``service``, trying others when that is safe.

        A request that never reached a replica (connection refused, connect timeout) may go
        to another. One that may have been applied goes again only if it is idempotent (by
        method, because it carries an Idempotency-Key, or because it changes nothing: a login).
        """
        pool = self.pools[service]
        idempotent = (
            method in _IDEMPOTENT_METHODS
            or "Idempotency-Key" in headers
            or (method == "POST" and path.split("?")[0] in _SAFE_POSTS)
        )
        tried: set[str] = set()
        last_answer: UpstreamResponse | None = None
        extra = body.extra_seconds if isinstance(body, SpooledBody) else 0.0
        deadline = time.monotonic() + self.settings.upstream_deadline_seconds + extra
        read_timeout = self.settings.upstream_read_timeout_seconds + extra
        while len(tried) < self.settings.upstream_max_attempts:
            if tried and time.monotonic() + read_timeout > deadline:
                # Another full wait would outlive the request's deadline.
                if not last_answer:
                    return _gateway_error(timed_out=True)
                break
            replica = pool.acquire(tried)
            if replica is None:
                break
            tried.add(replica.url)
            response, retry = self._attempt(
                replica, method, path, body, headers, idempotent, read_timeout
            )
            if response is not None and not retry:
                return response
            last_answer = response or last_answer
        # A replica's own 5xx says more than "no replica available" when nobody else could answer.
        if last_answer is not None:
            return last_answer
        raise NoReplicaAvailable(service, self.settings.retry_after_seconds)

    def _attempt(
        self,
        replica: Replica,
        method: str,
        path: str,
        body: bytes | SpooledBody,
        headers: dict[str, str],
        idempotent: bool,
        read_timeout: float,
    ) -> tuple[UpstreamResponse | None, bool]:
        """Return (response or None, whether to try another replica)."""
        if isinstance(body, SpooledBody):
            headers = {**headers, "Content-Length": str(body.length)}
        client = self._client(replica.url, read_timeout)
        try:
            with client.request(
                method,
                path,
                body=body.rewound() if isinstance(body, SpooledBody) else body,
                headers=headers,
            ) as upstream:
                status, data = upstream.status_code, upstream.read()
                answer_headers = {
                    k: v for k, v in upstream.items() if k.lower() not in _DROPPED_HEADERS
                }
        except ValueError:  # a request that cannot be written (never sent): not the replica's fault
            replica.release(None)
            log.exception("could not send %s %s to %s", method, path, replica.url)
            return _gateway_error(timed_out=False), False
        except (OSError, HTTPParseError) as exc:
            # A busy pool is no failure of the replica's (healthy, only busy: like a shed request).
            busy = isinstance(exc, PoolBusy)
            replica.release(None if busy else UpstreamFailure(f"{type(exc).__name__}: {exc}"))
            if isinstance(exc, NotConnected) or idempotent:
                log.warning("rerouting %s %s away from %s: %s", method, path, replica.url, exc)
                return None, True
            return _gateway_error(timed_out=isinstance(exc, TimeoutError)), False
        response = UpstreamResponse(status, data, answer_headers)
        if status == 503 and LOAD_SHED_HEADER in answer_headers:
            # Shed before doing anything (a full hashing pool): the replica is healthy, and any
            # request, even a non-idempotent one, may go to another replica.
            replica.release(None)
            return response, True
        if status >= 500:
            replica.release(UpstreamFailure(f"HTTP {status}"))
            return response, idempotent
        replica.release(None)
        return response, False

    def _client(self, url: str, read_timeout: float) -> ReplicaClient:
        """Return the pooled client for ``url`` that waits ``read_timeout`` for an answer.

        Requests share one client per replica; uploads, which may wait longer, share one per
        power of two of seconds they may wait (a handful per replica whatever their sizes).
        """
        if read_timeout > self.settings.upstream_read_timeout_seconds:
            read_timeout = float(2 ** math.ceil(math.log2(read_timeout)))
        key = (url, read_timeout)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = ReplicaClient(
                url,
                connect_timeout=self.settings.upstream_connect_timeout_seconds,
                read_timeout=read_timeout,
                size=UPSTREAM_POOL_SIZE,
            )
        return client


def _gateway_error(timed_out: bool) -> UpstreamResponse:
    status, code = (504, "upstream_timeout") if timed_out else (502, "upstream_failed")
    message = (
        "The service did not answer in time; the request may or may not have been applied. "
        "Retry with an Idempotency-Key to make that safe."
    )
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return UpstreamResponse(status, body, {"Content-Type": "application/json"})


def init_app(
    app: Flask, settings: Settings | None = None
) -> list[Callable[[threading.Event], None]]:
    """Set up the replica pools of both services, the proxy and the health checker on
    ``app``; return the background loop (health checks)."""
    from gateway.health import HealthChecker

    settings = settings or Settings.from_env()
    breaker = BreakerSettings(
        failures=settings.breaker_failures,
        window_seconds=settings.breaker_window_seconds,
        reset_seconds=settings.breaker_reset_seconds,
    )
    pools = {
        service: Pool(service, [Replica(service, url, breaker) for url in split_targets(urls)])
        for service, urls in (
            ("user_service", settings.user_http_replicas),
            ("activity_service", settings.activity_http_replicas),
        )
    }
    proxy = Proxy(pools, settings)
    checker = HealthChecker(
        list(pools.values()), settings.health_interval_seconds, settings.health_timeout_seconds
    )
    app.extensions.update(pools=pools, proxy=proxy, health=checker)
    return [checker.run]
