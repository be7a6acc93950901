"""The gateway: the one public door, routing to healthy replicas behind circuit breakers."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from fitness import serving, web
from fitness.config import split_targets
from fitness.imports import IMPORT_PATH

SERVICE_NAME = "gateway"

DEFAULTS: dict[str, Any] = {
    "HTTP_PORT": 8080,
    "GRPC_PORT": 0,
    "WORKERS": 1,
    "THREADS": 64,
    # Greenlets, not threads: one worker holds thousands of open WebSockets (live sessions).
    "WORKER_CLASS": "gevent",
    "WORKER_CONNECTIONS": 10000,
    "USER_HTTP_REPLICAS": "http://127.0.0.1:5000,http://127.0.0.1:5010",
    "ACTIVITY_HTTP_REPLICAS": "http://127.0.0.1:5001,http://127.0.0.1:5011",
    "UPSTREAM_CONNECT_TIMEOUT_SECONDS": 1.0,
    "UPSTREAM_READ_TIMEOUT_SECONDS": 10.0,
    # Every attempt of one proxied request together (reroutes included); then 504.
    "UPSTREAM_DEADLINE_SECONDS": 15.0,
    "UPSTREAM_MAX_ATTEMPTS": 3,
    "HEALTH_INTERVAL_SECONDS": 2.0,
    "HEALTH_TIMEOUT_SECONDS": 1.0,
    "BREAKER_FAILURES": 5,
    "BREAKER_WINDOW_SECONDS": 10.0,
    "BREAKER_RESET_SECONDS": 5.0,
    "RETRY_AFTER_SECONDS": 5,
    "CACHE_REDIS_URLS": "redis://127.0.0.1:6380/0,redis://127.0.0.1:6381/0,redis://127.0.0.1:6382/0",
    # The ACL user is in the URLs (redis://gateway@host:port/0); its password is this.
    "CACHE_REDIS_PASSWORD": "",
    "CACHE_TIMEOUT_SECONDS": 0.2,
    "CACHE_PROBE_SECONDS": 1.0,
    "CACHE_TTL_SECONDS": 30.0,
    "IDEMPOTENCY_TTL_SECONDS": 24 * 3600,
    "LOGIN_FAILURES_PER_ACCOUNT": "10 per 15 minutes",
    "LOGIN_FAILURES_PER_ADDRESS": "50 per 15 minutes",
    "TRUSTED_PROXY_HOPS": 0,
    "STATE_REDIS_URL": "redis://127.0.0.1:6390/0",
    "STATE_REDIS_PASSWORD": "",
    "STATE_REDIS_TIMEOUT_SECONDS": 2.0,
    # Replicas each saga checkpoint must reach (WAIT) before the step runs: 1 with a replica.
    "STATE_REDIS_WAIT_COUNT": 0,
    "SAGA_WAIT_SECONDS": 5.0,
    "SAGA_STEP_DEADLINE_SECONDS": 5.0,
    "SAGA_COMPENSATION_DEADLINE_SECONDS": 30.0,
    "SAGA_LEASE_SECONDS": 5.0,
    "SAGA_RECOVERY_SECONDS": 1.0,
    "SAGA_WORKERS": 64,
    "LIVE_SESSION_TTL_SECONDS": 6 * 3600,
    "LIVE_MAX_EVENTS": 2000,
    "LIVE_HEARTBEAT_SECONDS": 10.0,
    "LIVE_LEAVE_GRACE_SECONDS": 30.0,
    "LIVE_PING_SECONDS": 20.0,
    "LIVE_MAX_MESSAGE_BYTES": 4096,
    "LIVE_MESSAGES_PER_SECOND": "20 per second",
    "LIVE_QUEUE_SIZE": 1000,
    "LIVE_SAVE_RETRY_SECONDS": 5.0,
    # Browser origins allowed to call the API (comma-separated); empty = no CORS headers at all.
    "CORS_ORIGINS": "",
    # Strict-Transport-Security max-age; 0 = not sent (set it only when clients reach us over TLS).
    "HSTS_SECONDS": 0,
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the gateway; upstream connections are made on the first request."""
    from gateway import docs, pages, routes, security
    from gateway.health import HealthChecker
    from gateway.live import init_live
    from gateway.live import routes as live_routes
    from gateway.sagas import routes as saga_routes

    app, settings = web.new_app(SERVICE_NAME, DEFAULTS, test_config)
    pools, proxy = _upstreams(settings)
    checker = HealthChecker(
        list(pools.values()),
        settings["HEALTH_INTERVAL_SECONDS"],
        settings["HEALTH_TIMEOUT_SECONDS"],
    )
    app.extensions.update(pools=pools, proxy=proxy, health=checker)
    app.extensions.update(_shared_state(settings))
    app.extensions.update(_internal(settings))
    app.extensions["coordinator"] = _coordinator(settings, app.extensions)
    live = init_live(app, settings)
    if settings["TRUSTED_PROXY_HOPS"]:
        # Behind a proxy the client's address is in X-Forwarded-For; trust only our own hops.
        # Flask's documented way to wrap its WSGI app (mypy sees a method being replaced).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings["TRUSTED_PROXY_HOPS"]
        )

    def ready_check() -> None:
        """Ready once every service has a replica the gateway would send traffic to."""
        missing = [name for name, pool in pools.items() if not pool.available()]
        if missing:
            raise RuntimeError("no available replica of " + ", ".join(missing))

    web.init_app(app, ready_check=ready_check, status_view=routes.status)
    web.allow_uploads(app, IMPORT_PATH, settings["MAX_UPLOAD_BYTES"])
    security.init_app(app, settings)
    app.register_blueprint(saga_routes.bp)
    app.register_blueprint(live_routes.bp)
    app.register_blueprint(routes.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(pages.bp)
    background = [
        checker.run,
        app.extensions["shards"].run_probes,
        app.extensions["coordinator"].recover_forever,
        live.hub.listen,
        live.heartbeats_forever,
        live.saver.retry_forever,
    ]
    serving.plan_worker(
        app, serving.WorkerPlan(grpc_register=[], ready_check=ready_check, background=background)
    )
    return app


def _upstreams(settings: dict[str, Any]):
    """Return the replica pools of both services and the proxy that forwards to them."""
    from gateway.proxy import Proxy, ProxySettings
    from gateway.upstream import BreakerSettings, Pool, Replica

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
            deadline=settings["UPSTREAM_DEADLINE_SECONDS"],
            max_attempts=settings["UPSTREAM_MAX_ATTEMPTS"],
            retry_after_seconds=settings["RETRY_AFTER_SECONDS"],
        ),
    )
    return pools, proxy


def _shared_state(settings: dict[str, Any]) -> dict[str, Any]:
    """Return what gateway instances share through the sharded Redis servers."""
    from gateway.cache import ResponseCache
    from gateway.idempotency import IdempotencyStore
    from gateway.ratelimit import LoginGuard
    from gateway.shards import ShardedRedis

    shards = ShardedRedis(
        split_targets(settings["CACHE_REDIS_URLS"]),
        settings["CACHE_TIMEOUT_SECONDS"],
        settings["CACHE_PROBE_SECONDS"],
        password=settings["CACHE_REDIS_PASSWORD"],
    )
    return {
        "shards": shards,
        "cache": ResponseCache(shards, settings["CACHE_TTL_SECONDS"]),
        "idempotency": IdempotencyStore(
            shards,
            settings["IDEMPOTENCY_TTL_SECONDS"],
            settings["UPSTREAM_DEADLINE_SECONDS"] * 2,  # a claim outlives its request
        ),
        "login_guard": LoginGuard(
            shards, settings["LOGIN_FAILURES_PER_ACCOUNT"], settings["LOGIN_FAILURES_PER_ADDRESS"]
        ),
    }


def _internal(settings: dict[str, Any]) -> dict[str, Any]:
    """Return the gRPC clients of both services and the client of the state Redis."""
    from fitness import mtls
    from fitness.redisconn import state_redis
    from fitness.rpc import ServiceClient
    from fitness.v1 import activity_pb2_grpc, user_pb2_grpc
    from gateway.sagas.goals import Participants

    timeout = settings["GRPC_TIMEOUT_SECONDS"]
    me = mtls.identity(settings, SERVICE_NAME)
    participants = Participants(
        users=ServiceClient(
            split_targets(settings["USER_GRPC_TARGETS"]),
            user_pb2_grpc.UserServiceStub,
            timeout,
            me,
            "user_service",
        ),
        activity=ServiceClient(
            split_targets(settings["ACTIVITY_GRPC_TARGETS"]),
            activity_pb2_grpc.ActivityServiceStub,
            timeout,
            me,
            "activity_service",
        ),
    )
    state = state_redis(
        settings["STATE_REDIS_URL"],
        settings["STATE_REDIS_TIMEOUT_SECONDS"],
        password=settings["STATE_REDIS_PASSWORD"],
    )
    return {"participants": participants, "state_redis": state}


def _coordinator(settings: dict[str, Any], extensions: dict[str, Any]):
    """Return the saga coordinator, with its log in the state Redis."""
    from gateway.sagas.coordinator import Coordinator, CoordinatorSettings
    from gateway.sagas.log import SagaLog

    saga_log = SagaLog(
        extensions["state_redis"],
        settings["SAGA_LEASE_SECONDS"],
        wait_replicas=settings["STATE_REDIS_WAIT_COUNT"],
    )

    def settled(saga) -> None:
        extensions["cache"].invalidate(saga.user_id)
        if saga.type != "create_goal":  # only changes of an existing goal lock it
            saga_log.unlock_goal(saga.data["goal_id"], saga.id)

    return Coordinator(
        saga_log,
        extensions["participants"],
        CoordinatorSettings(
            step_deadline_seconds=settings["SAGA_STEP_DEADLINE_SECONDS"],
            compensation_deadline_seconds=settings["SAGA_COMPENSATION_DEADLINE_SECONDS"],
            recovery_interval_seconds=settings["SAGA_RECOVERY_SECONDS"],
            workers=settings["SAGA_WORKERS"],
        ),
        on_settled=settled,
    )
