"""User service: accounts, login tokens, goals and goal progress (Flask + SQLAlchemy + gRPC)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy.exc import OperationalError

from fitness import serving, web
from fitness.sqldb import default_user_database_url
from fitness.v1 import user_pb2_grpc

SERVICE_NAME = "user_service"

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "",
    "DATABASE_PASSWORD": "",
    "HTTP_PORT": 5000,
    "GRPC_PORT": 50051,
    "WORKERS": 1,
    "THREADS": 16,
    # Where live "goal_achieved" notices go (the gateways' state Redis); empty: nowhere.
    "STATE_REDIS_URL": "",
    "STATE_REDIS_PASSWORD": "",
    "STATE_REDIS_TIMEOUT_SECONDS": 0.5,
    # Password hashing (user_service/passwords.py): processes per worker, and how many more
    # logins or registrations may wait for one before the rest get 503 + Retry-After.
    "HASHING_WORKERS": 1,
    "HASHING_QUEUE": 32,
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the user service's app; nothing connects to the network until a request."""
    from user_service import db, routes
    from user_service.events import GoalEvents
    from user_service.grpc_api import UserServicer
    from user_service.passwords import Passwords
    from user_service.service import AccountService, GoalService

    app, settings = web.new_app(SERVICE_NAME, DEFAULTS, test_config)
    app.config["DATABASE_URL"] = settings["DATABASE_URL"] or default_user_database_url(
        settings["DATA_DIR"]
    )

    database = db.Database(app.config["DATABASE_URL"])
    passwords = Passwords(settings["HASHING_WORKERS"], settings["HASHING_QUEUE"])
    accounts = AccountService(
        database, app.config["JWT_SECRET"], settings["JWT_TTL_SECONDS"], passwords
    )
    goals = GoalService(database)
    app.extensions.update(database=database, accounts=accounts, goals=goals)

    web.init_app(app, ready_check=database.ping)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_blueprint(routes.bp)
    events = GoalEvents(
        settings["STATE_REDIS_URL"],
        settings["STATE_REDIS_TIMEOUT_SECONDS"],
        settings["STATE_REDIS_PASSWORD"],
    )
    servicer = UserServicer(accounts, goals, events)
    serving.plan_worker(
        app,
        serving.WorkerPlan(
            grpc_register=[
                lambda server: user_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
            ],
            ready_check=database.ping,
        ),
    )
    return app


def _database_unavailable(error: Exception):
    """A lost database connection (a failover, a restart) is a 503 to retry, not a 500."""
    logging.getLogger(__name__).warning("database unavailable: %s", error)
    body, status = web.error_response(
        503, "database_unavailable", "The user database is unavailable right now; retry shortly."
    )
    return body, status, {"Retry-After": "1"}
