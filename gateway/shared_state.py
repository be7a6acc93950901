"""What gateway instances share through the sharded Redis servers: the read cache, the
idempotency records and the login limits, on one ring of servers (``shards``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

from fitness import config
from fitness.config import split_targets
from gateway.cache import ResponseCache
from gateway.idempotency import IdempotencyStore
from gateway.ratelimit import LoginGuard
from gateway.shards import ShardedRedis


@dataclass(frozen=True)
class Settings(config.Settings):
    """The ring of cache Redis servers, and how long what lives on it is kept."""

    cache_redis_urls: str = (
        "redis://127.0.0.1:6380/0,redis://127.0.0.1:6381/0,redis://127.0.0.1:6382/0"
    )
    # The ACL user is in the URLs (redis://gateway@host:port/0); its password is this.
    cache_redis_password: str = field(default="", repr=False)  # never in a log line or traceback
    cache_timeout_seconds: float = 0.2
    cache_probe_seconds: float = 1.0
    cache_ttl_seconds: float = 30.0
    idempotency_ttl_seconds: int = 24 * 3600
    login_failures_per_account: str = "10 per 15 minutes"
    login_failures_per_address: str = "50 per 15 minutes"
    # The proxy's (``gateway.proxy``): an idempotency claim lasts twice as long.
    upstream_deadline_seconds: float = 15.0


def init_app(
    app: Flask, settings: Settings | None = None
) -> list[Callable[[threading.Event], None]]:
    """Set up the ring and what lives on it; return the background loop (server probes).

    An idempotency claim outlives its request: it lasts twice the proxy's deadline.
    """
    settings = settings or Settings.from_env()
    shards = ShardedRedis(
        split_targets(settings.cache_redis_urls),
        settings.cache_timeout_seconds,
        settings.cache_probe_seconds,
        password=settings.cache_redis_password,
    )
    claim_seconds = settings.upstream_deadline_seconds * 2
    app.extensions.update(
        shards=shards,
        cache=ResponseCache(shards, settings.cache_ttl_seconds),
        idempotency=IdempotencyStore(shards, settings.idempotency_ttl_seconds, claim_seconds),
        login_guard=LoginGuard(
            shards, settings.login_failures_per_account, settings.login_failures_per_address
        ),
    )
    return [shards.run_probes]
