"""The gateway: the one public door, routing to healthy replicas behind circuit breakers.

It is built from rooms, each owning its settings (a typed ``Settings``, with ``from_env()``)
and its start-up (``init_app(app, settings=None)``, which returns the room's background loops):

- ``proxy``: replica pools, breakers, health checks, forwarding;
- ``shared_state``: the sharded Redis servers (read cache, idempotency records, login limits);
- ``internal``: the gRPC clients of both services and the state Redis;
- ``sagas``: goal writes as sagas (uses ``internal`` and the cache);
- ``live``: group workouts over WebSocket (uses ``internal``);
- ``security``: headers, CORS, trusted proxies.

``create_app`` only composes them, in that order, with the routes: it loads every room's
settings as one (so ``--help``, the environment and test overrides reach them all) and hands
each room its own.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from fitness import config, serving, web
from fitness.imports import IMPORT_PATH
from gateway import internal, proxy, security, shared_state
from gateway import live as live_room
from gateway import sagas as saga_room

SERVICE_NAME = "gateway"

ROOMS = (proxy, shared_state, internal, saga_room, live_room)
"""Set up in this order (a later room may use an earlier one's extensions); ``security``
follows the web plumbing, whose answers it must see."""

SERVING_DEFAULTS: dict[str, Any] = {
    "HTTP_PORT": 8080,
    "GRPC_PORT": 0,
    "WORKERS": 1,
    "THREADS": 64,
    # Greenlets, not threads: one worker holds thousands of open WebSockets (live sessions).
    "WORKER_CLASS": "gevent",
    "WORKER_CONNECTIONS": 10000,
}

DEFAULTS: dict[str, Any] = {
    **SERVING_DEFAULTS,
    **config.compose_defaults(*(room.Settings for room in (*ROOMS, security))),
}
"""Every setting of the gateway: the serving process's and each room's."""


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the gateway; upstream connections are made on the first request."""
    from gateway import docs, pages, routes
    from gateway.live import routes as live_routes
    from gateway.sagas import routes as saga_routes

    app, settings = web.new_app(SERVICE_NAME, DEFAULTS, test_config)
    background = [
        loop for room in ROOMS for loop in room.init_app(app, room.Settings.from_mapping(settings))
    ]
    pools = app.extensions["pools"]

    def ready_check() -> None:
        """Ready once every service has a replica the gateway would send traffic to."""
        missing = [name for name, pool in pools.items() if not pool.available()]
        if missing:
            raise RuntimeError("no available replica of " + ", ".join(missing))

    web.init_app(app, ready_check=ready_check, status_view=routes.status)
    web.allow_uploads(app, IMPORT_PATH, settings["MAX_UPLOAD_BYTES"])
    background += security.init_app(app, security.Settings.from_mapping(settings))
    app.register_blueprint(saga_routes.bp)
    app.register_blueprint(live_routes.bp)
    app.register_blueprint(routes.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(pages.bp)
    serving.plan_worker(
        app, serving.WorkerPlan(grpc_register=[], ready_check=ready_check, background=background)
    )
    return app
