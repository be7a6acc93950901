"""The gateway's own connections behind the services: gRPC clients of both (goal sagas, saved
live sessions) and the state Redis (saga log, live sessions)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from fitness import mtls
from fitness.config import split_targets
from fitness.redisconn import state_redis
from fitness.rpc import ServiceClient
from fitness.v1 import activity_pb2_grpc, user_pb2_grpc
from gateway.sagas.goals import Participants

DEFAULTS: dict[str, Any] = {
    "STATE_REDIS_URL": "redis://127.0.0.1:6390/0",
    "STATE_REDIS_PASSWORD": "",
    "STATE_REDIS_TIMEOUT_SECONDS": 2.0,
    # Replicas each saga checkpoint must reach (WAIT) before the step runs: 1 with a replica.
    "STATE_REDIS_WAIT_COUNT": 0,
}


def init_app(app: Flask, settings: dict[str, Any]) -> list:
    """Set up the gRPC clients (with the gateway's mTLS identity) and the state Redis client;
    nothing runs in the background."""
    timeout = settings["GRPC_TIMEOUT_SECONDS"]
    me = mtls.identity(settings, "gateway")
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
    app.extensions.update(participants=participants, state_redis=state)
    return []
