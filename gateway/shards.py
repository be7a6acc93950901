"""Redis servers sharded by consistent hashing; a dead server leaves the ring until it answers.

The ring is uhashring's (160 points per node, ketama-compatible), so adding or removing one of N
servers moves only about 1/N of the keys. A ring is never mutated in place: membership changes
build a new ring and swap the reference, so request threads never see a half-built continuum.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import redis
from uhashring import HashRing

from fitness.redisconn import check_credentials

log = logging.getLogger(__name__)

Result = TypeVar("Result")

# The errors that mean "this server is unreachable", as opposed to a bad command.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


class ShardedRedis:
    """Pick the Redis server that owns a key; drop unreachable servers from the ring."""

    def __init__(
        self,
        urls: list[str],
        timeout_seconds: float = 0.2,
        probe_seconds: float = 1.0,
        password: str = "",
    ):
        # The password is given apart from the URLs (the ring's keys, logged and shown on
        # /status): rotating it must neither move keys nor put it in a log line.
        for url in urls:
            check_credentials(url, password)
        self.clients = {
            url: redis.Redis.from_url(
                url,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                max_connections=128,
                password=password or None,
            )
            for url in urls
        }
        self.probe_seconds = probe_seconds
        self._live = set(urls)
        self._ring = HashRing(nodes=sorted(urls)) if urls else None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.clients)

    def node_for(self, key: str) -> str | None:
        """Return the URL of the live server that owns ``key``, or None when none is live."""
        ring = self._ring
        return ring.get_node(key) if ring is not None else None

    def live_nodes(self) -> list[str]:
        """Return the servers currently in the ring."""
        return sorted(self._live)

    def run(self, key: str, operation: Callable[[str], Result]) -> Result | None:
        """Run ``operation(url)`` for the server owning ``key``; None if no server can.

        An unreachable server leaves the ring and the operation is tried once more on the
        key's new owner. Callers treat None as a miss: the cache never fails a request.
        """
        for _attempt in range(2):
            url = self.node_for(key)
            if url is None:
                return None
            try:
                return operation(url)
            except UNREACHABLE as exc:
                self.mark_down(url, exc)
            except redis.RedisError as exc:
                log.warning("cache operation on %s failed: %s", url, exc)
                return None
        return None

    def mark_down(self, url: str, reason: BaseException | str) -> None:
        """Take ``url`` out of the ring; its keys move to the remaining servers."""
        with self._lock:
            if url not in self._live:
                return
            self._live.discard(url)
            self._rebuild()
        log.warning(
            "cache node %s unreachable (%s); its keys move to %d remaining node(s)",
            url,
            reason,
            len(self._live),
            extra={"event.action": "cache-node-down", "cache.node": url},
        )

    def _bring_back(self, url: str) -> None:
        with self._lock:
            self._live.add(url)
            self._rebuild()
        log.info(
            "cache node %s answers again; back in the ring",
            url,
            extra={"event.action": "cache-node-up", "cache.node": url},
        )

    def _rebuild(self) -> None:
        self._ring = HashRing(nodes=sorted(self._live)) if self._live else None

    def probe_once(self) -> None:
        """Ping every server out of the ring and take back those that answer."""
        for url in sorted(set(self.clients) - self._live):
            try:
                self.clients[url].ping()
            except redis.RedisError:
                continue
            self._bring_back(url)

    def run_probes(self, stopped: threading.Event) -> None:
        """Probe dead servers every few seconds until ``stopped`` is set."""
        while not stopped.wait(self.probe_seconds):
            self.probe_once()
