"""Cache of users' reads (statistics, goals, profile, workouts), invalidated by their writes.

Every entry of a user lives under a version number: ``fgt:cache:{user}:v`` holds the version and
an entry's key embeds the version it was read under. A write bumps the version, which orphans
every entry of that user at once (they expire on their own). Because a reader stores under the
version it saw *before* asking the service, a read racing with a write can never store stale data
under the new version.

Writes the gateway does not see (a goal achieved by the activity service reporting late) are
bounded by the entry time-to-live, as are entries on a server that left or rejoined the ring.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.shards import ShardedRedis

log = logging.getLogger(__name__)

VERSION_TTL_MS = 24 * 3600 * 1000

# One round trip: read the user's version and the entry stored under it.
_LOOKUP = """
local version = redis.call('GET', KEYS[1]) or '0'
return {version, redis.call('GET', KEYS[1] .. ':' .. version .. ':' .. ARGV[1])}
"""


@dataclass(frozen=True)
class Lookup:
    """What a cache lookup found: the body, if any, and the version to store a fill under."""

    body: bytes | None
    version: str | None


class ResponseCache:
    """Per-user read cache over sharded Redis."""

    def __init__(self, shards: ShardedRedis, ttl_seconds: float):
        self.shards = shards
        self.ttl_ms = int(ttl_seconds * 1000)
        self._lookup = {
            url: client.register_script(_LOOKUP) for url, client in shards.clients.items()
        }

    @property
    def enabled(self) -> bool:
        return self.shards.enabled and self.ttl_ms > 0

    def lookup(self, user_id: str, path: str) -> Lookup:
        """Return the cached body of ``path`` for ``user_id`` (None on a miss)."""
        prefix = _prefix(user_id)
        found = self.shards.run(prefix, lambda url: self._lookup[url](keys=[prefix], args=[path]))
        if found is None:
            return Lookup(None, None)
        version, body = found
        return Lookup(body, version.decode())

    def store(self, user_id: str, path: str, version: str | None, body: bytes) -> None:
        """Keep ``body`` as the answer to ``path`` under the version seen before the read."""
        if version is None:
            return
        key = f"{_prefix(user_id)}:{version}:{path}"
        self.shards.run(
            _prefix(user_id), lambda url: self.shards.clients[url].set(key, body, px=self.ttl_ms)
        )

    def invalidate(self, user_id: str) -> None:
        """Orphan every cached read of ``user_id`` after a write that may have changed them."""
        if not self.enabled:
            return
        prefix = _prefix(user_id)

        def bump(url: str) -> list:
            with self.shards.clients[url].pipeline(transaction=True) as pipe:
                pipe.incr(prefix)
                pipe.pexpire(prefix, VERSION_TTL_MS)
                return pipe.execute()

        if self.shards.run(prefix, bump) is None:
            log.warning(
                "could not invalidate the cache of user %s; entries expire on their own", user_id
            )


def _prefix(user_id: str) -> str:
    # The braces are a Redis Cluster hash tag: one user's keys would stay on one cluster slot.
    return f"fgt:cache:{{{user_id}}}:v"
