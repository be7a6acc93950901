"""Connections to the durable ("state") Redis: one URL, or Sentinels that name the primary.

``redis://host:port/db`` connects to one server. ``redis+sentinel://h1:p1,h2:p2/master/db``
asks those Sentinels for the current primary of ``master`` on every new connection, so after a
failover the client follows the new primary (redis-py's ``Sentinel.master_for``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"


def live_user_channel(user_id: str) -> str:
    """Return the channel whose messages reach every live connection of ``user_id``."""
    return f"fgt:live:u:{user_id}"


def state_redis(url: str, timeout_seconds: float, max_connections: int = 256) -> redis.Redis:
    """Return a client of the state Redis at ``url``; every call has ``timeout_seconds``."""
    options = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "max_connections": max_connections,
    }
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        # Blocking: with thousands of greenlets a burst waits (up to the timeout) for a free
        # connection instead of failing at once with "Too many connections".
        pool = redis.BlockingConnectionPool.from_url(url, timeout=timeout_seconds, **options)
        return redis.Redis(connection_pool=pool)
    master, _, db = parts.path.strip("/").partition("/")
    if not master:
        example = f"{SENTINEL_SCHEME}://h1:26379,h2:26379/mymaster/0"
        raise ValueError(f"{url!r} does not name the monitored primary, e.g. {example}")
    sentinels = [_host_port(item) for item in parts.netloc.split(",") if item]
    sentinel = Sentinel(
        sentinels,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        sentinel_kwargs={"socket_timeout": timeout_seconds},
    )
    return sentinel.master_for(master, db=int(db or 0), **options)


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    return (host or item), int(port or 26379)
