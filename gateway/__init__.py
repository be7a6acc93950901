"""The gateway: the one public door, routing to healthy replicas behind circuit breakers."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from fitness import serving, web
from fitness.config import split_targets

SERVICE_NAME = "gateway"

DEFAULTS: dict[str, Any] = {
    "HTTP_PORT": 8080,
    "GRPC_PORT": 0,
    "WORKERS": 1,
    "THREADS": 64,
    "USER_HTTP_REPLICAS": "http://127.0.0.1:5000,http://127.0.0.1:5010",
    "ACTIVITY_HTTP_REPLICAS": "http://127.0.0.1:5001,http://127.0.0.1:5011",
    "UPSTREAM_CONNECT_TIMEOUT_SECONDS": 1.0,
    "UPSTREAM_READ_TIMEOUT_SECONDS": 10.0,
    "UPSTREAM_MAX_ATTEMPTS": 3,
    "HEALTH_INTERVAL_SECONDS": 2.0,
    "HEALTH_TIMEOUT_SECONDS": 1.0,
    "BREAKER_FAILURES": 5,
    "BREAKER_WINDOW_SECONDS": 10.0,
    "BREAKER_RESET_SECONDS": 5.0,
    "RETRY_AFTER_SECONDS": 5,
    "CACHE_REDIS_URLS": "redis://127.0.0.1:6380/0,redis://127.0.0.1:6381/0,redis://127.0.0.1:6382/0",
    "CACHE_TIMEOUT_SECONDS": 0.2,
    "CACHE_PROBE_SECONDS": 1.0,
    "CACHE_TTL_SECONDS": 30.0,
    "IDEMPOTENCY_TTL_SECONDS": 24 * 3600,
    "LOGIN_FAILURES_PER_ACCOUNT": "10 per 15 minutes",
    "LOGIN_FAILURES_PER_ADDRESS": "50 per 15 minutes",
    "TRUSTED_PROXY_HOPS": 0,
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the gateway; upstream connections are made on the first request."""
    from gateway import docs, routes
    from gateway.cache import ResponseCache
    from gateway.health import HealthChecker
    from gateway.idempotency import IdempotencyStore
    from gateway.proxy import Proxy, ProxySettings
    from gateway.ratelimit import LoginGuard
    from gateway.shards import ShardedRedis
    from gateway.upstream import BreakerSettings, Pool, Replica

    app, settings = web.new_app(SERVICE_NAME, DEFAULTS, test_config)

    breaker = BreakerSettings(
        failures=settings["BREAKER_FAILURES"],
        window_seconds=settings["BREAKER_WINDOW_SECONDS"],
        reset_seconds=settings["BREAKER_RESET_SECONDS"],
    )
    pools = {
        service: Pool(service, [Replica(service, url, breaker) for url in split_targets(urls)])
        for service, urls in (
            ("user_service", settings["USER_HTTP_REPLICAS"]),
            ("activity_service", settings["ACTIVITY_HTTP_REPLICAS"]),
        )
    }
    proxy = Proxy(
        pools,
        ProxySettings(
            connect_timeout=settings["UPSTREAM_CONNECT_TIMEOUT_SECONDS"],
            read_timeout=settings["UPSTREAM_READ_TIMEOUT_SECONDS"],
            max_attempts=settings["UPSTREAM_MAX_ATTEMPTS"],
            retry_after_seconds=settings["RETRY_AFTER_SECONDS"],
        ),
    )
    checker = HealthChecker(
        list(pools.values()),
        settings["HEALTH_INTERVAL_SECONDS"],
        settings["HEALTH_TIMEOUT_SECONDS"],
    )
    shards = ShardedRedis(
        split_targets(settings["CACHE_REDIS_URLS"]),
        settings["CACHE_TIMEOUT_SECONDS"],
        settings["CACHE_PROBE_SECONDS"],
    )
    app.extensions.update(
        pools=pools,
        proxy=proxy,
        health=checker,
        shards=shards,
        cache=ResponseCache(shards, settings["CACHE_TTL_SECONDS"]),
        idempotency=IdempotencyStore(
            shards,
            settings["IDEMPOTENCY_TTL_SECONDS"],
            settings["UPSTREAM_READ_TIMEOUT_SECONDS"] * 3,
        ),
        login_guard=LoginGuard(
            shards, settings["LOGIN_FAILURES_PER_ACCOUNT"], settings["LOGIN_FAILURES_PER_ADDRESS"]
        ),
    )
    if settings["TRUSTED_PROXY_HOPS"]:
        # Behind a proxy the client's address is in X-Forwarded-For; trust only our own hops.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings["TRUSTED_PROXY_HOPS"])

    def ready_check() -> None:
        """Ready once every service has a replica the gateway would send traffic to."""
        missing = [name for name, pool in pools.items() if not pool.available()]
        if missing:
            raise RuntimeError("no available replica of " + ", ".join(missing))

    web.init_app(app, ready_check=ready_check, status_view=routes.status)
    app.register_blueprint(routes.bp)
    app.register_blueprint(docs.bp)

    serving.plan_worker(
        app,
        serving.WorkerPlan(
            grpc_register=[], ready_check=ready_check, background=[checker.run, shards.run_probes]
        ),
    )
    return app
