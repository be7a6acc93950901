"""What gateway instances share through the sharded Redis servers: the read cache, the
idempotency records and the login limits, on one ring of servers (``shards``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

from fitness.config import split_targets
from gateway.cache import ResponseCache
from gateway.idempotency import IdempotencyStore
from gateway.ratelimit import LoginGuard
from gateway.shards import ShardedRedis

DEFAULTS: dict[str, Any] = {
    "CACHE_REDIS_URLS": "redis://127.0.0.1:6380/0,redis://127.0.0.1:6381/0,redis://127.0.0.1:6382/0",
    # The ACL user is in the URLs (redis://gateway@host:port/0); its password is this.
    "CACHE_REDIS_PASSWORD": "",
    "CACHE_TIMEOUT_SECONDS": 0.2,
    "CACHE_PROBE_SECONDS": 1.0,
    "CACHE_TTL_SECONDS": 30.0,
    "IDEMPOTENCY_TTL_SECONDS": 24 * 3600,
    "LOGIN_FAILURES_PER_ACCOUNT": "10 per 15 minutes",
    "LOGIN_FAILURES_PER_ADDRESS": "50 per 15 minutes",
}


def init_app(app: Flask, settings: dict[str, Any]) -> list[Callable[[threading.Event], None]]:
    """Set up the ring and what lives on it; return the background loop (server probes).

    An idempotency claim outlives its request: it lasts twice the proxy's deadline.
    """
    shards = ShardedRedis(
        split_targets(settings["CACHE_REDIS_URLS"]),
        settings["CACHE_TIMEOUT_SECONDS"],
        settings["CACHE_PROBE_SECONDS"],
        password=settings["CACHE_REDIS_PASSWORD"],
    )
    app.extensions.update(
        shards=shards,
        cache=ResponseCache(shards, settings["CACHE_TTL_SECONDS"]),
        idempotency=IdempotencyStore(
            shards, settings["IDEMPOTENCY_TTL_SECONDS"], settings["UPSTREAM_DEADLINE_SECONDS"] * 2
        ),
        login_guard=LoginGuard(
            shards, settings["LOGIN_FAILURES_PER_ACCOUNT"], settings["LOGIN_FAILURES_PER_ADDRESS"]
        ),
    )
    return [shards.run_probes]
